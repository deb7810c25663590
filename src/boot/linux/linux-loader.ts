/**
 * Loads an x86-64 Linux kernel (bzImage or ELF vmlinux) into guest RAM with
 * its command line, initrd and boot parameters, ready for a vCPU to start.
 *
 * Two ways to start it:
 * - '64bit' (default), boot.rst's 64-bit boot protocol: long mode with an
 *   identity map covering the kernel, the zero page and the command line
 *   (all below 4 GiB), interrupts off, RSI = `bootParams` (the zero page).
 * - 'pvh': flat 32-bit protected mode, paging off, EBX = `bootParams` (an
 *   hvm_start_info), at the kernel's PVH entry note. Needs a vmlinux (given
 *   or decompressed on the host) built with CONFIG_PVH.
 *
 * With `decompress: 'host'` (default) a bzImage's payload is decompressed
 * here and the vmlinux's segments are loaded at their physical addresses,
 * entering startup_64 directly, as Firecracker does for a vmlinux. With
 * 'guest' the protected-mode kernel is loaded as it is and entered at its
 * 64-bit entry (load address + 0x200), so the kernel decompresses itself.
 *
 * Low memory used (below the usual 1 MiB kernel floor):
 *   0x0500-0x1000    GDT, TSS, ring-0 stack (src/memory/layout.ts, the address map)
 *   0x1000-0x7000    identity page tables for the first 4 GiB (24 KiB): all
 *                    Linux needs; mapping more would run into the zero page
 *   0x7000-0x8000    zero page, or hvm_start_info + memory map (PVH)
 *   0x20000-...      command line (at most cmdline_size + 1 bytes, 2 KiB today)
 * The zero page address and the command line are Firecracker's too.
 *
 * Nothing is written to guest RAM until the whole layout has been checked.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { GiB, MiB, type RamRange } from '../../memory/layout.js';
import { buildBootParams } from './boot-params.js';
import { parseBzImage, type BzImage } from './bzimage.js';
import { decompressedSize, decompressPayload, detectCompression, type Compression } from './decompress.js';
import { e820Map, E820_RAM, HIGH_MEMORY_START, type E820Entry, type ReservedRange } from './e820.js';
import { LinuxImageError, LinuxLoadError } from './errors.js';
import { buildPvhStartInfo } from './pvh.js';
import { DEFAULT_CMDLINE_SIZE, KERNEL_64_ENTRY_OFFSET, protocolName } from './setup-header.js';
import { loadVmlinux, parseVmlinux, type Vmlinux } from './vmlinux.js';

export const BOOT_PARAMS_ADDRESS = 0x7000;
export const CMDLINE_ADDRESS = 0x20000;
const PAGE_SIZE = 4096;
const FOUR_GIB = 4 * GiB;
/** What every x86-64 kernel's header says; used for a vmlinux, which has no header. */
const DEFAULT_INITRD_ADDR_MAX = 0x7fffffff;

export type LinuxBootProtocol = '64bit' | 'pvh';

export interface LinuxLoadOptions {
  /** The guest's RAM (src/memory/layout.ts planRam). */
  ram: RamRange[];
  cmdline: string;
  initrd?: Uint8Array;
  /** Guest-physical address of the ACPI RSDP, when ACPI tables have been written. */
  rsdpAddress?: number;
  /** Ranges the memory map must not report as RAM (ACPI tables as E820_ACPI, ...). */
  reserved?: ReservedRange[];
  /** Who decompresses a bzImage: tsvmm before boot (default) or the kernel itself. */
  decompress?: 'host' | 'guest';
  protocol?: LinuxBootProtocol;
}

