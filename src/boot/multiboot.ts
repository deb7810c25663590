/**
 * Boots a Multiboot (version 1) kernel the way `qemu -kernel` does: load the
 * kernel (ELF32, or raw with the header's a.out kludge addresses), then put
 * the multiboot information structure, its strings, the memory map and the
 * module list in one page-aligned area after the kernel, followed by the
 * page-aligned module data. The vCPU then starts at `entry` in 32-bit
 * protected mode with EAX = 0x2BADB002 and EBX = the information structure.
 *
 * Nothing is written to guest RAM until the whole layout has been checked.
 */

import type { GuestMemory } from '../memory/guest-memory.js';
import { MiB, type RamRange } from '../memory/layout.js';
import { EM_386, PT_LOAD, loadElfSegments, parseElf, type ElfImage } from './elf.js';

export class MultibootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultibootError';
  }
}

export interface MultibootModule {
  data: Uint8Array;
  cmdline: string;
}

export interface MultibootOptions {
  cmdline: string;
  modules: MultibootModule[];
  /** The guest's RAM map, reported to the kernel as memory map entries. */
  ram: RamRange[];
  bootloaderName?: string;
}

export interface MultibootBoot {
  entry: number;
  /** 0x2BADB002, telling the kernel it was started by a multiboot loader. */
  eax: number;
  /** Guest-physical address of the multiboot information structure. */
  ebx: number;
  /** End of the kernel image including its bss. */
  kernelEnd: number;
}

const HEADER_MAGIC = 0x1badb002;
const BOOTLOADER_MAGIC = 0x2badb002;
/** The header must lie entirely within the image's first 8 KiB. */
const HEADER_SEARCH_LIMIT = 8192;
const HEADER_SIZE = 12;
const AOUT_HEADER_SIZE = 32;

// Header flags. Bits 0-15 are requirements the loader must refuse if it
// cannot meet them; bits 16-31 are optional features.
const HEADER_PAGE_ALIGN_MODULES = 1 << 0; // always done
const HEADER_MEMORY_INFO = 1 << 1; // always provided
const HEADER_VIDEO_MODE = 1 << 2; // request ignored, as the spec allows
const HEADER_AOUT_KLUDGE = 1 << 16;
const HEADER_REQUIRED_BITS = 0xffff;
const HEADER_SUPPORTED_REQUIRED = HEADER_PAGE_ALIGN_MODULES | HEADER_MEMORY_INFO | HEADER_VIDEO_MODE;

// Information structure flags for the fields we fill in.
const INFO_MEMORY = 1 << 0;
const INFO_CMDLINE = 1 << 2;
const INFO_MODULES = 1 << 3;
const INFO_MEMORY_MAP = 1 << 6;
const INFO_BOOT_LOADER_NAME = 1 << 9;

// Information structure field offsets.
const INFO_FLAGS = 0;
const INFO_MEM_LOWER = 4;
const INFO_MEM_UPPER = 8;
const INFO_CMDLINE_ADDR = 16;
const INFO_MODS_COUNT = 20;
const INFO_MODS_ADDR = 24;
const INFO_MMAP_LENGTH = 44;
const INFO_MMAP_ADDR = 48;
const INFO_BOOT_LOADER_NAME_ADDR = 64;
/** Up to the end of the VBE fields; the framebuffer fields (flag 12) are not provided. */
const INFO_SIZE = 88;

const MMAP_ENTRY_SIZE = 24;
const MODULE_ENTRY_SIZE = 16;

const PAGE_SIZE = 4096;
const FOUR_GIB = 2 ** 32;

// The PC's low-memory layout as reported to the guest.
const EBDA_START = 0x9fc00;
const VGA_START = 0xa0000;
/** The last 64 KiB below 1 MiB, where a PC's BIOS ROM sits. */
const BIOS_ROM_START = 0xf0000;
const BIOS_START = 0xf0000;
const HIGH_MEMORY_START = 1 * MiB;
const MEM_LOWER_KIB = EBDA_START / 1024;

const E820_RAM = 1;
const E820_RESERVED = 2;

const hex = (n: number): string => `0x${n.toString(16)}`;
const alignUp = (n: number, align: number): number => Math.ceil(n / align) * align;

/** Offset of the first valid header in the image, or why there is none. */
function findHeader(image: Uint8Array): number | string {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(image.length, HEADER_SEARCH_LIMIT);
  let badChecksumAt: number | undefined;
  for (let at = 0; at + HEADER_SIZE <= limit; at += 4) {
    if (view.getUint32(at, true) !== HEADER_MAGIC) continue;
    const flags = view.getUint32(at + 4, true);
    const checksum = view.getUint32(at + 8, true);
    if (((HEADER_MAGIC + flags + checksum) >>> 0) === 0) return at;
    badChecksumAt ??= at;
  }
  if (badChecksumAt !== undefined) return `multiboot header at offset ${hex(badChecksumAt)} has a bad checksum`;
  return `no multiboot header in the first ${HEADER_SEARCH_LIMIT} bytes of the kernel`;
}

