/**
 * MSR values a vCPU starts with: what a BIOS would leave behind for the
 * OS (fast strings on, MTRRs on with write-back default, SYSCALL MSRs clear).
 */
export const MSR = {
  IA32_TSC: 0x10,
  IA32_APIC_BASE: 0x1b,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  EFER: 0xc0000080,
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  SYSCALL_MASK: 0xc0000084,
  KERNEL_GS_BASE: 0xc0000102,
} as const;

const MISC_ENABLE_FAST_STRING = 1n;
const MTRR_ENABLE = 1n << 11n;
const MTRR_TYPE_WRITE_BACK = 6n;

export function bootMsrs(): { index: number; data: bigint }[] {
  return [
    { index: MSR.IA32_SYSENTER_CS, data: 0n },
    { index: MSR.IA32_SYSENTER_ESP, data: 0n },
    { index: MSR.IA32_SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.IA32_TSC, data: 0n },
    { index: MSR.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR.MTRR_DEF_TYPE, data: MTRR_ENABLE | MTRR_TYPE_WRITE_BACK },
  ];
}
