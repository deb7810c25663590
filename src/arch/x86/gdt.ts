/**
 * The GDT tsvmm gives guests started in protected or long mode, and the TSS
 * the task register points at (VMX needs a usable TR; a CPL3 guest needs
 * RSP0 there to take interrupts).
 */
import type { GuestMemory } from '../../memory/guest-memory.js';

export const Selector = {
  CODE32: 0x08,
  DATA: 0x10,
  CODE64: 0x18,
  USER_CODE64: 0x20 | 3,
  USER_DATA: 0x28 | 3,
  TSS: 0x30,
} as const;

const GDT_ENTRIES: bigint[] = [
  0n, // null
  0x00cf9a000000ffffn, // 32-bit code, ring 0, flat
  0x00cf92000000ffffn, // data, ring 0, flat
  0x00af9a000000ffffn, // 64-bit code, ring 0
  0x00affa000000ffffn, // 64-bit code, ring 3
  0x00cff2000000ffffn, // data, ring 3, flat
];
const TSS_HEADER_SIZE = 0x68;
// An I/O permission bitmap allowing ports 0-0xfff to ring 3. IOPL 3 already does that on
// hardware; some software backends (kvm_pvm) ignore IOPL and consult only the bitmap.
const IO_BITMAP_PORTS = 0x1000;
const IO_BITMAP_SIZE = IO_BITMAP_PORTS / 8;
export const TSS_SIZE = TSS_HEADER_SIZE + IO_BITMAP_SIZE + 1; // the bitmap ends with an all-ones byte
const TSS_TYPE_AVAILABLE = 0x9n;
export const GDT_SIZE = (GDT_ENTRIES.length + 2) * 8; // the TSS descriptor takes two slots in long mode

/** Writes the GDT at `gdtBase` and a zeroed TSS at `tssBase` whose RSP0 is `rsp0`. */
export function writeGdt(memory: GuestMemory, gdtBase: number, tssBase: number, rsp0: number): void {
  GDT_ENTRIES.forEach((d, i) => memory.writeU64(gdtBase + i * 8, d));
  const base = BigInt(tssBase);
  const limit = BigInt(TSS_SIZE - 1);
  const low =
    (limit & 0xffffn) | ((base & 0xffffffn) << 16n) | (TSS_TYPE_AVAILABLE << 40n) | (1n << 47n) | (((base >> 24n) & 0xffn) << 56n);
  memory.writeU64(gdtBase + Selector.TSS, low);
  memory.writeU64(gdtBase + Selector.TSS + 8, base >> 32n);
  memory.fill(tssBase, TSS_SIZE);
  memory.writeU64(tssBase + 4, BigInt(rsp0));
  memory.writeU16(tssBase + 0x66, TSS_HEADER_SIZE); // the I/O bitmap follows the header
  memory.writeU8(tssBase + TSS_SIZE - 1, 0xff);
}
