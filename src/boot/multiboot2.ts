/**
 * Boots a Multiboot2 kernel, the format GRUB users write (QEMU's -kernel
 * cannot load it): the header's tags say how to place the kernel (an ELF32
 * or ELF64 file, or a raw image by its address tag) and what it needs; the
 * boot information is a list of tags (command line, loader name, modules,
 * basic memory, memory map, ELF sections, the ACPI RSDP) in an 8-byte
 * aligned area after the kernel, the modules page-aligned after it. The
 * vCPU starts at the entry in 32-bit protected mode with EAX = 0x36D76289
 * and EBX = the information's address.
 *
 * A header tag tsvmm cannot honour is refused unless the kernel marked it
 * optional, as the specification asks. Nothing is written to guest RAM
 * until the whole layout has been checked.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { RamRange } from '../memory/layout.js';
import { RSDP_SIZE, RSDP_V1_SIZE } from '../acpi/rsdp.js';
import { elfSections, setSectionAddress, SHT_NOBITS, type ElfSectionTable } from './elf-sections.js';
import type { MultibootBoot, MultibootModule } from './multiboot.js';
import { alignUp, cString, InfoArea, PAGE_SIZE, pcMemory } from './multiboot-info.js';
import { hex, MultibootError, planAddressedKernel, planElfKernel, type PlannedKernel } from './multiboot-kernel.js';

export interface Multiboot2Options {
  cmdline: string;
  modules: MultibootModule[];
  /** The guest's RAM map, reported in the memory map tag. */
  ram: RamRange[];
  /** The guest's ACPI RSDP (revision 2, 36 bytes), copied into the old and new RSDP tags. */
  rsdp?: Uint8Array;
  bootloaderName?: string;
}

const HEADER_MAGIC = 0xe85250d6;
const BOOTLOADER_MAGIC = 0x36d76289;
const ARCHITECTURE_I386 = 0;
/** The header lies within the image's first 32 KiB, 8-byte aligned. */
const HEADER_SEARCH_LIMIT = 32768;
const HEADER_ALIGN = 8;
const HEADER_FIXED_SIZE = 16;
const TAG_ALIGN = 8;
const TAG_HEADER_SIZE = 8;
/** Header tag flag bit 0: the loader may ignore the tag. */
const TAG_OPTIONAL = 1;

// Header tag types.
const HEADER_END = 0;
const HEADER_INFORMATION_REQUEST = 1;
const HEADER_ADDRESS = 2;
const HEADER_ENTRY_ADDRESS = 3;
const HEADER_CONSOLE_FLAGS = 4;
const HEADER_FRAMEBUFFER = 5;
const HEADER_MODULE_ALIGN = 6;
const HEADER_EFI_BOOT_SERVICES = 7;
const HEADER_ENTRY_ADDRESS_EFI32 = 8;
const HEADER_ENTRY_ADDRESS_EFI64 = 9;
const HEADER_RELOCATABLE = 10;
/** Console flags bit 0: the kernel needs one of the consoles it lists (EGA text, which tsvmm has not). */
const CONSOLE_REQUIRED = 1;
/** load_addr -1 in the address tag: load the file from its first byte. */
const LOAD_FROM_FILE_START = 0xffffffff;

// Boot information tag types.
const INFO_END = 0;
const INFO_CMDLINE = 1;
const INFO_BOOT_LOADER_NAME = 2;
const INFO_MODULE = 3;
const INFO_BASIC_MEMINFO = 4;
const INFO_MMAP = 6;
const INFO_ELF_SECTIONS = 9;
const INFO_ACPI_OLD = 14;
const INFO_ACPI_NEW = 15;
const INFO_NAMES: Record<number, string> = {
  1: 'command line', 2: 'boot loader name', 3: 'modules', 4: 'basic memory information', 5: 'BIOS boot device', 6: 'memory map',
  9: 'ELF sections (given for ELF kernels placed by their program headers)', 14: 'ACPI old RSDP (given with ACPI tables)',
  15: 'ACPI new RSDP (given with ACPI tables)', 7: 'VBE info', 8: 'framebuffer info', 10: 'APM table', 11: 'EFI 32-bit system table',
  12: 'EFI 64-bit system table', 13: 'SMBIOS tables', 16: 'network', 17: 'EFI memory map', 18: 'EFI boot services',
  19: 'EFI 32-bit image handle', 20: 'EFI 64-bit image handle', 21: 'image load base address',
};
const MMAP_ENTRY_SIZE = 24;
const MMAP_ENTRY_VERSION = 0;

