/**
 * The state an emulated instruction works on: a vCPU's registers, loaded
 * once, with the XSAVE (x87, SSE, AVX...) and XCR state fetched only when an instruction
 * needs them, guest memory reached through the guest's own page tables,
 * and everything written back in one go when the instruction completes.
 */
import type { CpuidEntry, KvmRegs, KvmSregs } from '../../../kvm/structs.js';
import type { GuestMemory } from '../../../memory/guest-memory.js';
import { translate, VECTOR_GP, VECTOR_PF } from '../page-walker.js';
import type { CpuBits, MemoryOperand, SegmentName } from './decoder.js';

/** What the emulator needs from a vCPU; VcpuFd provides it, tests provide doubles. */
export interface EmulatedVcpu {
  getRegs(): KvmRegs;
  setRegs(r: KvmRegs): void;
  getSregs(): KvmSregs;
  setSregs(s: KvmSregs): void;
  getXsave(): Uint8Array;
  setXsave(region: Uint8Array): void;
  getXcr0(): bigint;
  setXcr0(value: bigint): void;
  getMsrs(indices: number[]): { index: number; data: bigint }[];
}

/** A fault the instruction raises in the guest (delivered instead of completing it). */
export class GuestFault extends Error {
  constructor(
    readonly vector: number,
    readonly errorCode?: number,
    /** For #PF: the faulting linear address, for CR2. */
    readonly address?: bigint,
  ) {
    super(`guest exception ${vector}`);
  }
}

/** FCW, FSW, the abridged tag word and MXCSR at their FXSAVE offsets. */
export class LegacyFpuState {
  private readonly view: DataView;
  constructor(area: Uint8Array) {
    this.view = new DataView(area.buffer, area.byteOffset, 512);
  }
  get fcw(): number { return this.view.getUint16(0, true); }
  set fcw(v: number) { this.view.setUint16(0, v, true); }
  get fsw(): number { return this.view.getUint16(2, true); }
  set fsw(v: number) { this.view.setUint16(2, v, true); }
  get ftw(): number { return this.view.getUint8(4); }
  set ftw(v: number) { this.view.setUint8(4, v); }
  get mxcsr(): number { return this.view.getUint32(24, true); }
  set mxcsr(v: number) { this.view.setUint32(24, v, true); }
  /** FOP, FIP and FDP: the last x87 instruction and operand. */
  clearLastInstruction(): void {
    this.view.setUint16(6, 0, true);
    this.view.setBigUint64(8, 0n, true);
    this.view.setBigUint64(16, 0n, true);
  }
}

export const Flag = { CF: 1n << 0n, PF: 1n << 2n, AF: 1n << 4n, ZF: 1n << 6n, SF: 1n << 7n, OF: 1n << 11n } as const;
export const ARITH_FLAGS = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;

const GPR_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
const CR0_PG = 1n << 31n;
const CR0_WP = 1n << 16n;
const EFER_NXE = 1n << 11n;

export class CpuContext {
  readonly regs: KvmRegs;
  readonly sregs: KvmSregs;
  readonly bits: CpuBits;
  private xsaveState?: Uint8Array;
  private xcr0?: bigint;
  private dirty = { regs: false, sregs: false, xsave: false, xcr0: false };

  constructor(
    readonly vcpu: EmulatedVcpu,
    readonly memory: GuestMemory,
    readonly cpuid: readonly CpuidEntry[],
  ) {
    this.regs = vcpu.getRegs();
    this.sregs = vcpu.getSregs();
    this.bits = (this.sregs.cr0 & 1n) === 0n ? 16 : this.sregs.cs.l ? 64 : this.sregs.cs.db ? 32 : 16;
  }

  get cpl(): number {
    return (this.sregs.cr0 & 1n) === 0n ? 0 : this.sregs.cs.dpl;
  }

  // --- general registers -------------------------------------------------

  /** Register n (0-15) at `size` bytes. Without REX, byte registers 4-7 are AH, CH, DH, BH. */
  gpr(n: number, size: number, rex = 1): bigint {
    if (size === 1 && rex === 0 && n >= 4 && n < 8) return (this.regs[GPR_NAMES[n - 4]] >> 8n) & 0xffn;
    return BigInt.asUintN(size * 8, this.regs[GPR_NAMES[n]]);
  }

  /** Writes register n the way the CPU does: 32-bit writes clear the upper half, 8/16-bit writes merge. */
  setGpr(n: number, size: number, value: bigint, rex = 1): void {
    this.dirty.regs = true;
    if (size === 1 && rex === 0 && n >= 4 && n < 8) {
      const name = GPR_NAMES[n - 4];
      this.regs[name] = (this.regs[name] & ~0xff00n) | ((value & 0xffn) << 8n);
      return;
    }
    const name = GPR_NAMES[n];
    if (size >= 4) this.regs[name] = BigInt.asUintN(size * 8, value);
    else {
      const mask = (1n << BigInt(size * 8)) - 1n;
      this.regs[name] = (this.regs[name] & ~mask) | (value & mask);
    }
  }

  setFlags(mask: bigint, values: bigint): void {
    this.dirty.regs = true;
    this.regs.rflags = (this.regs.rflags & ~mask) | (values & mask);
  }

  setRip(rip: bigint): void {
    this.dirty.regs = true;
    this.regs.rip = this.bits === 64 ? BigInt.asUintN(64, rip) : BigInt.asUintN(32, rip);
  }

