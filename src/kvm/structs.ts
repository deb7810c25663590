/**
 * The KVM uapi structs tsvmm exchanges with the kernel (linux/kvm.h and
 * asm/kvm.h for x86-64), each declared once. Sizes are checked by unit
 * tests against the kernel headers' values.
 */
import { array, struct, type StructType } from './struct.js';

export const kvmRegs = struct('kvm_regs', {
  rax: 'u64', rbx: 'u64', rcx: 'u64', rdx: 'u64', rsi: 'u64', rdi: 'u64', rsp: 'u64', rbp: 'u64',
  r8: 'u64', r9: 'u64', r10: 'u64', r11: 'u64', r12: 'u64', r13: 'u64', r14: 'u64', r15: 'u64',
  rip: 'u64', rflags: 'u64',
});
export type KvmRegs = ReturnType<typeof kvmRegs.decode>;

export const kvmSegment = struct('kvm_segment', {
  base: 'u64', limit: 'u32', selector: 'u16', type: 'u8', present: 'u8', dpl: 'u8', db: 'u8', s: 'u8',
  l: 'u8', g: 'u8', avl: 'u8', unusable: 'u8', padding: 'u8',
});
export type KvmSegment = ReturnType<typeof kvmSegment.decode>;

export const kvmDtable = struct('kvm_dtable', { base: 'u64', limit: 'u16', padding: array('u16', 3) });
export type KvmDtable = ReturnType<typeof kvmDtable.decode>;

export const kvmSregs = struct('kvm_sregs', {
  cs: kvmSegment, ds: kvmSegment, es: kvmSegment, fs: kvmSegment, gs: kvmSegment, ss: kvmSegment,
  tr: kvmSegment, ldt: kvmSegment, gdt: kvmDtable, idt: kvmDtable,
  cr0: 'u64', cr2: 'u64', cr3: 'u64', cr4: 'u64', cr8: 'u64', efer: 'u64', apic_base: 'u64',
  interrupt_bitmap: array('u64', 4),
});
export type KvmSregs = ReturnType<typeof kvmSregs.decode>;

export const kvmFpu = struct('kvm_fpu', {
  fpr: array('u8', 128), fcw: 'u16', fsw: 'u16', ftwx: 'u8', pad1: 'u8', last_opcode: 'u16',
  last_ip: 'u64', last_dp: 'u64', xmm: array('u8', 256), mxcsr: 'u32', pad2: 'u32',
});
export type KvmFpu = ReturnType<typeof kvmFpu.decode>;

export const kvmXsave = struct('kvm_xsave', { region: array('u8', 4096) });

const kvmXcr = struct('kvm_xcr', { xcr: 'u32', reserved: 'u32', value: 'u64' });
export const kvmXcrs = struct('kvm_xcrs', {
  nr_xcrs: 'u32', flags: 'u32', xcrs: array(kvmXcr, 16), padding: array('u64', 16),
});

/** Header of kvm_msrs; `kvmMsrEntry` entries follow it. */
export const kvmMsrsHeader = struct('kvm_msrs', { nmsrs: 'u32', pad: 'u32' });
export const kvmMsrEntry = struct('kvm_msr_entry', { index: 'u32', reserved: 'u32', data: 'u64' });
export const kvmMsrListHeader = struct('kvm_msr_list', { nmsrs: 'u32' });

/** Header of kvm_cpuid2; `kvmCpuidEntry2` entries follow it. */
export const kvmCpuid2Header = struct('kvm_cpuid2', { nent: 'u32', padding: 'u32' });
export const kvmCpuidEntry2 = struct('kvm_cpuid_entry2', {
  function: 'u32', index: 'u32', flags: 'u32', eax: 'u32', ebx: 'u32', ecx: 'u32', edx: 'u32',
  padding: array('u32', 3),
});
export type CpuidEntry = ReturnType<typeof kvmCpuidEntry2.decode>;

export const kvmUserspaceMemoryRegion = struct('kvm_userspace_memory_region', {
  slot: 'u32', flags: 'u32', guest_phys_addr: 'u64', memory_size: 'u64', userspace_addr: 'u64',
});

export const kvmLapicState = struct('kvm_lapic_state', { regs: array('u8', 1024) });

export const kvmIrqchip = struct('kvm_irqchip', { chip_id: 'u32', pad: 'u32', chip: array('u8', 512) });

