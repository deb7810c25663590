/**
 * The boot benchmark's guest (bench/boot/first-exit.s) in the two forms
 * the VMMs take: a multiboot ELF32 kernel (tsvmm --kernel, QEMU -kernel,
 * the C launcher) and the same code as a flat binary (tsvmm --raw).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseElf } from '../../src/boot/elf.js';
import { assemble } from '../../src/tools/assembler.js';
import { benchSource } from './sources.js';

// Above the first MiB: ld puts the ELF headers in a segment of their own just below the code.
const LOAD_ADDR = 0x200000;

/** A multiboot loader enters with EAX = 0x2BADB002: the guest writes AL = 2, status (2 << 1) | 1. */
export const MULTIBOOT_STATUS = 5;
/** tsvmm starts a raw image with EAX = 0: the guest writes 0, status (0 << 1) | 1. */
export const RAW_STATUS = 1;

export interface BootGuest {
  /** The multiboot ELF32 kernel. */
  elf: string;
  /** The flat binary, loaded at loadAddr and entered at entry (after the multiboot header). */
  flat: string;
  loadAddr: number;
  entry: number;
}

/** Assembles the guest into `dir`. */
export function writeBootGuest(dir: string): BootGuest {
  const source = benchSource('boot/first-exit.s');
  const elfImage = assemble(source, { address: LOAD_ADDR, format: 'elf32' });
  const guest = { elf: join(dir, 'first-exit.elf'), flat: join(dir, 'first-exit.bin'), loadAddr: LOAD_ADDR, entry: Number(parseElf(elfImage).entry) };
  writeFileSync(guest.elf, elfImage);
  writeFileSync(guest.flat, assemble(source, { address: LOAD_ADDR }));
  return guest;
}
