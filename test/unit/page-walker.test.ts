import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { GiB, KiB, MiB } from '../../src/memory/layout.js';
import { PTE_NX, PTE_PAGE_SIZE, PTE_PRESENT, PTE_USER, PTE_WRITABLE } from '../../src/arch/x86/page-tables.js';
import {
  PF_FETCH,
  PF_PRESENT,
  PF_RESERVED,
  PF_USER,
  PF_WRITE,
  type Access,
  type PagingMode,
  translate,
  translateRange,
} from '../../src/arch/x86/page-walker.js';

const PML4 = 0x1000;
const PDPT = 0x2000;
const PD = 0x3000;
const PT = 0x4000;
const CR3 = BigInt(PML4);
const ALL = PTE_PRESENT | PTE_WRITABLE | PTE_USER;

/** The virtual address selected by one index per level, sign-extended from bit 47. */
function va(pml4: number, pdpt = 0, pd = 0, pt = 0, offset = 0): bigint {
  const address =
    (BigInt(pml4) << 39n) | (BigInt(pdpt) << 30n) | (BigInt(pd) << 21n) | (BigInt(pt) << 12n) | BigInt(offset);
  return BigInt.asUintN(64, BigInt.asIntN(48, address));
}

/**
 * Hand-built tables, one index per situation under test:
 *   PML4[0] -> PDPT, PML4[1] absent, PML4[2] has PS (reserved), PML4[256] -> PDPT
 *   PDPT[0] -> PD, [1] 1 GiB page at 2 GiB, [2] absent, [3] table outside RAM,
 *     [4] 1 GiB page with reserved bit 13
 *   PD[0] -> PT, [1] 2 MiB page at 6 MiB, [2] absent, [3] 2 MiB page with reserved bit 13, [4] -> PT but supervisor-only
 *   PT[1] 0x7000, [2] 0x9000, [3] supervisor 0xa000, [4] read-only 0xb000, [5] NX 0xc000, [6] absent,
 *   PT[7] 0xd000 with address bit 40 set, [8] 0xe000 with the PAT bit (bit 7)
 */
function buildMemory(): GuestMemory {
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(64 * KiB) }]);
  const entry = (table: number, index: number, value: bigint) => memory.writeU64(table + index * 8, value);
  entry(PML4, 0, BigInt(PDPT) | ALL);
  entry(PML4, 2, BigInt(PDPT) | ALL | PTE_PAGE_SIZE);
  entry(PML4, 256, BigInt(PDPT) | ALL);
  entry(PDPT, 0, BigInt(PD) | ALL);
  entry(PDPT, 1, BigInt(2 * GiB) | ALL | PTE_PAGE_SIZE);
  entry(PDPT, 3, 0x1_0000_0000n | ALL);
  entry(PDPT, 4, BigInt(2 * GiB) | 0x2000n | ALL | PTE_PAGE_SIZE);
  entry(PD, 0, BigInt(PT) | ALL);
  entry(PD, 1, BigInt(6 * MiB) | ALL | PTE_PAGE_SIZE);
  entry(PD, 3, BigInt(6 * MiB) | 0x2000n | ALL | PTE_PAGE_SIZE);
  entry(PD, 4, BigInt(PT) | PTE_PRESENT | PTE_WRITABLE);
  entry(PT, 1, 0x7000n | ALL);
  entry(PT, 2, 0x9000n | ALL);
  entry(PT, 3, 0xa000n | PTE_PRESENT | PTE_WRITABLE);
  entry(PT, 4, 0xb000n | PTE_PRESENT | PTE_USER);
  entry(PT, 5, 0xc000n | ALL | PTE_NX);
  entry(PT, 7, 0xd000n | (1n << 40n) | ALL);
  entry(PT, 8, 0xe000n | ALL | (1n << 7n));
  return memory;
}

const memory = buildMemory();

function expectFault(address: bigint, errorCode: number, access: Access = {}, paging: PagingMode = {}): string {
  const result = translate(memory, CR3, address, access, paging);
  assert.equal(result.ok, false, `0x${address.toString(16)} should fault`);
  assert.ok(!result.ok);
  assert.deepEqual(result.fault, { vector: 14, errorCode, address });
  return result.reason;
}