export function isMultiboot(image: Uint8Array): boolean {
  return typeof findHeader(image) === 'number';
}

/** A kernel whose placement has been checked but not yet written. */
interface PlannedKernel {
  entry: number;
  end: number;
  load(): void;
}

export function loadMultiboot(image: Uint8Array, memory: GuestMemory, options: MultibootOptions): MultibootBoot {
  const headerOffset = findHeader(image);
  if (typeof headerOffset === 'string') throw new MultibootError(headerOffset);
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const flags = view.getUint32(headerOffset + 4, true);
  const unsupported = flags & HEADER_REQUIRED_BITS & ~HEADER_SUPPORTED_REQUIRED;
  if (unsupported !== 0) {
    throw new MultibootError(`kernel requires unsupported multiboot features (header flags ${hex(unsupported)})`);
  }

  const kernel = flags & HEADER_AOUT_KLUDGE
    ? planAoutKernel(image, view, headerOffset, memory)
    : planElfKernel(image, memory);
  const info = planBootInfo(kernel.end, memory, options);
  kernel.load();
  info.write();
  return { entry: kernel.entry, eax: BOOTLOADER_MAGIC, ebx: info.address, kernelEnd: kernel.end };
}

/**
 * Refuses kernel ranges that would cover the VGA and option-ROM area or lie
 * outside RAM. The BIOS ROM area just below 1 MiB is allowed, as QEMU
 * allows it: ld puts a kernel's ELF and program headers in the page in
 * front of code linked at 1 MiB (unless linked with -n), as a segment of
 * their own, and tsvmm puts nothing there for a multiboot guest.
 */
function checkKernelRange(start: number, end: number, memory: GuestMemory): void {
  const range = `[${hex(start)}, ${hex(end)})`;
  if (end > FOUR_GIB) throw new MultibootError(`kernel range ${range} extends above 4 GiB`);
  if (start < BIOS_ROM_START && end > VGA_START) {
    throw new MultibootError(`kernel range ${range} overlaps the VGA and option-ROM area [0xa0000, 0xf0000)`);
  }
  if (!memory.contains(start, end - start)) throw new MultibootError(`kernel range ${range} is not inside guest RAM`);
}

/** The a.out kludge: the header gives the load addresses of a raw image. */
function planAoutKernel(image: Uint8Array, view: DataView, headerOffset: number, memory: GuestMemory): PlannedKernel {
  if (headerOffset + AOUT_HEADER_SIZE > image.length) {
    throw new MultibootError('multiboot header sets the a.out kludge flag but its address fields are cut off');
  }
  const headerAddr = view.getUint32(headerOffset + 12, true);
  const loadAddr = view.getUint32(headerOffset + 16, true);
  const loadEndAddr = view.getUint32(headerOffset + 20, true);
  const bssEndAddr = view.getUint32(headerOffset + 24, true);
  const entryAddr = view.getUint32(headerOffset + 28, true);

  if (loadAddr > headerAddr) {
    throw new MultibootError(`multiboot load_addr ${hex(loadAddr)} is above header_addr ${hex(headerAddr)}`);
  }
  // header_addr - load_addr is how far into the loaded text the header sits.
  const fileStart = headerOffset - (headerAddr - loadAddr);
  if (fileStart < 0) {
    throw new MultibootError(
      `multiboot header_addr - load_addr (${hex(headerAddr - loadAddr)}) exceeds the header's file offset ${hex(headerOffset)}`,
    );
  }
  if (loadEndAddr !== 0 && loadEndAddr < loadAddr) {
    throw new MultibootError(`multiboot load_end_addr ${hex(loadEndAddr)} is below load_addr ${hex(loadAddr)}`);
  }
  const loadSize = loadEndAddr === 0 ? image.length - fileStart : loadEndAddr - loadAddr;
  if (loadSize > image.length - fileStart) {
    throw new MultibootError(`multiboot load_end_addr ${hex(loadEndAddr)} lies past the end of the ${image.length}-byte file`);
  }
  const loadEnd = loadAddr + loadSize;
  if (bssEndAddr !== 0 && bssEndAddr < loadEnd) {
    throw new MultibootError(`multiboot bss_end_addr ${hex(bssEndAddr)} is below the end of the loaded image ${hex(loadEnd)}`);
  }
  const end = bssEndAddr === 0 ? loadEnd : bssEndAddr;
  checkKernelRange(loadAddr, end, memory);
  return {
    entry: entryAddr,
    end,
    load() {
      memory.write(loadAddr, image.subarray(fileStart, fileStart + loadSize));
      memory.fill(loadEnd, end - loadEnd);
    },
  };
}

