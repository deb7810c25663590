/**
 * The /dev/kvm handle: API version, capabilities, supported CPUID and MSRs,
 * and VM creation.
 */
import { Cap, requiredCaps, type CapName } from './capabilities.js';
import * as ioc from './ioctls.js';
import { close, ioctlBuffer, ioctlValue, open, O_RDWR } from './libc.js';
import { kvmCpuid2Header, kvmCpuidEntry2, kvmMsrListHeader, type CpuidEntry } from './structs.js';
import { VmFd } from './vm.js';

export const KVM_API_VERSION = 12;
const MAX_CPUID_ENTRIES = 256;

export class KvmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvmError';
  }
}

export class Kvm {
  private closed = false;
  private constructor(readonly fd: number) {}

  static open(path = '/dev/kvm'): Kvm {
    const kvm = new Kvm(open(path, O_RDWR));
    const version = kvm.apiVersion();
    if (version !== KVM_API_VERSION) {
      kvm.close();
      throw new KvmError(`${path} speaks KVM API version ${version}; tsvmm needs ${KVM_API_VERSION}`);
    }
    return kvm;
  }

  apiVersion(): number {
    return ioctlValue(this.fd, ioc.KVM_GET_API_VERSION, 0, 'KVM_GET_API_VERSION');
  }

  /** 0 when absent; otherwise 1 or a capability-specific value (a count, a size). */
  checkExtension(cap: number): number {
    return ioctlValue(this.fd, ioc.KVM_CHECK_EXTENSION, cap, 'KVM_CHECK_EXTENSION');
  }

  capabilities(): Record<CapName, number> {
    return Object.fromEntries(
      Object.entries(Cap).map(([name, num]) => [name, this.checkExtension(num)]),
    ) as Record<CapName, number>;
  }

  /** Throws naming every required capability this KVM lacks. */
  requireCapabilities(): void {
    const missing = Object.entries(requiredCaps)
      .filter(([name]) => this.checkExtension(Cap[name as CapName]) === 0)
      .map(([name, why]) => `KVM_CAP_${name} (${why})`);
    if (missing.length > 0) throw new KvmError(`this KVM lacks capabilities tsvmm needs: ${missing.join(', ')}`);
  }

  vcpuMmapSize(): number {
    return ioctlValue(this.fd, ioc.KVM_GET_VCPU_MMAP_SIZE, 0, 'KVM_GET_VCPU_MMAP_SIZE');
  }

  /** The CPUID leaves this KVM can give a guest. */
  supportedCpuid(): CpuidEntry[] {
    const buf = kvmCpuid2Header.encode({ nent: MAX_CPUID_ENTRIES }, kvmCpuid2Header.alloc(MAX_CPUID_ENTRIES * kvmCpuidEntry2.size));
    ioctlBuffer(this.fd, ioc.KVM_GET_SUPPORTED_CPUID, buf, 'KVM_GET_SUPPORTED_CPUID');
    const { nent } = kvmCpuid2Header.decode(buf);
    return Array.from({ length: nent }, (_, i) => kvmCpuidEntry2.decode(buf, kvmCpuid2Header.size + i * kvmCpuidEntry2.size));
  }

  /** The MSRs KVM can save and restore for a vCPU (KVM_GET_MSR_INDEX_LIST). */
  msrIndexList(): number[] {
    const room = 1024;
    const buf = kvmMsrListHeader.encode({ nmsrs: room }, kvmMsrListHeader.alloc(room * 4));
    ioctlBuffer(this.fd, ioc.KVM_GET_MSR_INDEX_LIST, buf, 'KVM_GET_MSR_INDEX_LIST');
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const n = view.getUint32(0, true);
    return Array.from({ length: n }, (_, i) => view.getUint32(kvmMsrListHeader.size + i * 4, true));
  }

  createVm(): VmFd {
    const fd = ioctlValue(this.fd, ioc.KVM_CREATE_VM, 0, 'KVM_CREATE_VM');
    return new VmFd(fd, this.vcpuMmapSize());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }
}