interface HeaderTag {
  type: number;
  optional: boolean;
  /** The tag's bytes after its 8-byte type/flags/size header. */
  body: DataView;
  offset: number;
}

interface Header {
  offset: number;
  tags: HeaderTag[];
}

/** The first header in the image with a good checksum, or why there is none. */
function findHeader(image: Uint8Array): { offset: number; length: number } | string {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(image.length, HEADER_SEARCH_LIMIT);
  for (let at = 0; at + HEADER_FIXED_SIZE <= limit; at += HEADER_ALIGN) {
    if (view.getUint32(at, true) !== HEADER_MAGIC) continue;
    const architecture = view.getUint32(at + 4, true);
    const length = view.getUint32(at + 8, true);
    const checksum = view.getUint32(at + 12, true);
    if (((HEADER_MAGIC + architecture + length + checksum) >>> 0) !== 0) return `multiboot2 header at offset ${hex(at)} has a bad checksum`;
    return { offset: at, length };
  }
  return `no multiboot2 header in the first ${HEADER_SEARCH_LIMIT} bytes of the kernel`;
}

/** The header's tags, up to its end tag. */
function parseHeader(image: Uint8Array, headerOffset: number, length: number): Header {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const architecture = view.getUint32(headerOffset + 4, true);
  if (architecture !== ARCHITECTURE_I386) throw new MultibootError(`multiboot2 header at offset ${hex(headerOffset)} is for architecture ${architecture}, not i386 (0)`);
  if (length < HEADER_FIXED_SIZE + TAG_HEADER_SIZE || length > image.length - headerOffset) {
    throw new MultibootError(`multiboot2 header at offset ${hex(headerOffset)} gives header_length ${length}, outside [${HEADER_FIXED_SIZE + TAG_HEADER_SIZE}, ${image.length - headerOffset}]`);
  }
  const tags: HeaderTag[] = [];
  const end = headerOffset + length;
  for (let at = headerOffset + HEADER_FIXED_SIZE; ; at = alignUp(at + view.getUint32(at + 4, true), TAG_ALIGN)) {
    if (at + TAG_HEADER_SIZE > end) throw new MultibootError('multiboot2 header tags run past header_length without an end tag');
    const type = view.getUint16(at, true);
    const size = view.getUint32(at + 4, true);
    if (size < TAG_HEADER_SIZE || size > end - at) throw new MultibootError(`multiboot2 header tag ${type} at offset ${hex(at)} has size ${size}, outside the header`);
    if (type === HEADER_END) return { offset: headerOffset, tags };
    const body = new DataView(view.buffer, view.byteOffset + at + TAG_HEADER_SIZE, size - TAG_HEADER_SIZE);
    tags.push({ type, optional: (view.getUint16(at + 2, true) & TAG_OPTIONAL) !== 0, body, offset: at });
  }
}

export function isMultiboot2(image: Uint8Array): boolean {
  return typeof findHeader(image) !== 'string';
}

/** A tag's 32-bit fields, refusing a tag too short to hold them. */
function fields(tag: HeaderTag, count: number, what: string): number[] {
  if (tag.body.byteLength < count * 4) throw new MultibootError(`multiboot2 ${what} tag at offset ${hex(tag.offset)} is too short`);
  return Array.from({ length: count }, (_, i) => tag.body.getUint32(i * 4, true));
}

/** What the header asks of the loader, after refusing what tsvmm cannot do. */
interface Requests {
  address?: HeaderTag;
  entry?: number;
  /** Boot information the kernel cannot do without. */
  requiredInfo: number[];
}