function planElfKernel(image: Uint8Array, memory: GuestMemory): PlannedKernel {
  const elf = parseElf(image);
  if (elf.class !== 32) {
    throw new MultibootError('64-bit ELF kernels cannot be booted with multiboot; build the kernel as ELF32 or use the a.out kludge');
  }
  if (elf.machine !== EM_386) throw new MultibootError(`multiboot ELF kernel has machine ${elf.machine}, expected i386 (3)`);
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && s.memSize > 0);
  if (loads.length === 0) throw new MultibootError('multiboot ELF kernel has no PT_LOAD segments');
  for (const s of loads) checkKernelRange(s.paddr, s.paddr + s.memSize, memory);
  return {
    entry: physicalEntry(elf),
    end: Math.max(...loads.map((s) => s.paddr + s.memSize)),
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

interface MemoryMapEntry {
  base: number;
  length: number;
  type: number;
}

/** The PC memory map for the guest's RAM, and the end of the RAM range at 0. */
function memoryMap(ram: RamRange[]): { entries: MemoryMapEntry[]; lowRamEnd: number } {
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
  return { entries, lowRamEnd };
}

/** A NUL-terminated UTF-8 string for the guest. */
function cString(text: string, what: string): Uint8Array {
  if (text.includes('\0')) throw new MultibootError(`${what} contains a NUL character`);
  return Buffer.from(text + '\0', 'utf8');
}

/** The information area and modules, placed and checked but not yet written. */
function planBootInfo(
  kernelEnd: number,
  memory: GuestMemory,
  options: MultibootOptions,
): { address: number; write(): void } {
  const { entries, lowRamEnd } = memoryMap(options.ram);
  const cmdline = cString(options.cmdline, 'kernel command line');
  const loaderName = cString(options.bootloaderName ?? 'tsvmm', 'boot loader name');
  const moduleCmdlines = options.modules.map((m, i) => cString(m.cmdline, `module ${i} command line`));

  // A kernel loaded entirely below 640 KiB must not push the area into the VGA/BIOS hole.
  const infoAddr = Math.max(alignUp(kernelEnd, PAGE_SIZE), HIGH_MEMORY_START);
  const mmapAddr = infoAddr + INFO_SIZE;
  const modsAddr = mmapAddr + entries.length * MMAP_ENTRY_SIZE;
  let cursor = modsAddr + options.modules.length * MODULE_ENTRY_SIZE;
  const place = (bytes: Uint8Array): number => {
    const at = cursor;
    cursor += bytes.length;
    return at;
  };
  const cmdlineAddr = place(cmdline);
  const loaderNameAddr = place(loaderName);
  const moduleCmdlineAddrs = moduleCmdlines.map(place);
  const areaEnd = cursor;
  const moduleAddrs = options.modules.map((m) => {
    cursor = alignUp(cursor, PAGE_SIZE);
    return place(m.data);
  });

  if (cursor > FOUR_GIB || !memory.contains(infoAddr, cursor - infoAddr)) {
    throw new MultibootError(
      `multiboot information and modules [${hex(infoAddr)}, ${hex(cursor)}) do not fit in guest RAM below 4 GiB`,
    );
  }

  return {
    address: infoAddr,
    write() {
      memory.fill(infoAddr, areaEnd - infoAddr);
      memory.writeU32(infoAddr + INFO_FLAGS, INFO_MEMORY | INFO_CMDLINE | INFO_MODULES | INFO_MEMORY_MAP | INFO_BOOT_LOADER_NAME);
      memory.writeU32(infoAddr + INFO_MEM_LOWER, MEM_LOWER_KIB);
      memory.writeU32(infoAddr + INFO_MEM_UPPER, Math.floor((lowRamEnd - HIGH_MEMORY_START) / 1024));
      memory.writeU32(infoAddr + INFO_CMDLINE_ADDR, cmdlineAddr);
      memory.writeU32(infoAddr + INFO_MODS_COUNT, options.modules.length);
      memory.writeU32(infoAddr + INFO_MODS_ADDR, modsAddr);
      memory.writeU32(infoAddr + INFO_MMAP_LENGTH, entries.length * MMAP_ENTRY_SIZE);
      memory.writeU32(infoAddr + INFO_MMAP_ADDR, mmapAddr);
      memory.writeU32(infoAddr + INFO_BOOT_LOADER_NAME_ADDR, loaderNameAddr);

      entries.forEach((e, i) => {
        const at = mmapAddr + i * MMAP_ENTRY_SIZE;
        // `size` counts the bytes after itself.
        memory.writeU32(at, MMAP_ENTRY_SIZE - 4);
        memory.writeU64(at + 4, BigInt(e.base));
        memory.writeU64(at + 12, BigInt(e.length));
        memory.writeU32(at + 20, e.type);
      });

      options.modules.forEach((m, i) => {
        const at = modsAddr + i * MODULE_ENTRY_SIZE;
        memory.writeU32(at, moduleAddrs[i]);
        memory.writeU32(at + 4, moduleAddrs[i] + m.data.length);
        memory.writeU32(at + 8, moduleCmdlineAddrs[i]);
        memory.writeU32(at + 12, 0);
        memory.write(moduleAddrs[i], m.data);
      });

      memory.write(cmdlineAddr, cmdline);
      memory.write(loaderNameAddr, loaderName);
      moduleCmdlines.forEach((bytes, i) => memory.write(moduleCmdlineAddrs[i], bytes));
    },
  };
}
