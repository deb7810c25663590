/**
 * The BIOS-style (E820) memory map handed to Linux in the zero page.
 *
 * Like Firecracker and Cloud Hypervisor, the map lists RAM and the areas a
 * PC firmware would reserve below 1 MiB, and leaves the MMIO hole below
 * 4 GiB out entirely: Linux finds the local APIC and IOAPIC through ACPI (or
 * the MP table), and an address absent from the map is never used as RAM.
 * Areas the caller asks to reserve (ACPI tables, PCI MMCONFIG, ...) are cut
 * out of RAM, or added where there is no RAM, with the type given.
 */
import { struct } from '../../kvm/struct.js';
import { MiB, type RamRange } from '../../memory/layout.js';
import { LinuxLoadError } from './errors.js';

export const E820_RAM = 1;
export const E820_RESERVED = 2;
/** ACPI tables: reclaimable once the kernel has read them. */
export const E820_ACPI = 3;
/** ACPI non-volatile storage. */
export const E820_NVS = 4;

export const e820Entry = struct('boot_e820_entry', { addr: 'u64', size: 'u64', type: 'u32' }, { packed: true });

/** How many entries the zero page holds (E820_MAX_ENTRIES_ZEROPAGE). */
export const E820_MAX_ENTRIES = 128;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/** A guest-physical range [start, end) the map reports as `type` instead of RAM. */
export interface ReservedRange {
  start: number;
  end: number;
  type: number;
}

/** The extended BIOS data area starts 1 KiB below 640 KiB. */
export const EBDA_START = 0x9fc00;
export const HIGH_MEMORY_START = 1 * MiB;

const hex = (n: number): string => `0x${n.toString(16)}`;

interface Span {
  start: number;
  end: number;
  type: number;
}

/** Lays `over` on top of `spans`, cutting whatever it covers. */
function overlay(spans: Span[], over: Span): Span[] {
  const out: Span[] = [];
  for (const s of spans) {
    if (s.end <= over.start || s.start >= over.end) {
      out.push(s);
      continue;
    }
    if (s.start < over.start) out.push({ ...s, end: over.start });
    if (s.end > over.end) out.push({ ...s, start: over.end });
  }
  out.push(over);
  return out;
}

/** The E820 map for the guest's RAM: sorted, with touching entries of one type merged. */
export function e820Map(ram: RamRange[], reserved: ReservedRange[] = []): E820Entry[] {
  const low = ram.find((r) => r.gpa === 0);
  if (!low) throw new LinuxLoadError('Linux needs a RAM range starting at address 0');
  if (low.size <= HIGH_MEMORY_START) throw new LinuxLoadError('Linux needs more than 1 MiB of RAM');

  let spans: Span[] = [
    { start: 0, end: EBDA_START, type: E820_RAM },
    // EBDA, VGA memory and the BIOS area: where a PC firmware keeps its tables.
    { start: EBDA_START, end: HIGH_MEMORY_START, type: E820_RESERVED },
    { start: HIGH_MEMORY_START, end: low.size, type: E820_RAM },
    ...ram.filter((r) => r !== low).map((r) => ({ start: r.gpa, end: r.gpa + r.size, type: E820_RAM })),
  ];
  for (const r of reserved) {
    if (!(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end) && r.start >= 0 && r.start < r.end)) {
      throw new LinuxLoadError(`reserved range [${hex(r.start)}, ${hex(r.end)}) is empty or invalid`);
    }
    if (r.type === E820_RAM) throw new LinuxLoadError(`reserved range [${hex(r.start)}, ${hex(r.end)}) has the RAM type`);
    spans = overlay(spans, r);
  }

  spans.sort((a, b) => a.start - b.start);
  const merged: Span[] = [];
  for (const s of spans) {
    const last = merged.at(-1);
    if (last && last.end === s.start && last.type === s.type) last.end = s.end;
    else merged.push({ ...s });
  }
  if (merged.length > E820_MAX_ENTRIES) {
    throw new LinuxLoadError(`the memory map has ${merged.length} entries, more than the ${E820_MAX_ENTRIES} the zero page holds`);
  }
  return merged.map((s) => ({ addr: s.start, size: s.end - s.start, type: s.type }));
}
