/**
 * Placing a multiboot kernel image, for both versions of the protocol: an
 * ELF file by its program headers, or a raw image by the addresses its
 * header gives (multiboot 1's a.out kludge, multiboot 2's address tag).
 * Each plan is checked in full before `load()` writes anything to guest RAM.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import { EM_386, EM_X86_64, PT_LOAD, loadElfSegments, parseElf, type ElfImage } from './elf.js';

export class MultibootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultibootError';
  }
}

/** A kernel whose placement has been checked but not yet written. */
export interface PlannedKernel {
  entry: number;
  /** End of the image including its bss. */
  end: number;
  /** The parsed ELF file, for an ELF kernel (its section headers go to multiboot 2 kernels). */
  elf?: ElfImage;
  load(): void;
}

/** The load addresses a raw kernel's header gives, as multiboot 1 and 2 name them. */
export interface LoadAddresses {
  headerAddr: number;
  /** `undefined`: load from the start of the file (multiboot 2's load_addr = -1). */
  loadAddr: number | undefined;
  /** 0: up to the end of the file. */
  loadEndAddr: number;
  /** 0: no bss. */
  bssEndAddr: number;
  entryAddr: number;
}

const FOUR_GIB = 2 ** 32;
const VGA_START = 0xa0000;
/** The last 64 KiB below 1 MiB, where a PC's BIOS ROM sits. */
const BIOS_ROM_START = 0xf0000;

export const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * Refuses kernel ranges that would cover the VGA and option-ROM area (where
 * the ACPI tables are) or lie outside RAM. The BIOS ROM area just below
 * 1 MiB is allowed, as QEMU allows it: ld puts a kernel's ELF and program
 * headers in the page in front of code linked at 1 MiB (unless linked with
 * -n), as a segment of their own, and tsvmm puts nothing there for a
 * multiboot guest.
 */
function checkKernelRange(start: number, end: number, memory: GuestMemory): void {
  const range = `[${hex(start)}, ${hex(end)})`;
  if (end > FOUR_GIB) throw new MultibootError(`kernel range ${range} extends above 4 GiB`);
  if (start < BIOS_ROM_START && end > VGA_START) {
    throw new MultibootError(`kernel range ${range} overlaps the VGA and option-ROM area [0xa0000, 0xf0000)`);
  }
  if (!memory.contains(start, end - start)) throw new MultibootError(`kernel range ${range} is not inside guest RAM`);
}

/**
 * A raw image placed by its header's addresses. `what` names the header
 * fields in messages ("multiboot", "multiboot2 address tag").
 */
export function planAddressedKernel(
  image: Uint8Array,
  headerOffset: number,
  a: LoadAddresses,
  memory: GuestMemory,
  what: string,
): PlannedKernel {
  let fileStart = 0;
  let loadAddr = a.headerAddr - headerOffset;
  if (a.loadAddr !== undefined) {
    if (a.loadAddr > a.headerAddr) {
      throw new MultibootError(`${what} load_addr ${hex(a.loadAddr)} is above header_addr ${hex(a.headerAddr)}`);
    }
    // header_addr - load_addr is how far into the loaded text the header sits.
    fileStart = headerOffset - (a.headerAddr - a.loadAddr);
    if (fileStart < 0) {
      throw new MultibootError(
        `${what} header_addr - load_addr (${hex(a.headerAddr - a.loadAddr)}) exceeds the header's file offset ${hex(headerOffset)}`,
      );
    }
    loadAddr = a.loadAddr;
  } else if (loadAddr < 0) {
    throw new MultibootError(`${what} header_addr ${hex(a.headerAddr)} is below the header's file offset ${hex(headerOffset)}`);
  }
  if (a.loadEndAddr !== 0 && a.loadEndAddr < loadAddr) {
    throw new MultibootError(`${what} load_end_addr ${hex(a.loadEndAddr)} is below load_addr ${hex(loadAddr)}`);
  }
  const loadSize = a.loadEndAddr === 0 ? image.length - fileStart : a.loadEndAddr - loadAddr;
  if (loadSize > image.length - fileStart) {
    throw new MultibootError(`${what} load_end_addr ${hex(a.loadEndAddr)} lies past the end of the ${image.length}-byte file`);
  }
  const loadEnd = loadAddr + loadSize;
  if (a.bssEndAddr !== 0 && a.bssEndAddr < loadEnd) {
    throw new MultibootError(`${what} bss_end_addr ${hex(a.bssEndAddr)} is below the end of the loaded image ${hex(loadEnd)}`);
  }
  const end = a.bssEndAddr === 0 ? loadEnd : a.bssEndAddr;
  checkKernelRange(loadAddr, end, memory);
  return {
    entry: a.entryAddr,
    end,
    load() {
      memory.write(loadAddr, image.subarray(fileStart, fileStart + loadSize));
      memory.fill(loadEnd, end - loadEnd);
    },
  };
}

/**
 * An ELF kernel placed by its PT_LOAD segments' physical addresses.
 * Multiboot 1 takes ELF32 only; multiboot 2 (as GRUB) takes ELF64 too, still
 * entered in 32-bit protected mode.
 */
export function planElfKernel(image: Uint8Array, memory: GuestMemory, options: { elf64: boolean }): PlannedKernel {
  const elf = parseElf(image);
  if (elf.class !== 32 && !options.elf64) {
    throw new MultibootError('64-bit ELF kernels cannot be booted with multiboot; build the kernel as ELF32 or use the a.out kludge');
  }
  const machine = elf.class === 32 ? EM_386 : EM_X86_64;
  if (elf.machine !== machine) {
    throw new MultibootError(`multiboot ELF${elf.class} kernel has machine ${elf.machine}, expected ${machine === EM_386 ? 'i386 (3)' : 'x86-64 (62)'}`);
  }
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && s.memSize > 0);
  if (loads.length === 0) throw new MultibootError('multiboot ELF kernel has no PT_LOAD segments');
  for (const s of loads) checkKernelRange(s.paddr, s.paddr + s.memSize, memory);
  const entry = physicalEntry(elf);
  if (entry >= FOUR_GIB) throw new MultibootError(`multiboot ELF entry point ${hex(entry)} is above 4 GiB, out of reach in 32-bit mode`);
  return {
    entry,
    end: Math.max(...loads.map((s) => s.paddr + s.memSize)),
    elf,
    load() {
      loadElfSegments(elf, image, memory);
    },
  };
}

/**
 * The kernel starts without paging, so an entry point given as a virtual
 * address (higher-half kernels) is translated through its segment, as GRUB does.
 */
function physicalEntry(elf: ElfImage): number {
  for (const s of elf.segments) {
    if (s.type === PT_LOAD && elf.entry >= s.vaddr && elf.entry < s.vaddr + BigInt(s.memSize)) {
      return Number(elf.entry - s.vaddr) + s.paddr;
    }
  }
  return Number(elf.entry);
}
