/**
 * The guest-physical address map: RAM from 0 up to the MMIO hole, the hole
 * itself (device registers, later PCI BARs, the IOAPIC and local APIC), and
 * the rest of RAM above 4 GiB, as on a PC.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Start of the MMIO hole below 4 GiB (1 GiB of device space). */
export const MMIO_HOLE_START = 3 * GiB;
export const MMIO_HOLE_END = 4 * GiB;

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
