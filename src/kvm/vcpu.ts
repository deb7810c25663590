/**
 * A KVM vCPU file descriptor: register state in and out, CPUID, MSRs,
 * events, and the shared kvm_run page. Built from a plain fd number so a
 * worker thread can wrap the fd its VM created.
 */
import * as ioc from './ioctls.js';
import { close, ioctlBuffer, ioctlRaw, ioctlValue, mmapShared, munmap, type Mapping } from './libc.js';
import * as s from './structs.js';
import { KvmRun } from './kvm-run.js';
import type { StructType } from './struct.js';

export const MP_STATE_RUNNABLE = 0;
export const MP_STATE_UNINITIALIZED = 1;
export const MP_STATE_INIT_RECEIVED = 2;
export const MP_STATE_HALTED = 3;

export class VcpuFd {
  private mapping?: Mapping;
  private closed = false;

  constructor(
    readonly fd: number,
    readonly mmapSize: number,
  ) {}

  /** The kvm_run page, mapped on first use. */
  run(): KvmRun {
    this.mapping ??= mmapShared(this.fd, this.mmapSize);
    return new KvmRun(this.mapping.buffer);
  }

  /** KVM_RUN: 0 on an exit to handle, -errno (EINTR after a kick) otherwise. */
  enter(): number {
    return ioctlRaw(this.fd, ioc.KVM_RUN);
  }

  private get<T>(request: number, type: StructType<T>, name: string): T {
    const buf = type.alloc();
    ioctlBuffer(this.fd, request, buf, name);
    return type.decode(buf);
  }

  private set<T>(request: number, type: StructType<T>, value: T, name: string): void {
    ioctlBuffer(this.fd, request, type.encode(value), name);
  }

  getRegs(): s.KvmRegs { return this.get(ioc.KVM_GET_REGS, s.kvmRegs, 'KVM_GET_REGS'); }
  setRegs(r: s.KvmRegs): void { this.set(ioc.KVM_SET_REGS, s.kvmRegs, r, 'KVM_SET_REGS'); }
  getSregs(): s.KvmSregs { return this.get(ioc.KVM_GET_SREGS, s.kvmSregs, 'KVM_GET_SREGS'); }
  setSregs(r: s.KvmSregs): void { this.set(ioc.KVM_SET_SREGS, s.kvmSregs, r, 'KVM_SET_SREGS'); }
  getFpu(): s.KvmFpu { return this.get(ioc.KVM_GET_FPU, s.kvmFpu, 'KVM_GET_FPU'); }
  getVcpuEvents(): s.KvmVcpuEvents { return this.get(ioc.KVM_GET_VCPU_EVENTS, s.kvmVcpuEvents, 'KVM_GET_VCPU_EVENTS'); }
  setVcpuEvents(e: s.KvmVcpuEvents): void { this.set(ioc.KVM_SET_VCPU_EVENTS, s.kvmVcpuEvents, e, 'KVM_SET_VCPU_EVENTS'); }

  getXsave(): Uint8Array {
    const buf = s.kvmXsave.alloc();
    ioctlBuffer(this.fd, ioc.KVM_GET_XSAVE, buf, 'KVM_GET_XSAVE');
    return buf;
  }
  setXsave(region: Uint8Array): void {
    ioctlBuffer(this.fd, ioc.KVM_SET_XSAVE, region, 'KVM_SET_XSAVE');
  }

  /** XCR0, the only XCR there is today. */
  getXcr0(): bigint {
    const buf = s.kvmXcrs.alloc();
    ioctlBuffer(this.fd, ioc.KVM_GET_XCRS, buf, 'KVM_GET_XCRS');
    const xcrs = s.kvmXcrs.decode(buf);
    return xcrs.xcrs.slice(0, xcrs.nr_xcrs).find((x) => x.xcr === 0)?.value ?? 1n;
  }
  setXcr0(value: bigint): void {
    const xcrs = Array.from({ length: 16 }, () => ({ xcr: 0, reserved: 0, value: 0n }));
    xcrs[0].value = value;
    ioctlBuffer(this.fd, ioc.KVM_SET_XCRS, s.kvmXcrs.encode({ nr_xcrs: 1, flags: 0, xcrs }), 'KVM_SET_XCRS');
  }

