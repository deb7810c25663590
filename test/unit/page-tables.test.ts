import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { GiB, KiB, MiB } from '../../src/memory/layout.js';
import {
  PTE_PAGE_SIZE,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITABLE,
  buildIdentityPageTables,
  identityPageTablesSize,
} from '../../src/arch/x86/page-tables.js';
import { PF_PRESENT, PF_USER, translate, translateRange } from '../../src/arch/x86/page-walker.js';

const PAGE = 4 * KiB;

function ram(size: number): GuestMemory {
  return new GuestMemory([{ gpa: 0, bytes: new Uint8Array(size) }]);
}

test('size: one PML4, one PDPT and one PD per started GiB', () => {
  assert.equal(identityPageTablesSize(1), 3 * PAGE);
  assert.equal(identityPageTablesSize(2 * MiB), 3 * PAGE);
  assert.equal(identityPageTablesSize(1 * GiB), 3 * PAGE);
  assert.equal(identityPageTablesSize(1 * GiB + 1), 4 * PAGE);
  assert.equal(identityPageTablesSize(4 * GiB), 6 * PAGE);
});

test('size: beyond 512 GiB adds PDPTs (PML4 entries)', () => {
  assert.equal(identityPageTablesSize(512 * GiB), (1 + 1 + 512) * PAGE);
  assert.equal(identityPageTablesSize(513 * GiB), (1 + 2 + 513) * PAGE);
  assert.equal(identityPageTablesSize(128 * 1024 * GiB), (1 + 256 + 256 * 512) * PAGE);
});

test('size: rejects empty, fractional and non-canonical spans', () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity, 128 * 1024 * GiB + 1]) {
    assert.throws(() => identityPageTablesSize(bad), RangeError, String(bad));
  }
});

test('build: returns cr3 at base and end after the tables', () => {
  const memory = ram(1 * MiB);
  const tables = buildIdentityPageTables(memory, { base: 0x9000, mapUpTo: 8 * MiB });
  assert.deepEqual(tables, { cr3: 0x9000, end: 0x9000 + identityPageTablesSize(8 * MiB) });
});

test('build: entries are present, writable, 2 MiB pages, supervisor-only by default', () => {
  const memory = ram(1 * MiB);
  const { cr3 } = buildIdentityPageTables(memory, { base: 0x1000, mapUpTo: 4 * MiB });
  const pml4e = memory.readU64(cr3);
  const pdpte = memory.readU64(Number(pml4e & ~0xfffn));
  const pd = Number(pdpte & ~0xfffn);
  assert.equal(memory.readU64(pd + 8), 2n * BigInt(MiB) | PTE_PRESENT | PTE_WRITABLE | PTE_PAGE_SIZE);
  for (const entry of [pml4e, pdpte]) {
    assert.equal(entry & (PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_PAGE_SIZE), PTE_PRESENT | PTE_WRITABLE);
  }
});

test('build: the walker sees an identity map up to the rounded-up end, nothing after', () => {
  const memory = ram(1 * MiB);
  // Only the tables need to be RAM; the mapped span is just address space.
  const { cr3 } = buildIdentityPageTables(memory, { base: 0x10000, mapUpTo: 5 * GiB + 1 });
  for (const address of [0, 0x1234, 2 * MiB + 5, 3 * GiB + 7, 5 * GiB + 2 * MiB - 1]) {
    const result = translate(memory, cr3, BigInt(address), { write: true });
    assert.deepEqual(result, { ok: true, gpa: address, pageSize: 2 * MiB }, `0x${address.toString(16)}`);
  }
  const after = translate(memory, cr3, BigInt(5 * GiB + 2 * MiB));
  assert.equal(after.ok, false);
  assert.equal(!after.ok && after.fault.errorCode, 0);
});

test('build: more than 512 GiB uses a second PML4 entry', () => {
  const memory = ram(4 * MiB);
  const { cr3, end } = buildIdentityPageTables(memory, { base: 0, mapUpTo: 600 * GiB });
  assert.equal(end, (1 + 2 + 600) * PAGE);
  const address = 599 * GiB + 0xabcde;
  assert.deepEqual(translate(memory, cr3, BigInt(address)), { ok: true, gpa: address, pageSize: 2 * MiB });
});

test('build: clears stale data in the table area', () => {
  const memory = ram(1 * MiB);
  memory.fill(0, 1 * MiB, 0xff);
  const { cr3 } = buildIdentityPageTables(memory, { base: 0x2000, mapUpTo: 2 * MiB });
  assert.equal(translate(memory, cr3, BigInt(2 * MiB)).ok, false);
  assert.equal(translate(memory, cr3, BigInt(1 * GiB)).ok, false);
});

test('build: user option lets CPL3 reach the pages; without it CPL3 faults', () => {
  const memory = ram(1 * MiB);
  const supervisor = buildIdentityPageTables(memory, { base: 0x1000, mapUpTo: 2 * MiB });
  const denied = translate(memory, supervisor.cr3, 0x5000n, { user: true });
  assert.equal(denied.ok, false);
  assert.equal(!denied.ok && denied.fault.errorCode, PF_PRESENT | PF_USER);

  const user = buildIdentityPageTables(memory, { base: 0x1000, mapUpTo: 2 * MiB, user: true });
  assert.deepEqual(translate(memory, user.cr3, 0x5000n, { user: true, write: true }), {
    ok: true,
    gpa: 0x5000,
    pageSize: 2 * MiB,
  });
});

test('build: a range across 2 MiB pages comes back as one contiguous piece', () => {
  const memory = ram(1 * MiB);
  const { cr3 } = buildIdentityPageTables(memory, { base: 0x1000, mapUpTo: 8 * MiB });
  assert.deepEqual(translateRange(memory, cr3, BigInt(2 * MiB - 16), 4 * MiB), {
    ok: true,
    pieces: [{ gpa: 2 * MiB - 16, length: 4 * MiB }],
  });
});

test('build: rejects a misaligned base and an area outside RAM', () => {
  const memory = ram(64 * KiB);
  assert.throws(() => buildIdentityPageTables(memory, { base: 0x1008, mapUpTo: 2 * MiB }), RangeError);
  assert.throws(() => buildIdentityPageTables(memory, { base: -PAGE, mapUpTo: 2 * MiB }), RangeError);
  assert.throws(() => buildIdentityPageTables(memory, { base: 60 * KiB, mapUpTo: 2 * MiB }), {
    name: 'GuestMemoryError',
  });
});