test('4 KiB page', () => {
  assert.deepEqual(translate(memory, CR3, va(0, 0, 0, 1, 0x123)), { ok: true, gpa: 0x7123, pageSize: 4 * KiB });
});

test('2 MiB page', () => {
  assert.deepEqual(translate(memory, CR3, va(0, 0, 1, 0, 0x12345)), {
    ok: true,
    gpa: 6 * MiB + 0x12345,
    pageSize: 2 * MiB,
  });
});

test('1 GiB page', () => {
  assert.deepEqual(translate(memory, CR3, va(0, 1, 0, 0, 0x123456)), {
    ok: true,
    gpa: 2 * GiB + 0x123456,
    pageSize: 1 * GiB,
  });
});

test('upper canonical half walks PML4 entries 256..511', () => {
  const address = va(256, 0, 0, 1, 0x10);
  assert.equal(address, 0xffff_8000_0000_1010n);
  assert.deepEqual(translate(memory, CR3, address), { ok: true, gpa: 0x7010, pageSize: 4 * KiB });
});

test('a negative bigint is read as its 64-bit two\'s complement', () => {
  const result = translate(memory, CR3, -0x1000n);
  assert.ok(!result.ok);
  assert.deepEqual(result.fault, { vector: 14, errorCode: 0, address: 0xffff_ffff_ffff_f000n });
});

test('CR3 flag bits (PWT, PCD, PCID) do not move the PML4', () => {
  assert.deepEqual(translate(memory, CR3 | 0x18n, va(0, 0, 0, 2)), { ok: true, gpa: 0x9000, pageSize: 4 * KiB });
  assert.deepEqual(translate(memory, PML4 | 0x5, va(0, 0, 0, 2)), { ok: true, gpa: 0x9000, pageSize: 4 * KiB });
});

test('bit 7 of a PTE is PAT, not a page size', () => {
  assert.deepEqual(translate(memory, CR3, va(0, 0, 0, 8, 1)), { ok: true, gpa: 0xe001, pageSize: 4 * KiB });
});

test('not present at each level: P=0, with the access bits', () => {
  const absent: [string, bigint][] = [
    ['PML4', va(1)],
    ['PDPT', va(0, 2)],
    ['PD', va(0, 0, 2)],
    ['PT', va(0, 0, 0, 6)],
  ];
  for (const [level, address] of absent) {
    assert.match(expectFault(address, 0), new RegExp(`${level} entry not present`));
    expectFault(address, PF_WRITE | PF_USER, { write: true, user: true });
    expectFault(address, PF_FETCH, { fetch: true }, { nxe: true });
    expectFault(address, PF_USER | PF_FETCH, { fetch: true, user: true }, { nxe: true });
  }
});

test('I/D is reported only while NXE is on', () => {
  expectFault(va(0, 0, 0, 6), 0, { fetch: true });
});

test('user access to a supervisor page', () => {
  const address = va(0, 0, 0, 3);
  assert.equal(translate(memory, CR3, address, { write: true }).ok, true);
  assert.match(expectFault(address, PF_PRESENT | PF_USER, { user: true }), /supervisor/);
  expectFault(address, PF_PRESENT | PF_USER | PF_WRITE, { user: true, write: true });
});

test('U/S must be set at every level, not only in the PTE', () => {
  const address = va(0, 0, 4, 1);
  assert.deepEqual(translate(memory, CR3, address), { ok: true, gpa: 0x7000, pageSize: 4 * KiB });
  expectFault(address, PF_PRESENT | PF_USER, { user: true });
});

test('write to a read-only page', () => {
  const address = va(0, 0, 0, 4);
  assert.equal(translate(memory, CR3, address, { user: true }).ok, true);
  assert.match(expectFault(address, PF_PRESENT | PF_WRITE | PF_USER, { user: true, write: true }), /read-only/);
});

test('supervisor write to a read-only page faults only with CR0.WP', () => {
  const address = va(0, 0, 0, 4);
  assert.equal(translate(memory, CR3, address, { write: true }).ok, true);
  assert.equal(translate(memory, CR3, address, { write: true }, { wp: false }).ok, true);
  expectFault(address, PF_PRESENT | PF_WRITE, { write: true }, { wp: true });
});