export interface LinuxBoot {
  protocol: LinuxBootProtocol;
  entry: number;
  /** The zero page ('64bit', for RSI) or the hvm_start_info ('pvh', for EBX). */
  bootParams: number;
  cmdline: number;
  initrd?: { address: number; size: number };
  /** The physical range the kernel occupies or will decompress into (for 'guest', up to init_size). */
  kernelStart: number;
  kernelEnd: number;
  e820: E820Entry[];
  format: 'vmlinux' | 'bzImage';
  /** The bzImage payload's format. */
  compression?: Compression;
  release?: string;
  /** The vmlinux's PVH entry, when it has one (unknown for a bzImage decompressed by the guest). */
  pvhEntry?: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const alignUp = (n: number, align: number): number => Math.ceil(n / align) * align;
const alignDown = (n: number, align: number): number => Math.floor(n / align) * align;

const isElf = (file: Uint8Array): boolean => file[0] === 0x7f && file[1] === 0x45 && file[2] === 0x4c && file[3] === 0x46;

/** A kernel whose placement has been worked out but not yet written. */
interface PlannedKernel {
  format: 'vmlinux' | 'bzImage';
  compression?: Compression;
  release?: string;
  /** Setup header bytes for the zero page (bzImage only). */
  header?: Uint8Array;
  cmdlineSize: number;
  initrdAddrMax: number;
  entry: number;
  pvhEntry?: number;
  start: number;
  end: number;
  load(): void;
}

export function loadLinux(kernel: Uint8Array, memory: GuestMemory, options: LinuxLoadOptions): LinuxBoot {
  const protocol = options.protocol ?? '64bit';
  const decompress = options.decompress ?? 'host';
  if (protocol === 'pvh' && decompress === 'guest') {
    throw new LinuxLoadError("PVH boot enters the vmlinux, which decompress: 'guest' does not unpack: use decompress: 'host'");
  }
  const planned = planKernel(kernel, memory, decompress);
  const entry = protocol === 'pvh' ? planned.pvhEntry : planned.entry;
  if (entry === undefined) {
    throw new LinuxImageError('the kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY; built without CONFIG_PVH): use the 64-bit protocol');
  }
  const reserved = options.reserved ?? [];
  checkKernelRange(planned, memory, reserved);

  const cmdline = Buffer.from(options.cmdline, 'utf8');
  if (cmdline.includes(0)) throw new LinuxLoadError('the kernel command line contains a NUL character');
  if (cmdline.length > planned.cmdlineSize) {
    throw new LinuxLoadError(`the kernel command line is ${cmdline.length} bytes, the kernel accepts at most ${planned.cmdlineSize}`);
  }
  const cmdlineBytes = Buffer.concat([cmdline, Buffer.from([0])]);

  const e820 = e820Map(options.ram, reserved);
  const initrd = options.initrd && {
    address: placeInitrd(options.initrd.length, e820, planned),
    size: options.initrd.length,
  };
  const bootInput = { cmdlineAddress: CMDLINE_ADDRESS, e820, initrd, rsdpAddress: options.rsdpAddress };
  const bootBlock = protocol === 'pvh'
    ? buildPvhStartInfo({ address: BOOT_PARAMS_ADDRESS, ...bootInput })
    : buildBootParams({ header: planned.header, ...bootInput });
  for (const [what, start, bytes] of [
    ['the boot parameters', BOOT_PARAMS_ADDRESS, bootBlock],
    ['the command line', CMDLINE_ADDRESS, cmdlineBytes],
  ] as const) {
    if (!memory.contains(start, bytes.length)) throw new LinuxLoadError(`${what} at ${hex(start)} would lie outside guest RAM`);
    checkNotReserved(what, start, start + bytes.length, reserved);
  }

  planned.load();
  memory.write(BOOT_PARAMS_ADDRESS, bootBlock);
  memory.write(CMDLINE_ADDRESS, cmdlineBytes);
  if (initrd && options.initrd) memory.write(initrd.address, options.initrd);

  return {
    protocol,
    entry,
    bootParams: BOOT_PARAMS_ADDRESS,
    cmdline: CMDLINE_ADDRESS,
    initrd,
    kernelStart: planned.start,
    kernelEnd: planned.end,
    e820,
    format: planned.format,
    compression: planned.compression,
    release: planned.release,
    pvhEntry: planned.pvhEntry,
  };
}

function planKernel(file: Uint8Array, memory: GuestMemory, decompress: 'host' | 'guest'): PlannedKernel {
  if (isElf(file)) {
    if (decompress === 'guest') throw new LinuxLoadError("decompress: 'guest' needs a bzImage, and this kernel is an ELF vmlinux");
    const vmlinux = parseVmlinux(file);
    return {
      ...vmlinuxPlan(vmlinux, memory),
      format: 'vmlinux',
      cmdlineSize: DEFAULT_CMDLINE_SIZE,
      initrdAddrMax: DEFAULT_INITRD_ADDR_MAX,
    };
  }
  const bz = parseBzImage(file);
  const common = {
    format: 'bzImage' as const,
    release: bz.release,
    header: bz.headerBytes,
    cmdlineSize: bz.header.cmdline_size,
    initrdAddrMax: bz.header.initrd_addr_max,
  };
  if (decompress === 'guest') return { ...common, ...guestDecompressedPlan(bz, memory), compression: detectCompression(bz.payload) };
  const { data, compression } = decompressPayload(bz.payload, memory.size);
  const vmlinux = parseVmlinux(data);
  return { ...common, ...vmlinuxPlan(vmlinux, memory), compression, release: bz.release ?? vmlinux.release };
}

function vmlinuxPlan(vmlinux: Vmlinux, memory: GuestMemory) {
  return {
    release: vmlinux.release,
    entry: vmlinux.entry,
    pvhEntry: vmlinux.pvhEntry,
    start: vmlinux.start,
    end: vmlinux.end,
    load: () => loadVmlinux(vmlinux, memory),
  };
}

/**
 * The protected-mode kernel goes where it will run: at pref_address for a
 * relocatable kernel (so its decompressor has nothing to move), else at
 * 1 MiB. Either way the kernel then needs init_size bytes from the address
 * it decompresses to (pref_address, i.e. CONFIG_PHYSICAL_START). A kernel
 * with KASLR may still move itself anywhere the memory map says is RAM.
 */
function guestDecompressedPlan(bz: BzImage, memory: GuestMemory) {
  const { header } = bz;
  const runAddress = Math.max(Number(header.pref_address), HIGH_MEMORY_START);
  const loadAddress = header.relocatable_kernel
    ? alignUp(runAddress, Math.max(header.kernel_alignment, PAGE_SIZE))
    : HIGH_MEMORY_START;
  return {
    entry: loadAddress + KERNEL_64_ENTRY_OFFSET,
    start: loadAddress,
    end: Math.max(loadAddress + bz.kernel.length, runAddress + header.init_size),
    load: () => memory.write(loadAddress, bz.kernel),
  };
}

function checkNotReserved(what: string, start: number, end: number, reserved: ReservedRange[]): void {
  const clash = reserved.find((r) => start < r.end && r.start < end);
  if (clash) {
    throw new LinuxLoadError(
      `${what} [${hex(start)}, ${hex(end)}) would overlap the reserved range [${hex(clash.start)}, ${hex(clash.end)})`,
    );
  }
}

function checkKernelRange(planned: PlannedKernel, memory: GuestMemory, reserved: ReservedRange[]): void {
  const range = `[${hex(planned.start)}, ${hex(planned.end)})`;
  if (planned.start < HIGH_MEMORY_START) {
    throw new LinuxImageError(`the kernel wants to load at ${range}, below 1 MiB where the boot structures are`);
  }
  if (planned.end > FOUR_GIB || !memory.contains(planned.start, planned.end - planned.start)) {
    const ramMiB = Math.floor(memory.size / MiB);
    throw new LinuxLoadError(`the kernel needs RAM at ${range}, which the guest's ${ramMiB} MiB do not cover: give it more memory`);
  }
  checkNotReserved('the kernel', planned.start, planned.end, reserved);
}

/**
 * The highest page-aligned spot in usable RAM below both initrd_addr_max
 * and 4 GiB, above the kernel: where Firecracker, QEMU and GRUB put it, out
 * of the way of the kernel's early allocations which grow upwards.
 */
function placeInitrd(size: number, e820: E820Entry[], planned: PlannedKernel): number {
  const limit = Math.min(planned.initrdAddrMax + 1, FOUR_GIB);
  const usable = e820.filter((e) => e.type === E820_RAM).sort((a, b) => b.addr - a.addr);
  for (const e of usable) {
    const top = Math.min(e.addr + e.size, limit);
    const address = alignDown(top - size, PAGE_SIZE);
    if (address >= Math.max(e.addr, planned.end)) return address;
  }
  throw new LinuxLoadError(
    `the initrd (${size} bytes) does not fit in guest RAM between the kernel's end ${hex(planned.end)} and ${hex(limit)}: give the guest more memory`,
  );
}

export interface LinuxImageInfo {
  format: 'bzImage' | 'vmlinux';
  release?: string;
  /** bzImage: boot protocol version, e.g. "2.15". */
  protocol?: string;
  compression?: Compression;
  compressedSize?: number;
  decompressedSize?: number;
  relocatable?: boolean;
  prefAddress?: number;
  kernelAlignment?: number;
  /** Memory the kernel needs from where it runs, while decompressing and booting. */
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  /** vmlinux: physical entry (startup_64), PVH entry, and loaded range. */
  entry?: number;
  pvhEntry?: number;
  loadStart?: number;
  loadEnd?: number;
}

/** What a kernel file is, without decompressing it; throws LinuxImageError for files that are not bootable kernels. */
export function describeLinuxImage(file: Uint8Array): LinuxImageInfo {
  if (isElf(file)) {
    const v = parseVmlinux(file);
    return { format: 'vmlinux', release: v.release, entry: v.entry, pvhEntry: v.pvhEntry, loadStart: v.start, loadEnd: v.end };
  }
  const bz = parseBzImage(file);
  const h = bz.header;
  return {
    format: 'bzImage',
    release: bz.release,
    protocol: protocolName(h.version),
    compression: detectCompression(bz.payload),
    compressedSize: bz.payload.length,
    decompressedSize: decompressedSize(bz.payload),
    relocatable: h.relocatable_kernel !== 0,
    prefAddress: Number(h.pref_address),
    kernelAlignment: h.kernel_alignment,
    initSize: h.init_size,
    cmdlineSize: h.cmdline_size,
    initrdAddrMax: h.initrd_addr_max,
  };
}
