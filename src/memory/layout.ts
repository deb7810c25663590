/**
 * The guest-physical address map, in one place: RAM from 0 up to the MMIO
 * hole, the hole itself, and the rest of RAM above 4 GiB, as on a PC.
 *
 *   0x00000500-0x00000fff  GDT, TSS, a ring-0 stack (raw, multiboot, Linux)
 *   0x00001000-...         identity page tables (raw long mode, Linux)
 *   0x000e0000-...         ACPI: the RSDP, then the tables (Linux, multiboot)
 *   0x000ef000-0x000ef00f  the VM generation ID (Linux, with the vmgenid device)
 *   0x00100000-           where kernels and raw images usually load
 *   0xc0000000-0xc0ffffff  left for other devices (--test-device 0xc0000000)
 *   0xc1000000-0xdfffffff  PCI memory window: BARs, in slot order
 *   0xe0000000-0xe00fffff  PCI ECAM, bus 0
 *   0xfec00000-0xfec00fff  I/O APIC (KVM's)
 *   0xfee00000-0xfee00fff  local APIC (KVM's)
 *   0xff000000-0xff00ffff  pc-testdev's iomem, when the machine has it
 *   0xfffbc000-0xfffbffff  KVM's identity-map page and real-mode TSS (Intel VMX)
 *   4 GiB-                 RAM above the hole
 *
 * Ports, the other address space, are each device's own (its file says).
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

// Low memory: what tsvmm builds for a guest, below where guests usually load (0x7c00 for boot sectors, 1 MiB for kernels).
export const GDT_BASE = 0x500;
export const TSS_BASE = 0x580;
/** Top of a small ring-0 stack (RSP0 in the TSS) for guests that start at CPL3. */
export const RING0_STACK_TOP = 0x1000;
export const PAGE_TABLES_BASE = 0x1000;
/** In the BIOS area that Linux scans; the memory maps keep it out of the RAM they report. */
export const ACPI_RSDP_ADDRESS = 0xe0000;
/** In the BIOS area too, after room for the ACPI tables; reserved in every memory map. */
export const VMGENID_ADDRESS = 0xef000;

/** Start of the MMIO hole below 4 GiB (1 GiB of device space). */
export const MMIO_HOLE_START = 3 * GiB;
export const MMIO_HOLE_END = 4 * GiB;

export const PCI_MMIO_WINDOW_BASE = 0xc100_0000;
export const PCI_MMIO_WINDOW_END = 0xe000_0000;
export const PCI_ECAM_BASE = 0xe000_0000;
export const IOAPIC_BASE = 0xfec0_0000;
export const LAPIC_BASE = 0xfee0_0000;
export const APIC_WINDOW_SIZE = 0x1000;
export const PC_TESTDEV_IOMEM_BASE = 0xff00_0000;
// Intel VMX needs three pages for a real-mode TSS and one for an identity map, outside RAM.
export const KVM_TSS_ADDR = 0xfffb_d000;
export const KVM_IDENTITY_MAP_ADDR = 0xfffb_c000;

export interface RamRange {
  gpa: number;
  size: number;
  /** Offset of this range in the memfd that backs all of RAM. */
  fileOffset: number;
}

/** Largest RAM range: the VMM sees each range through one typed array, which must stay under 4 GiB. */
export const MAX_RANGE_SIZE = 2 * GiB;

/** Splits `size` bytes of RAM around the MMIO hole, RAM above it in ranges of at most 2 GiB. */
export function planRam(size: number): RamRange[] {
  if (!Number.isSafeInteger(size) || size <= 0 || size % (4 * KiB) !== 0) {
    throw new Error(`memory size must be a positive multiple of 4 KiB, got ${size}`);
  }
  const low = Math.min(size, MMIO_HOLE_START);
  const ranges: RamRange[] = [{ gpa: 0, size: low, fileOffset: 0 }];
  for (let done = low; done < size; done += MAX_RANGE_SIZE) {
    ranges.push({ gpa: MMIO_HOLE_END + (done - low), size: Math.min(MAX_RANGE_SIZE, size - done), fileOffset: done });
  }
  return ranges;
}

/** Parses sizes such as 512M, 2G, 65536 or 64K into bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not a size (examples: 512M, 2G, 65536)`);
  const unit = { '': 1, K: KiB, M: MiB, G: GiB, T: 1024 * GiB }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new Error(`'${text}' is too large`);
  return bytes;
}