test('instruction fetch from an NX page', () => {
  const address = va(0, 0, 0, 5);
  const nxe = { nxe: true };
  assert.equal(translate(memory, CR3, address, {}, nxe).ok, true);
  assert.equal(translate(memory, CR3, va(0, 0, 0, 1), { fetch: true }, nxe).ok, true);
  assert.match(expectFault(address, PF_PRESENT | PF_FETCH, { fetch: true }, nxe), /no-execute/);
  expectFault(address, PF_PRESENT | PF_FETCH | PF_USER, { fetch: true, user: true }, nxe);
});

test('the NX bit is reserved while NXE is off', () => {
  expectFault(va(0, 0, 0, 5), PF_PRESENT | PF_RESERVED);
  expectFault(va(0, 0, 0, 5), PF_PRESENT | PF_RESERVED | PF_WRITE, { write: true });
});

test('reserved bits: PS in a PML4 entry, misaligned 1 GiB and 2 MiB frames', () => {
  assert.match(expectFault(va(2), PF_PRESENT | PF_RESERVED), /PML4 entry .* reserved/);
  assert.match(expectFault(va(0, 4), PF_PRESENT | PF_RESERVED), /PDPT entry/);
  assert.match(expectFault(va(0, 0, 3), PF_PRESENT | PF_RESERVED | PF_USER, { user: true }), /PD entry/);
});

test('address bits at or above MAXPHYADDR are reserved', () => {
  const address = va(0, 0, 0, 7);
  assert.deepEqual(translate(memory, CR3, address), { ok: true, gpa: 2 ** 40 + 0xd000, pageSize: 4 * KiB });
  expectFault(address, PF_PRESENT | PF_RESERVED, {}, { maxPhyAddr: 36 });
  // Entries with only low address bits stay valid under a small MAXPHYADDR.
  assert.equal(translate(memory, CR3, va(0, 0, 0, 1), {}, { maxPhyAddr: 39 }).ok, true);
});

test('non-canonical address gives #GP(0)', () => {
  for (const address of [0x0000_8000_0000_0000n, 0xffff_7fff_ffff_ffffn, 0x8000_0000_0000_0000n]) {
    const result = translate(memory, CR3, address);
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.deepEqual(result.fault, { vector: 13, errorCode: 0, address });
    assert.match(result.reason, /not canonical/);
  }
});

test('a table outside guest RAM is a failure, not an exception', () => {
  assert.match(expectFault(va(0, 3), PF_PRESENT | PF_RESERVED), /outside guest RAM/);
  for (const cr3 of [0x1_0000_0000n, 0xf_ffff_ffff_f000n, 60 * KiB + 4 * KiB]) {
    const result = translate(memory, cr3, va(0, 0, 0, 1));
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /PML4 entry .* outside guest RAM/);
  }
});

test('translateRange: crossing into a different physical page', () => {
  assert.deepEqual(translateRange(memory, CR3, va(0, 0, 0, 1, 0xff0), 0x20), {
    ok: true,
    pieces: [
      { gpa: 0x7ff0, length: 0x10 },
      { gpa: 0x9000, length: 0x10 },
    ],
  });
});

test('translateRange: within one page, and empty', () => {
  assert.deepEqual(translateRange(memory, CR3, va(0, 0, 0, 2, 8), 0xff8), {
    ok: true,
    pieces: [{ gpa: 0x9008, length: 0xff8 }],
  });
  assert.deepEqual(translateRange(memory, CR3, va(0, 0, 0, 6), 0), { ok: true, pieces: [] });
});

test('translateRange: the first fault, at the page where it happens', () => {
  const notPresent = translateRange(memory, CR3, va(0, 0, 0, 5, 0xff8), 16, {}, { nxe: true });
  assert.ok(!notPresent.ok);
  assert.deepEqual(notPresent.fault, { vector: 14, errorCode: 0, address: va(0, 0, 0, 6) });

  const supervisor = translateRange(memory, CR3, va(0, 0, 0, 2, 0xff0), 0x20, { user: true, write: true });
  assert.ok(!supervisor.ok);
  assert.deepEqual(supervisor.fault, {
    vector: 14,
    errorCode: PF_PRESENT | PF_WRITE | PF_USER,
    address: va(0, 0, 0, 3),
  });
});

test('translateRange: rejects a negative or fractional length', () => {
  assert.throws(() => translateRange(memory, CR3, 0n, -1), RangeError);
  assert.throws(() => translateRange(memory, CR3, 0n, 1.5), RangeError);
});
