/**
 * The guest-physical layout as a list: RAM, the MMIO hole, and where each
 * device sits, for `--memory-map` and for API users.
 */
import { hex } from '../devices/bus.js';
import { placements, type DeviceSpec } from '../devices/registry.js';
import { APIC_WINDOW_SIZE, IOAPIC_BASE, LAPIC_BASE, MMIO_HOLE_END, MMIO_HOLE_START, type RamRange } from '../memory/layout.js';

export interface MemoryMapEntry {
  space: 'memory' | 'port';
  start: number;
  end: number; // exclusive
  what: string;
}

export function describeMemoryMap(ram: RamRange[], devices: DeviceSpec[]): MemoryMapEntry[] {
  const entries: MemoryMapEntry[] = ram.map((r) => ({ space: 'memory' as const, start: r.gpa, end: r.gpa + r.size, what: 'RAM' }));
  entries.push({ space: 'memory', start: MMIO_HOLE_START, end: MMIO_HOLE_END, what: 'MMIO hole' });
  entries.push({ space: 'memory', start: IOAPIC_BASE, end: IOAPIC_BASE + APIC_WINDOW_SIZE, what: 'IOAPIC (in-kernel)' });
  entries.push({ space: 'memory', start: LAPIC_BASE, end: LAPIC_BASE + APIC_WINDOW_SIZE, what: 'local APIC (in-kernel)' });
  for (const p of devices.flatMap(placements)) {
    entries.push({ space: p.bus === 'pio' ? 'port' : 'memory', start: p.base, end: p.base + p.length, what: p.name });
  }
  entries.push({ space: 'port', start: 0x20, end: 0x22, what: 'PIC master (in-kernel)' });
  entries.push({ space: 'port', start: 0x40, end: 0x44, what: 'PIT (in-kernel)' });
  entries.push({ space: 'port', start: 0xa0, end: 0xa2, what: 'PIC slave (in-kernel)' });
  return entries.sort((a, b) => (a.space === b.space ? a.start - b.start : a.space === 'memory' ? -1 : 1));
}

export function formatMemoryMap(entries: MemoryMapEntry[]): string {
  return entries
    .map((e) => {
      const width = e.space === 'memory' ? 12 : 4;
      const size = e.end - e.start;
      const human = size >= 1 << 20 ? `${size / (1 << 20)} MiB` : size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
      return `${e.space.padEnd(6)} ${hex(e.start, width)}-${hex(e.end - 1, width)}  ${human.padStart(10)}  ${e.what}`;
    })
    .join('\n');
}
