/**
 * A software walk of the guest's 4-level long-mode page tables, for when the
 * VMM must turn a guest-virtual address into a guest-physical one (emulating
 * an instruction, reading a buffer the guest passed by pointer).
 *
 * The walk only reads the tables: it does not set Accessed/Dirty bits.
 * Everything it reads is guest-controlled, so every way a walk can go wrong
 * comes back as a failure carrying the fault the CPU would raise.
 */

import { GuestMemoryError, type GuestMemory } from '../../memory/guest-memory.js';
import { PTE_ADDRESS_MASK, PTE_NX, PTE_PAGE_SIZE, PTE_PRESENT, PTE_USER, PTE_WRITABLE } from './page-tables.js';

// #PF error code bits.
/** 0: the entry was not present; 1: a protection or reserved-bit violation. */
export const PF_PRESENT = 1 << 0;
export const PF_WRITE = 1 << 1;
export const PF_USER = 1 << 2;
export const PF_RESERVED = 1 << 3;
/** Instruction fetch; reported only while EFER.NXE is set (SMEP is not modelled). */
export const PF_FETCH = 1 << 4;

export const VECTOR_GP = 13;
export const VECTOR_PF = 14;

export interface TranslationFault {
  vector: typeof VECTOR_GP | typeof VECTOR_PF;
  errorCode: number;
  /** The address that failed to translate (CR2 for a #PF). */
  address: bigint;
}

export interface TranslationFailure {
  ok: false;
  fault: TranslationFault;
  reason: string;
}

export type Translation = { ok: true; gpa: number; pageSize: number } | TranslationFailure;

export interface Access {
  write?: boolean;
  /** CPL3 access. */
  user?: boolean;
  fetch?: boolean;
}

export interface PagingMode {
  /** 5-level paging is not supported. */
  la57?: false;
  /** EFER.NXE: the NX bit is honoured instead of being reserved. */
  nxe?: boolean;
  /** CR0.WP: supervisor writes to read-only pages fault. */
  wp?: boolean;
  /** The guest CPU's MAXPHYADDR; address bits from here to 51 are reserved. Defaults to 52. */
  maxPhyAddr?: number;
}

interface Level {
  name: string;
  /** Lowest virtual-address bit this level's index selects. */
  shift: bigint;
  /** An entry at this level may map a page directly (PS bit). */
  mayMapLargePage: boolean;
}

const LEVELS: readonly Level[] = [
  { name: 'PML4', shift: 39n, mayMapLargePage: false },
  { name: 'PDPT', shift: 30n, mayMapLargePage: true },
  { name: 'PD', shift: 21n, mayMapLargePage: true },
  { name: 'PT', shift: 12n, mayMapLargePage: false },
];

/** Bits 63:47 all equal: the only addresses 4-level paging can express. */
function isCanonical(va: bigint): boolean {
  const top = va >> 47n;
  return top === 0n || top === 0x1ffffn;
}

/** Bits of an entry that must be zero, given where it sits in the walk. */
function reservedBits(level: Level, mapsPage: boolean, paging: PagingMode): bigint {
  const maxPhyAddr = BigInt(paging.maxPhyAddr ?? 52);
  let reserved = ((1n << 52n) - 1n) & ~((1n << maxPhyAddr) - 1n);
  if (!paging.nxe) reserved |= PTE_NX;
  if (level.shift === 39n) reserved |= PTE_PAGE_SIZE;
  // A large page's frame is aligned to its size; bit 12 is PAT, the rest between must be zero.
  if (mapsPage && level.mayMapLargePage) reserved |= ((1n << level.shift) - 1n) & ~0x1fffn;
  return reserved;
}

const hex = (value: bigint | number): string => `0x${value.toString(16)}`;