  getDebugRegs(): s.KvmDebugregs { return this.get(ioc.KVM_GET_DEBUGREGS, s.kvmDebugregs, 'KVM_GET_DEBUGREGS'); }
  setDebugRegs(r: s.KvmDebugregs): void { this.set(ioc.KVM_SET_DEBUGREGS, s.kvmDebugregs, r, 'KVM_SET_DEBUGREGS'); }

  /** The guest's TSC frequency, in kHz. */
  getTscKhz(): number { return ioctlValue(this.fd, ioc.KVM_GET_TSC_KHZ, 0, 'KVM_GET_TSC_KHZ'); }
  /** Scales the guest's TSC to `khz` (needs TSC scaling in the CPU: KVM_CAP_TSC_CONTROL). */
  setTscKhz(khz: number): void { ioctlValue(this.fd, ioc.KVM_SET_TSC_KHZ, khz, 'KVM_SET_TSC_KHZ'); }

  getMpState(): number { return this.get(ioc.KVM_GET_MP_STATE, s.kvmMpState, 'KVM_GET_MP_STATE').mp_state; }
  setMpState(mp_state: number): void { this.set(ioc.KVM_SET_MP_STATE, s.kvmMpState, { mp_state }, 'KVM_SET_MP_STATE'); }

  getLapic(): Uint8Array { return this.get(ioc.KVM_GET_LAPIC, s.kvmLapicState, 'KVM_GET_LAPIC').regs; }
  setLapic(regs: Uint8Array): void { this.set(ioc.KVM_SET_LAPIC, s.kvmLapicState, { regs }, 'KVM_SET_LAPIC'); }

  setCpuid(entries: s.CpuidEntry[]): void {
    const size = s.kvmCpuidEntry2.size;
    const buf = s.kvmCpuid2Header.encode({ nent: entries.length }, s.kvmCpuid2Header.alloc(entries.length * size));
    entries.forEach((e, i) => s.kvmCpuidEntry2.encode(e, buf, s.kvmCpuid2Header.size + i * size));
    ioctlBuffer(this.fd, ioc.KVM_SET_CPUID2, buf, 'KVM_SET_CPUID2');
  }

  /** Writes MSRs; returns how many KVM accepted (it stops at the first it refuses). */
  setMsrs(msrs: { index: number; data: bigint }[]): number {
    const buf = this.msrBuffer(msrs);
    return ioctlBuffer(this.fd, ioc.KVM_SET_MSRS, buf, 'KVM_SET_MSRS');
  }

  getMsrs(indices: number[]): { index: number; data: bigint }[] {
    const buf = this.msrBuffer(indices.map((index) => ({ index, data: 0n })));
    const n = ioctlBuffer(this.fd, ioc.KVM_GET_MSRS, buf, 'KVM_GET_MSRS');
    return Array.from({ length: n }, (_, i) => s.kvmMsrEntry.decode(buf, s.kvmMsrsHeader.size + i * s.kvmMsrEntry.size));
  }

  private msrBuffer(msrs: { index: number; data: bigint }[]): Uint8Array {
    const size = s.kvmMsrEntry.size;
    const buf = s.kvmMsrsHeader.encode({ nmsrs: msrs.length }, s.kvmMsrsHeader.alloc(msrs.length * size));
    msrs.forEach((m, i) => s.kvmMsrEntry.encode({ index: m.index, data: m.data }, buf, s.kvmMsrsHeader.size + i * size));
    return buf;
  }

  unmapRun(): void {
    if (this.mapping) munmap(this.mapping);
    this.mapping = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unmapRun();
    close(this.fd);
  }
}