  /** Records a change made to `sregs` (segment bases, control registers). */
  sregsChanged(): void {
    this.dirty.sregs = true;
  }

  // --- lazily fetched state ----------------------------------------------

  get xsave(): Uint8Array {
    return (this.xsaveState ??= this.vcpu.getXsave());
  }

  /**
   * The x87 and SSE control state, in the legacy (FXSAVE) area of the XSAVE
   * image. KVM_GET_FPU would be simpler, but some backends leave MXCSR out of it.
   */
  get legacy(): LegacyFpuState {
    return new LegacyFpuState(this.xsave);
  }
  xsaveChanged(): void {
    this.dirty.xsave = true;
  }

  get xcr0Value(): bigint {
    return (this.xcr0 ??= this.vcpu.getXcr0());
  }
  setXcr0(value: bigint): void {
    this.xcr0 = value;
    this.dirty.xcr0 = true;
  }

  cpuidLeaf(fn: number, index = 0): CpuidEntry | undefined {
    return this.cpuid.find((e) => e.function === fn && (e.index === index || (e.flags & 1) === 0));
  }

  // --- memory ------------------------------------------------------------

  segmentBase(seg: SegmentName): bigint {
    if (this.bits === 64 && seg !== 'fs' && seg !== 'gs') return 0n;
    return this.sregs[seg].base;
  }

  /** The linear address of a memory operand; `next` is the address of the next instruction (RIP-relative). */
  linearAddress(op: MemoryOperand, addressSize: number, next: bigint): bigint {
    let ea = op.displacement;
    if (op.ripRelative) ea += next;
    if (op.base !== undefined) ea += this.gpr(op.base, addressSize);
    if (op.index !== undefined) ea += this.gpr(op.index, addressSize) * BigInt(op.scale);
    ea = BigInt.asUintN(addressSize * 8, ea);
    const linear = this.segmentBase(op.segment) + ea;
    return this.bits === 64 ? BigInt.asUintN(64, linear) : BigInt.asUintN(32, linear);
  }

  /** Guest-physical pieces of [linear, linear+length), faulting as the CPU would. */
  private physical(linear: bigint, length: number, write: boolean, fetch = false): { gpa: number; length: number }[] {
    if ((this.sregs.cr0 & CR0_PG) === 0n) {
      const gpa = Number(linear);
      if (!this.memory.contains(gpa, length)) throw new GuestFault(VECTOR_GP, 0);
      return [{ gpa, length }];
    }
    const pieces: { gpa: number; length: number }[] = [];
    let at = linear;
    let left = length;
    while (left > 0) {
      const t = translate(this.memory, this.sregs.cr3, at, { write, user: this.cpl === 3, fetch }, {
        nxe: (this.sregs.efer & EFER_NXE) !== 0n,
        wp: (this.sregs.cr0 & CR0_WP) !== 0n,
      });
      if (!t.ok) throw new GuestFault(t.fault.vector, t.fault.errorCode, t.fault.vector === VECTOR_PF ? at : undefined);
      const inPage = Math.min(left, 4096 - Number(at & 0xfffn));
      if (!this.memory.contains(t.gpa, inPage)) throw new GuestFault(VECTOR_GP, 0);
      pieces.push({ gpa: t.gpa, length: inPage });
      at += BigInt(inPage);
      left -= inPage;
    }
    return pieces;
  }

  read(linear: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let o = 0;
    for (const p of this.physical(linear, length, false)) {
      out.set(this.memory.view(p.gpa, p.length), o);
      o += p.length;
    }
    return out;
  }

  /** Checks the whole range is writable before writing any of it, so a fault leaves memory untouched. */
  write(linear: bigint, data: Uint8Array): void {
    let o = 0;
    for (const p of this.physical(linear, data.length, true)) {
      this.memory.view(p.gpa, p.length).set(data.subarray(o, o + p.length));
      o += p.length;
    }
  }

  readValue(linear: bigint, size: number): bigint {
    const b = this.read(linear, size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }

  writeValue(linear: bigint, size: number, value: bigint): void {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    this.write(linear, b);
  }

  /** Up to 15 bytes at CS:RIP, stopping early at an unmapped page after the first. */
  fetchInstruction(): Uint8Array {
    const linear = this.segmentBase('cs') + this.regs.rip;
    const first = Math.min(15, 4096 - Number(linear & 0xfffn));
    const head = this.readFetch(linear, first);
    if (first === 15) return head;
    try {
      const tail = this.readFetch(linear + BigInt(first), 15 - first);
      const all = new Uint8Array(15);
      all.set(head);
      all.set(tail, first);
      return all;
    } catch {
      return head;
    }
  }

  private readFetch(linear: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let o = 0;
    for (const p of this.physical(linear, length, false, true)) {
      out.set(this.memory.view(p.gpa, p.length), o);
      o += p.length;
    }
    return out;
  }

  /** Writes back everything the instruction changed. */
  commit(): void {
    if (this.dirty.sregs) this.vcpu.setSregs(this.sregs);
    if (this.dirty.regs) this.vcpu.setRegs(this.regs);
    if (this.dirty.xsave && this.xsaveState) this.vcpu.setXsave(this.xsaveState);
    if (this.dirty.xcr0 && this.xcr0 !== undefined) this.vcpu.setXcr0(this.xcr0);
  }
}