export function translate(
  memory: GuestMemory,
  cr3: bigint | number,
  va: bigint,
  access: Access = {},
  paging: PagingMode = {},
): Translation {
  const address = BigInt.asUintN(64, va);
  if (!isCanonical(address)) {
    return {
      ok: false,
      fault: { vector: VECTOR_GP, errorCode: 0, address },
      reason: `${hex(address)} is not canonical`,
    };
  }

  const accessBits =
    (access.write ? PF_WRITE : 0) | (access.user ? PF_USER : 0) | (access.fetch && paging.nxe ? PF_FETCH : 0);
  const pageFault = (bits: number, reason: string): TranslationFailure => ({
    ok: false,
    fault: { vector: VECTOR_PF, errorCode: accessBits | bits, address },
    reason: `${hex(address)}: ${reason}`,
  });

  // Permissions are the intersection over all levels of the walk.
  let writable = true;
  let user = true;
  let executable = true;
  let table = BigInt(cr3) & PTE_ADDRESS_MASK;

  for (const level of LEVELS) {
    const entryGpa = Number(table + ((address >> level.shift) & 0x1ffn) * 8n);
    let entry: bigint;
    try {
      entry = memory.readU64(entryGpa);
    } catch (error) {
      if (!(error instanceof GuestMemoryError)) throw error;
      // No sane guest points its tables outside RAM; report it as a corrupt
      // (reserved-bit) entry rather than one the guest might try to fault in.
      return pageFault(PF_PRESENT | PF_RESERVED, `${level.name} entry at ${hex(entryGpa)} is outside guest RAM`);
    }

    if ((entry & PTE_PRESENT) === 0n) return pageFault(0, `${level.name} entry not present`);
    const mapsPage = level.shift === 12n || (level.mayMapLargePage && (entry & PTE_PAGE_SIZE) !== 0n);
    if ((entry & reservedBits(level, mapsPage, paging)) !== 0n) {
      return pageFault(PF_PRESENT | PF_RESERVED, `${level.name} entry ${hex(entry)} has reserved bits set`);
    }
    writable &&= (entry & PTE_WRITABLE) !== 0n;
    user &&= (entry & PTE_USER) !== 0n;
    executable &&= !(paging.nxe && (entry & PTE_NX) !== 0n);

    if (!mapsPage) {
      table = entry & PTE_ADDRESS_MASK;
      continue;
    }

    if (access.user && !user) return pageFault(PF_PRESENT, 'user access to a supervisor page');
    if (access.write && !writable && (access.user || paging.wp)) {
      return pageFault(PF_PRESENT, 'write to a read-only page');
    }
    if (access.fetch && !executable) return pageFault(PF_PRESENT, 'instruction fetch from a no-execute page');

    const offsetMask = (1n << level.shift) - 1n;
    const frame = entry & PTE_ADDRESS_MASK & ~offsetMask;
    return { ok: true, gpa: Number(frame | (address & offsetMask)), pageSize: Number(offsetMask + 1n) };
  }
  throw new Error('unreachable: the PT level always maps a page');
}

export interface PhysicalPiece {
  gpa: number;
  length: number;
}

/**
 * Translates [va, va+length) page by page. Pieces that happen to be
 * physically contiguous are merged, so an identity-mapped buffer comes back
 * as one piece.
 */
export function translateRange(
  memory: GuestMemory,
  cr3: bigint | number,
  va: bigint,
  length: number,
  access: Access = {},
  paging: PagingMode = {},
): { ok: true; pieces: PhysicalPiece[] } | TranslationFailure {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid length ${length}`);
  const pieces: PhysicalPiece[] = [];
  let address = BigInt.asUintN(64, va);
  let remaining = length;
  while (remaining > 0) {
    const result = translate(memory, cr3, address, access, paging);
    if (!result.ok) return result;
    const pieceLength = Math.min(remaining, result.pageSize - (result.gpa % result.pageSize));
    const last = pieces[pieces.length - 1];
    if (last && last.gpa + last.length === result.gpa) last.length += pieceLength;
    else pieces.push({ gpa: result.gpa, length: pieceLength });
    address = BigInt.asUintN(64, address + BigInt(pieceLength));
    remaining -= pieceLength;
  }
  return { ok: true, pieces };
}