const kvmPitChannelState = struct('kvm_pit_channel_state', {
  count: 'u32', latched_count: 'u16', count_latched: 'u8', status_latched: 'u8', status: 'u8',
  read_state: 'u8', write_state: 'u8', write_latch: 'u8', rw_mode: 'u8', mode: 'u8', bcd: 'u8',
  gate: 'u8', count_load_time: 'i64',
});
export const kvmPitState2 = struct('kvm_pit_state2', {
  channels: array(kvmPitChannelState, 3), flags: 'u32', reserved: array('u32', 9),
});
export type KvmPitState2 = ReturnType<typeof kvmPitState2.decode>;
export const kvmPitConfig = struct('kvm_pit_config', { flags: 'u32', pad: array('u32', 15) });

export const kvmClockData = struct('kvm_clock_data', {
  clock: 'u64', flags: 'u32', pad0: 'u32', realtime: 'u64', host_tsc: 'u64', pad: array('u32', 4),
});

export type KvmClockData = ReturnType<typeof kvmClockData.decode>;

export const kvmVcpuEvents = struct('kvm_vcpu_events', {
  exception_injected: 'u8', exception_nr: 'u8', exception_has_error_code: 'u8', exception_pending: 'u8',
  exception_error_code: 'u32',
  interrupt_injected: 'u8', interrupt_nr: 'u8', interrupt_soft: 'u8', interrupt_shadow: 'u8',
  nmi_injected: 'u8', nmi_pending: 'u8', nmi_masked: 'u8', nmi_pad: 'u8',
  sipi_vector: 'u32', flags: 'u32',
  smi_smm: 'u8', smi_pending: 'u8', smi_inside_nmi: 'u8', smi_latched_init: 'u8',
  triple_fault_pending: 'u8', reserved: array('u8', 26),
  exception_has_payload: 'u8', exception_payload: 'u64',
});
export type KvmVcpuEvents = ReturnType<typeof kvmVcpuEvents.decode>;

export const kvmIoeventfd = struct('kvm_ioeventfd', {
  datamatch: 'u64', addr: 'u64', len: 'u32', fd: 'i32', flags: 'u32', pad: array('u8', 36),
});

export const kvmIrqfd = struct('kvm_irqfd', {
  fd: 'u32', gsi: 'u32', flags: 'u32', resamplefd: 'u32', pad: array('u8', 16),
});

export const kvmIrqLevel = struct('kvm_irq_level', { irq: 'u32', level: 'u32' });

/** Header of kvm_irq_routing; `kvmIrqRoutingEntry` entries follow it. */
export const kvmIrqRoutingHeader = struct('kvm_irq_routing', { nr: 'u32', flags: 'u32' });
export const kvmIrqRoutingEntry = struct('kvm_irq_routing_entry', {
  gsi: 'u32', type: 'u32', flags: 'u32', pad: 'u32', u: array('u32', 8),
});

export const kvmCoalescedMmioZone = struct('kvm_coalesced_mmio_zone', { addr: 'u64', size: 'u32', pio: 'u32' });

export const kvmEnableCap = struct('kvm_enable_cap', {
  cap: 'u32', flags: 'u32', args: array('u64', 4), pad: array('u8', 64),
});

export const kvmMpState = struct('kvm_mp_state', { mp_state: 'u32' });

export const kvmGuestDebug = struct('kvm_guest_debug', {
  control: 'u32', pad: 'u32', debugreg: array('u64', 8),
});

export const kvmDebugregs = struct('kvm_debugregs', {
  db: array('u64', 4), dr6: 'u64', dr7: 'u64', flags: 'u64', reserved: array('u64', 9),
});
export type KvmDebugregs = ReturnType<typeof kvmDebugregs.decode>;

export const kvmMsi = struct('kvm_msi', {
  address_lo: 'u32', address_hi: 'u32', data: 'u32', flags: 'u32', devid: 'u32', pad: array('u8', 12),
});

/** Every struct above, for the layout test. */
export const allStructs: StructType<unknown>[] = [
  kvmRegs, kvmSegment, kvmDtable, kvmSregs, kvmFpu, kvmXsave, kvmXcrs, kvmMsrsHeader, kvmMsrEntry,
  kvmCpuid2Header, kvmCpuidEntry2, kvmUserspaceMemoryRegion, kvmLapicState, kvmIrqchip, kvmPitState2,
  kvmPitConfig, kvmClockData, kvmVcpuEvents, kvmIoeventfd, kvmIrqfd, kvmIrqLevel, kvmIrqRoutingHeader,
  kvmIrqRoutingEntry, kvmCoalescedMmioZone, kvmEnableCap, kvmMpState, kvmGuestDebug, kvmMsi,
  kvmDebugregs,
] as StructType<unknown>[];
