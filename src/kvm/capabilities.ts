/**
 * KVM capabilities (KVM_CHECK_EXTENSION numbers) and the set tsvmm needs,
 * checked once when a VM is built so a missing one is named up front.
 */
export const Cap = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  MP_STATE: 14,
  COALESCED_MMIO: 15,
  SYNC_MMU: 16,
  SET_GUEST_DEBUG: 23,
  IRQ_ROUTING: 25,
  IRQFD: 32,
  PIT2: 33,
  PIT_STATE2: 35,
  IOEVENTFD: 36,
  SET_IDENTITY_MAP_ADDR: 37,
  ADJUST_CLOCK: 39,
  INTERNAL_ERROR_DATA: 40,
  VCPU_EVENTS: 41,
  XSAVE: 55,
  XCRS: 56,
  MAX_VCPUS: 66,
  SIGNAL_MSI: 77,
  IMMEDIATE_EXIT: 136,
  COALESCED_PIO: 162,
  DIRTY_LOG_RING: 192,
} as const;
export type CapName = keyof typeof Cap;

/** What each required capability is used for, for the error that names it. */
export const requiredCaps: Partial<Record<CapName, string>> = {
  USER_MEMORY: 'guest RAM from host memory',
  EXT_CPUID: 'CPUID setup',
  SET_TSS_ADDR: 'the real-mode TSS on Intel',
  IRQCHIP: 'in-kernel interrupt controllers',
  PIT2: 'the in-kernel timer',
  IOEVENTFD: 'device notifications without exits',
  IRQFD: 'device interrupts without exits',
  IRQ_ROUTING: 'MSI routing',
  VCPU_EVENTS: 'exception injection',
  MP_STATE: 'starting secondary vCPUs',
  IMMEDIATE_EXIT: 'pausing vCPUs without races',
  COALESCED_MMIO: 'batched MMIO writes',
};
