/**
 * A vmlinux: the kernel proper as an ELF64 executable, whether given as a
 * file or decompressed from a bzImage. Its PT_LOAD segments carry their
 * physical load addresses (16 MiB for a default x86-64 build) and its entry
 * point e_entry is the physical address of startup_64, which takes the
 * 64-bit boot protocol (long mode, identity-mapped, RSI = boot_params).
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { EM_X86_64, elfNotes, loadElfSegments, parseElf, PT_LOAD, type ElfImage } from '../elf.js';
import { LinuxImageError } from './errors.js';
import { pvhEntry } from './pvh.js';

export interface Vmlinux {
  elf: ElfImage;
  file: Uint8Array;
  /** Physical address of startup_64. */
  entry: number;
  /** Physical address of the 32-bit PVH entry (pvh_start_xen), when the kernel has one. */
  pvhEntry?: number;
  /** Lowest and end physical address of the loaded segments, bss included. */
  start: number;
  end: number;
  /** The banner's version text, e.g. "6.1.0-50-cloud-amd64 (debian-kernel@...) ... #1 SMP ...". */
  release?: string;
}

const BANNER_PREFIX = Buffer.from('Linux version ');

export function parseVmlinux(file: Uint8Array): Vmlinux {
  let elf: ElfImage;
  try {
    elf = parseElf(file);
  } catch (e) {
    throw new LinuxImageError(`the kernel is not a valid ELF vmlinux: ${(e as Error).message}`);
  }
  if (elf.class !== 64 || elf.machine !== EM_X86_64) {
    throw new LinuxImageError('the ELF kernel is not an x86-64 executable: tsvmm boots x86-64 kernels only');
  }
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && s.memSize > 0);
  if (loads.length === 0) throw new LinuxImageError('the ELF kernel has no PT_LOAD segments');
  const entry = physicalEntry(elf);
  return {
    elf,
    file,
    entry,
    pvhEntry: pvhEntry(elfNotes(elf, file)),
    start: Math.min(...loads.map((s) => s.paddr)),
    end: Math.max(...loads.map((s) => s.paddr + s.memSize)),
    release: bannerRelease(file),
  };
}

/**
 * e_entry is physical in a vmlinux. An entry given as a virtual address
 * (inside some segment's virtual range) is translated through that segment.
 */
function physicalEntry(elf: ElfImage): number {
  const loads = elf.segments.filter((s) => s.type === PT_LOAD);
  for (const s of loads) {
    if (elf.entry >= BigInt(s.paddr) && elf.entry < BigInt(s.paddr + s.memSize)) return Number(elf.entry);
  }
  for (const s of loads) {
    if (elf.entry >= s.vaddr && elf.entry < s.vaddr + BigInt(s.memSize)) return Number(elf.entry - s.vaddr) + s.paddr;
  }
  throw new LinuxImageError(`the ELF kernel's entry point 0x${elf.entry.toString(16)} is outside its loaded segments`);
}

/** The text after the last "Linux version " up to the end of its line (linux_banner). */
function bannerRelease(file: Uint8Array): string | undefined {
  const at = Buffer.from(file.buffer, file.byteOffset, file.byteLength).lastIndexOf(BANNER_PREFIX);
  if (at < 0) return undefined;
  const start = at + BANNER_PREFIX.length;
  let end = start;
  while (end < file.length && end - start < 256 && file[end] !== 0 && file[end] !== 0x0a) end++;
  return Buffer.from(file.subarray(start, end)).toString('latin1');
}

/** Copies the segments to their physical addresses (the caller has checked they fit). */
export function loadVmlinux(vmlinux: Vmlinux, memory: GuestMemory): void {
  loadElfSegments(vmlinux.elf, vmlinux.file, memory);
}