function readRequests(tags: HeaderTag[]): Requests {
  const requests: Requests = { requiredInfo: [] };
  const refuse = (tag: HeaderTag, why: string): never => {
    throw new MultibootError(`multiboot2 kernel requires ${why} (header tag ${tag.type}; mark it optional to boot without)`);
  };
  for (const tag of tags) {
    switch (tag.type) {
      case HEADER_INFORMATION_REQUEST:
        if (!tag.optional) requests.requiredInfo.push(...fields(tag, tag.body.byteLength / 4, 'information request'));
        break;
      case HEADER_ADDRESS:
        requests.address = tag;
        break;
      case HEADER_ENTRY_ADDRESS:
        [requests.entry] = fields(tag, 1, 'entry address');
        break;
      case HEADER_CONSOLE_FLAGS:
        if (!tag.optional && (fields(tag, 1, 'console flags')[0] & CONSOLE_REQUIRED) !== 0) refuse(tag, 'an EGA text console, which tsvmm has not');
        break;
      case HEADER_FRAMEBUFFER:
        if (!tag.optional) refuse(tag, 'a framebuffer, which tsvmm has not');
        break;
      case HEADER_EFI_BOOT_SERVICES:
        if (!tag.optional) refuse(tag, 'EFI boot services, which tsvmm has not');
        break;
      // Modules are always page-aligned; the EFI entry points are for EFI loaders; the kernel is
      // loaded at its preferred address, which a relocatable kernel accepts.
      case HEADER_MODULE_ALIGN:
      case HEADER_ENTRY_ADDRESS_EFI32:
      case HEADER_ENTRY_ADDRESS_EFI64:
      case HEADER_RELOCATABLE:
        break;
      default:
        if (!tag.optional) refuse(tag, `header tag type ${tag.type}, which tsvmm does not know`);
    }
  }
  return requests;
}

function planKernel(image: Uint8Array, header: Header, requests: Requests, memory: GuestMemory): PlannedKernel {
  if (requests.address !== undefined) {
    if (requests.entry === undefined) throw new MultibootError('multiboot2 header has an address tag but no entry address tag');
    const [headerAddr, loadAddr, loadEndAddr, bssEndAddr] = fields(requests.address, 4, 'address');
    const addresses = { headerAddr, loadAddr: loadAddr === LOAD_FROM_FILE_START ? undefined : loadAddr, loadEndAddr, bssEndAddr, entryAddr: requests.entry };
    return planAddressedKernel(image, header.offset, addresses, memory, 'multiboot2 address tag');
  }
  const kernel = planElfKernel(image, memory, { elf64: true });
  return requests.entry === undefined ? kernel : { ...kernel, entry: requests.entry };
}

/** Builds the information tags into one buffer; addresses come from `area`, which the caller checks. */
class InfoWriter {
  private readonly parts: Uint8Array[] = [];
  private size = TAG_HEADER_SIZE; // total_size and reserved

