/**
 * What both multiboot information formats say about the machine, and where
 * a loader puts that information: the PC memory map and the lower/upper
 * memory sizes, guest strings, and the area after the kernel that holds
 * the information, then the page-aligned modules.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import { MiB, type RamRange } from '../memory/layout.js';
import { MultibootError, hex } from './multiboot-kernel.js';

export interface MemoryMapEntry {
  base: number;
  length: number;
  type: number;
}

export const E820_RAM = 1;
const E820_RESERVED = 2;

// The PC's low-memory layout as reported to the guest.
const EBDA_START = 0x9fc00;
const VGA_START = 0xa0000;
const BIOS_START = 0xf0000;
const HIGH_MEMORY_START = 1 * MiB;

export const PAGE_SIZE = 4096;
const FOUR_GIB = 2 ** 32;

export const alignUp = (n: number, align: number): number => Math.ceil(n / align) * align;

export interface PcMemory {
  entries: MemoryMapEntry[];
  /** KiB of RAM below the EBDA. */
  memLowerKib: number;
  /** KiB of RAM from 1 MiB to the first hole. */
  memUpperKib: number;
}

/** The PC memory map for the guest's RAM, with the BIOS data and ROM areas reserved. */
export function pcMemory(ram: RamRange[]): PcMemory {
  const low = ram.find((r) => r.gpa === 0);
  if (!low) throw new MultibootError('multiboot needs a RAM range starting at address 0');
  const lowRamEnd = low.size;
  if (lowRamEnd <= HIGH_MEMORY_START) throw new MultibootError('multiboot needs more than 1 MiB of RAM');
  const entries: MemoryMapEntry[] = [
    { base: 0, length: EBDA_START, type: E820_RAM },
    { base: EBDA_START, length: VGA_START - EBDA_START, type: E820_RESERVED },
    { base: BIOS_START, length: HIGH_MEMORY_START - BIOS_START, type: E820_RESERVED },
    { base: HIGH_MEMORY_START, length: lowRamEnd - HIGH_MEMORY_START, type: E820_RAM },
  ];
  const others = ram.filter((r) => r !== low).sort((a, b) => a.gpa - b.gpa);
  for (const r of others) entries.push({ base: r.gpa, length: r.size, type: E820_RAM });
  return { entries, memLowerKib: EBDA_START / 1024, memUpperKib: Math.floor((lowRamEnd - HIGH_MEMORY_START) / 1024) };
}

/** A NUL-terminated UTF-8 string for the guest. */
export function cString(text: string, what: string): Uint8Array {
  if (text.includes('\0')) throw new MultibootError(`${what} contains a NUL character`);
  return Buffer.from(text + '\0', 'utf8');
}

/**
 * Hands out guest addresses upwards from the first page after the kernel
 * (never below 1 MiB: a kernel loaded below 640 KiB must not push the
 * information into the VGA and BIOS area), then checks the whole span is
 * RAM below 4 GiB before anything is written.
 */
export class InfoArea {
  readonly start: number;
  private cursor: number;

  constructor(kernelEnd: number) {
    this.start = Math.max(alignUp(kernelEnd, PAGE_SIZE), HIGH_MEMORY_START);
    this.cursor = this.start;
  }

  /** The next `length` bytes, at an address aligned to `align`. */
  take(length: number, align = 1): number {
    const at = alignUp(this.cursor, align);
    this.cursor = at + length;
    return at;
  }

  get end(): number {
    return this.cursor;
  }

  check(memory: GuestMemory): void {
    if (this.cursor > FOUR_GIB || !memory.contains(this.start, this.cursor - this.start)) {
      throw new MultibootError(
        `multiboot information and modules [${hex(this.start)}, ${hex(this.cursor)}) do not fit in guest RAM below 4 GiB`,
      );
    }
  }
}
