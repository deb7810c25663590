/**
 * Identity-mapped x86-64 page tables, so a guest can start directly in long
 * mode with virtual address == guest-physical address.
 *
 * 4-level paging with 2 MiB pages: 1 GiB pages are an optional CPU feature
 * (pdpe1gb) the guest CPU may lack, while 2 MiB pages always exist.
 */

import type { GuestMemory } from '../../memory/guest-memory.js';
import { GiB, KiB, MiB } from '../../memory/layout.js';

// Bits of a paging-structure entry (PML4E, PDPTE, PDE, PTE). Entries are
// 64 bits wide and NX is bit 63, so these are bigints.
export const PTE_PRESENT = 1n << 0n;
export const PTE_WRITABLE = 1n << 1n;
/** Set at every level of a walk for CPL3 code to reach the page. */
export const PTE_USER = 1n << 2n;
/** In a PDPTE or PDE: the entry maps a 1 GiB or 2 MiB page rather than pointing to a table. */
export const PTE_PAGE_SIZE = 1n << 7n;
/** Execute-disable; only honoured while EFER.NXE is set, reserved otherwise. */
export const PTE_NX = 1n << 63n;
/** Bits 51:12: address of the next table or of the page frame. */
export const PTE_ADDRESS_MASK = 0x000f_ffff_ffff_f000n;

export const PAGE_TABLE_SIZE = 4 * KiB;
const ENTRIES_PER_TABLE = 512;
const LARGE_PAGE_SIZE = 2 * MiB;

/** Identity-mapped addresses must stay in the lower canonical half (below 2^47). */
export const MAX_IDENTITY_MAP = 128 * 1024 * GiB;

interface TableCounts {
  pdpts: number;
  pds: number;
  largePages: number;
}

function tableCounts(mapUpTo: number): TableCounts {
  if (!Number.isSafeInteger(mapUpTo) || mapUpTo <= 0 || mapUpTo > MAX_IDENTITY_MAP) {
    throw new RangeError(`cannot identity-map ${mapUpTo} bytes (must be 1..2^47)`);
  }
  const largePages = Math.ceil(mapUpTo / LARGE_PAGE_SIZE);
  const pds = Math.ceil(largePages / ENTRIES_PER_TABLE);
  const pdpts = Math.ceil(pds / ENTRIES_PER_TABLE);
  return { pdpts, pds, largePages };
}

/** Bytes of guest memory `buildIdentityPageTables` needs for `mapUpTo`. */
export function identityPageTablesSize(mapUpTo: number): number {
  const { pdpts, pds } = tableCounts(mapUpTo);
  return (1 + pdpts + pds) * PAGE_TABLE_SIZE;
}

export interface IdentityPageTablesOptions {
  /** Guest-physical address of a free, 4 KiB aligned area of `identityPageTablesSize(mapUpTo)` bytes. */
  base: number;
  /** Bytes of address space to map from 0, rounded up to 2 MiB. */
  mapUpTo: number;
  /** Set U/S on every entry so CPL3 code can use the pages. */
  user?: boolean;
}

export interface IdentityPageTables {
  /** Value for CR3: the PML4's address. */
  cr3: number;
  /** First byte after the tables. */
  end: number;
}

/**
 * Writes a PML4, then all PDPTs, then all PDs, back to back from `base`.
 * Because the PDPTs (and PDs) are contiguous, the j-th PD is simply the
 * j-th entry counted across all PDPTs, and likewise for 2 MiB pages.
 */
export function buildIdentityPageTables(memory: GuestMemory, options: IdentityPageTablesOptions): IdentityPageTables {
  const { base, mapUpTo, user = false } = options;
  if (!Number.isSafeInteger(base) || base < 0 || base % PAGE_TABLE_SIZE !== 0) {
    throw new RangeError(`page table base 0x${base.toString(16)} is not a 4 KiB aligned address`);
  }
  const { pdpts, pds, largePages } = tableCounts(mapUpTo);
  const pml4 = base;
  const firstPdpt = pml4 + PAGE_TABLE_SIZE;
  const firstPd = firstPdpt + pdpts * PAGE_TABLE_SIZE;
  const end = firstPd + pds * PAGE_TABLE_SIZE;

  // Entries not written below must read as not present.
  memory.fill(base, end - base, 0);

  const flags = PTE_PRESENT | PTE_WRITABLE | (user ? PTE_USER : 0n);
  for (let i = 0; i < pdpts; i++) {
    memory.writeU64(pml4 + i * 8, BigInt(firstPdpt + i * PAGE_TABLE_SIZE) | flags);
  }
  for (let i = 0; i < pds; i++) {
    memory.writeU64(firstPdpt + i * 8, BigInt(firstPd + i * PAGE_TABLE_SIZE) | flags);
  }
  for (let i = 0; i < largePages; i++) {
    memory.writeU64(firstPd + i * 8, BigInt(i * LARGE_PAGE_SIZE) | flags | PTE_PAGE_SIZE);
  }
  return { cr3: pml4, end };
}