  tag(type: number, body: Uint8Array): void {
    const bytes = new Uint8Array(alignUp(TAG_HEADER_SIZE + body.length, TAG_ALIGN));
    const view = new DataView(bytes.buffer);
    view.setUint32(0, type, true);
    view.setUint32(4, TAG_HEADER_SIZE + body.length, true);
    bytes.set(body, TAG_HEADER_SIZE);
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  /** The whole information, end tag included. */
  finish(): Uint8Array {
    this.tag(INFO_END, new Uint8Array(0));
    const out = new Uint8Array(this.size);
    new DataView(out.buffer).setUint32(0, this.size, true);
    let at = TAG_HEADER_SIZE;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

function words(values: number[], trailing: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(values.length * 4 + trailing.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v, true));
  out.set(trailing, values.length * 4);
  return out;
}

function memoryMapBody(ram: RamRange[]): Uint8Array {
  const { entries } = pcMemory(ram);
  const out = new Uint8Array(8 + entries.length * MMAP_ENTRY_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, MMAP_ENTRY_SIZE, true);
  view.setUint32(4, MMAP_ENTRY_VERSION, true);
  entries.forEach((e, i) => {
    const at = 8 + i * MMAP_ENTRY_SIZE;
    view.setBigUint64(at, BigInt(e.base), true);
    view.setBigUint64(at + 8, BigInt(e.length), true);
    view.setUint32(at + 16, e.type, true);
  });
  return out;
}

/**
 * Sections the image does not load (symbol and string tables) are put in
 * RAM after the information, and their headers point there, as GRUB does.
 */
function placeUnloadedSections(table: ElfSectionTable, image: Uint8Array, area: InfoArea): { at: number; data: Uint8Array }[] {
  const placed: { at: number; data: Uint8Array }[] = [];
  for (const s of table.sections) {
    if (s.allocated || s.type === SHT_NOBITS || s.type === 0 || s.size === 0) continue;
    const data = image.subarray(s.offset, s.offset + s.size);
    const at = area.take(data.length, TAG_ALIGN);
    setSectionAddress(table, s.index, at);
    placed.push({ at, data });
  }
  return placed;
}

function elfSectionsBody(table: ElfSectionTable): Uint8Array {
  // GRUB's layout, which kernels are written against: num, entsize and shndx as 32-bit fields.
  return words([table.sections.length, table.entrySize, table.namesIndex], table.headers);
}

export function loadMultiboot2(image: Uint8Array, memory: GuestMemory, options: Multiboot2Options): MultibootBoot {
  const found = findHeader(image);
  if (typeof found === 'string') throw new MultibootError(found);
  const header = parseHeader(image, found.offset, found.length);
  const requests = readRequests(header.tags);
  const kernel = planKernel(image, header, requests, memory);
  const sections = kernel.elf && requests.address === undefined ? elfSections(image) : undefined;

  const provided = new Set([INFO_CMDLINE, INFO_BOOT_LOADER_NAME, INFO_MODULE, INFO_BASIC_MEMINFO, INFO_MMAP]);
  if (sections !== undefined) provided.add(INFO_ELF_SECTIONS);
  if (options.rsdp !== undefined) [INFO_ACPI_OLD, INFO_ACPI_NEW].forEach((t) => provided.add(t));
  const missing = requests.requiredInfo.find((t) => t !== INFO_END && !provided.has(t));
  if (missing !== undefined) {
    throw new MultibootError(`multiboot2 kernel requires boot information tag ${missing} (${INFO_NAMES[missing] ?? 'unknown'}), which tsvmm does not provide`);
  }

  const cmdline = cString(options.cmdline, 'kernel command line');
  const loaderName = cString(options.bootloaderName ?? 'tsvmm', 'boot loader name');
  const moduleCmdlines = options.modules.map((m, i) => cString(m.cmdline, `module ${i} command line`));
  const { memLowerKib, memUpperKib } = pcMemory(options.ram);

  // The information's size does not depend on the addresses in it: measure it with zeros, then place.
  const build = (moduleAddrs: number[]): Uint8Array => {
    const info = new InfoWriter();
    info.tag(INFO_CMDLINE, cmdline);
    info.tag(INFO_BOOT_LOADER_NAME, loaderName);
    options.modules.forEach((m, i) => info.tag(INFO_MODULE, words([moduleAddrs[i] ?? 0, (moduleAddrs[i] ?? 0) + m.data.length], moduleCmdlines[i])));
    info.tag(INFO_BASIC_MEMINFO, words([memLowerKib, memUpperKib]));
    info.tag(INFO_MMAP, memoryMapBody(options.ram));
    if (sections !== undefined) info.tag(INFO_ELF_SECTIONS, elfSectionsBody(sections));
    if (options.rsdp !== undefined) {
      info.tag(INFO_ACPI_OLD, options.rsdp.subarray(0, RSDP_V1_SIZE));
      info.tag(INFO_ACPI_NEW, options.rsdp.subarray(0, RSDP_SIZE));
    }
    return info.finish();
  };
  const area = new InfoArea(kernel.end);
  const infoAddr = area.take(build([]).length, TAG_ALIGN);
  const unloaded = sections === undefined ? [] : placeUnloadedSections(sections, image, area);
  const moduleAddrs = options.modules.map((m) => area.take(m.data.length, PAGE_SIZE));
  area.check(memory);

  const info = build(moduleAddrs);
  kernel.load();
  memory.write(infoAddr, info);
  for (const s of unloaded) memory.write(s.at, s.data);
  options.modules.forEach((m, i) => memory.write(moduleAddrs[i], m.data));
  return { entry: kernel.entry, eax: BOOTLOADER_MAGIC, ebx: infoAddr, kernelEnd: kernel.end };
}
