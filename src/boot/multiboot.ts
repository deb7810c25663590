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
import type { RamRange } from '../memory/layout.js';
import { InfoArea, PAGE_SIZE, cString, pcMemory } from './multiboot-info.js';
import { MultibootError, hex, planAddressedKernel, planElfKernel } from './multiboot-kernel.js';

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
    : planElfKernel(image, memory, { elf64: false });
  const info = planBootInfo(kernel.end, memory, options);
  kernel.load();
  info.write();
  return { entry: kernel.entry, eax: BOOTLOADER_MAGIC, ebx: info.address, kernelEnd: kernel.end };
}

/** The a.out kludge: the header gives the load addresses of a raw image. */
function planAoutKernel(image: Uint8Array, view: DataView, headerOffset: number, memory: GuestMemory) {
  if (headerOffset + AOUT_HEADER_SIZE > image.length) {
    throw new MultibootError('multiboot header sets the a.out kludge flag but its address fields are cut off');
  }
  const field = (n: number) => view.getUint32(headerOffset + 12 + 4 * n, true);
  const addresses = { headerAddr: field(0), loadAddr: field(1), loadEndAddr: field(2), bssEndAddr: field(3), entryAddr: field(4) };
  return planAddressedKernel(image, headerOffset, addresses, memory, 'multiboot');
}

/** The information area and modules, placed and checked but not yet written. */
function planBootInfo(
  kernelEnd: number,
  memory: GuestMemory,
  options: MultibootOptions,
): { address: number; write(): void } {
  const { entries, memLowerKib, memUpperKib } = pcMemory(options.ram);
  const cmdline = cString(options.cmdline, 'kernel command line');
  const loaderName = cString(options.bootloaderName ?? 'tsvmm', 'boot loader name');
  const moduleCmdlines = options.modules.map((m, i) => cString(m.cmdline, `module ${i} command line`));

  const area = new InfoArea(kernelEnd);
  const infoAddr = area.take(INFO_SIZE);
  const mmapAddr = area.take(entries.length * MMAP_ENTRY_SIZE);
  const modsAddr = area.take(options.modules.length * MODULE_ENTRY_SIZE);
  const cmdlineAddr = area.take(cmdline.length);
  const loaderNameAddr = area.take(loaderName.length);
  const moduleCmdlineAddrs = moduleCmdlines.map((bytes) => area.take(bytes.length));
  const areaEnd = area.end;
  const moduleAddrs = options.modules.map((m) => area.take(m.data.length, PAGE_SIZE));
  area.check(memory);

  return {
    address: infoAddr,
    write() {
      memory.fill(infoAddr, areaEnd - infoAddr);
      memory.writeU32(infoAddr + INFO_FLAGS, INFO_MEMORY | INFO_CMDLINE | INFO_MODULES | INFO_MEMORY_MAP | INFO_BOOT_LOADER_NAME);
      memory.writeU32(infoAddr + INFO_MEM_LOWER, memLowerKib);
      memory.writeU32(infoAddr + INFO_MEM_UPPER, memUpperKib);
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
