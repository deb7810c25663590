/**
 * Dumps what tsvmm set up for a vCPU and its RAM to a file that
 * bench/c/exit-loop.c loads, so the C loop runs the very same guest from
 * the very same state.
 *
 * Layout: "TSVMMEXB", u64 RAM size, then u64-length-prefixed blobs:
 * kvm_cpuid2 (with entries), kvm_msrs (with entries), kvm_sregs, kvm_regs,
 * kvm_fpu, and the RAM image from guest-physical address 0.
 */
import { writeFileSync } from 'node:fs';
import { KVM_GET_CPUID2 } from '../../src/kvm/ioctls.js';
import { ioctlBuffer } from '../../src/kvm/libc.js';
import { kvmCpuid2Header, kvmCpuidEntry2, kvmFpu, kvmMsrEntry, kvmMsrsHeader, kvmRegs, kvmSregs } from '../../src/kvm/structs.js';
import type { VcpuFd } from '../../src/kvm/vcpu.js';
import { bootMsrs } from '../../src/arch/x86/msrs.js';
import type { Machine } from '../../src/vmm/machine.js';

const MAGIC = 'TSVMMEXB';
const MAX_CPUID_ENTRIES = 256;

export function writeGuestState(machine: Machine, path: string): void {
  const { memory } = machine;
  if (memory === undefined || memory.regions.length !== 1 || memory.regions[0].gpa !== 0) {
    throw new Error('the state dump handles one RAM region at address 0');
  }
  const { fd } = machine.vcpus[0];
  const ram = memory.regions[0].bytes;
  const header = Buffer.alloc(16);
  header.write(MAGIC, 0, 'latin1');
  header.writeBigUInt64LE(BigInt(ram.length), 8);
  const blobs = [cpuidOf(fd), msrsOf(fd), kvmSregs.encode(fd.getSregs()), kvmRegs.encode(fd.getRegs()), kvmFpu.encode(fd.getFpu()), ram];
  writeFileSync(path, Buffer.concat([header, ...blobs.flatMap((b) => [lengthOf(b), b])]));
}

function lengthOf(blob: Uint8Array): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(blob.length));
  return b;
}

/** The CPUID table as KVM holds it for this vCPU, entries included. */
function cpuidOf(vcpu: VcpuFd): Uint8Array {
  const buf = kvmCpuid2Header.encode({ nent: MAX_CPUID_ENTRIES }, kvmCpuid2Header.alloc(MAX_CPUID_ENTRIES * kvmCpuidEntry2.size));
  ioctlBuffer(vcpu.fd, KVM_GET_CPUID2, buf, 'KVM_GET_CPUID2');
  const { nent } = kvmCpuid2Header.decode(buf);
  return buf.subarray(0, kvmCpuid2Header.size + nent * kvmCpuidEntry2.size);
}

/** The boot MSRs as KVM holds them for this vCPU. */
function msrsOf(vcpu: VcpuFd): Uint8Array {
  const msrs = vcpu.getMsrs(bootMsrs().map((m) => m.index));
  const buf = kvmMsrsHeader.encode({ nmsrs: msrs.length }, kvmMsrsHeader.alloc(msrs.length * kvmMsrEntry.size));
  msrs.forEach((m, i) => kvmMsrEntry.encode({ index: m.index, reserved: 0, data: m.data }, buf, kvmMsrsHeader.size + i * kvmMsrEntry.size));
  return buf;
}
