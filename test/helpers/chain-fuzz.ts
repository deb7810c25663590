/**
 * Random and malformed descriptor chains for fuzzing a virtio device's
 * queue, and an independent model of the rules of virtio 1.2, 2.7: which
 * chains are valid, and which bytes a device may read and write.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, usedRingSize } from '../../src/devices/virtio/queue.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import { writeDescriptorAt, type Descriptor, type VirtioDriver } from './virtio-driver.js';

export const RAM = 0x4000;
export const SIZE = 8;
export const DESC = 0x0000;
export const AVAIL = 0x0080;
export const USED = 0x1000;
const INDIRECT = 0x2000;
/** Where well-formed buffers go: clear of the rings and tables. */
export const DATA = 0x2800;
/** The used ring, which a device always may write. */
export const USED_RING: [number, number] = [USED, usedRingSize(SIZE)];

export interface Case {
  indirect: boolean;
  eventIdx: boolean;
  table: Descriptor[];
  indirectTable: Descriptor[];
  head: number;
  availIdx: number;
}

const u64 = (max: bigint) => fc.bigInt({ min: 0n, max });
const wellFormed = fc.record({
  addr: fc.integer({ min: DATA, max: RAM - 256 }).map(BigInt),
  len: fc.integer({ min: 0, max: 256 }),
  flags: fc.constantFrom(0, DESC_F_WRITE, DESC_F_NEXT, DESC_F_NEXT | DESC_F_WRITE),
  next: fc.integer({ min: 0, max: SIZE - 1 }),
});
const indirectPointer = fc.record({
  addr: fc.oneof({ arbitrary: fc.constant(BigInt(INDIRECT)), weight: 4 }, { arbitrary: u64(BigInt(RAM + 64)), weight: 1 }),
  len: fc.oneof(fc.constantFrom(16, 32, 64, 128), fc.integer({ min: 0, max: 0x200 })),
  flags: fc.constantFrom(DESC_F_INDIRECT, DESC_F_INDIRECT | DESC_F_WRITE, DESC_F_INDIRECT | DESC_F_NEXT),
  next: fc.integer({ min: 0, max: SIZE }),
});
const garbage = fc.record({
  addr: fc.oneof(u64(BigInt(RAM - 1)), fc.bigInt({ min: BigInt(RAM - 64), max: BigInt(RAM + 64) }), u64(2n ** 64n - 1n)),
  len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: RAM }), fc.integer({ min: 0, max: 0xffff_ffff })),
  flags: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 0xffff })),
  next: fc.oneof(fc.integer({ min: 0, max: SIZE + 1 }), fc.integer({ min: 0, max: 0xffff })),
});
const descriptor = fc.oneof(
  { arbitrary: wellFormed, weight: 8 },
  { arbitrary: indirectPointer, weight: 1 },
  { arbitrary: garbage, weight: 2 },
);
export const caseArbitrary: fc.Arbitrary<Case> = fc.record({
  indirect: fc.boolean(),
  eventIdx: fc.boolean(),
  table: fc.array(descriptor, { minLength: SIZE, maxLength: SIZE }),
  indirectTable: fc.array(descriptor, { minLength: SIZE, maxLength: SIZE }),
  head: fc.oneof({ arbitrary: fc.integer({ min: 0, max: SIZE - 1 }), weight: 10 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
  // One chain, nothing, or an index that runs ahead of the queue.
  availIdx: fc.oneof({ arbitrary: fc.constant(1), weight: 20 }, { arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.integer({ min: SIZE + 1, max: 0xffff }), weight: 1 }),
});

export type Verdict =
  | { kind: 'nothing' | 'invalid' }
  /** The device's writes may change what it reads next (a buffer over the available index): only safety is checked. */
  | { kind: 'uncertain' }
  | { kind: 'valid'; readable: [number, number][]; writable: [number, number][] };

/** The rules of virtio 1.2, 2.7, written out again: what the device must make of this case. */
export function expected(c: Case): Verdict {
  const pending = c.availIdx & 0xffff;
  if (pending === 0) return { kind: 'nothing' };
  if (pending > SIZE || c.head >= SIZE) return { kind: 'invalid' };
  const inRam = (addr: bigint, len: number) => addr + BigInt(len) <= BigInt(RAM);
  const readable: [number, number][] = [];
  const writable: [number, number][] = [];
  let table = c.table;
  let inIndirect = false;
  let sawWritable = false;
  let index = c.head;
  for (let steps = 1; ; steps++) {
    if (steps > table.length) return { kind: 'invalid' };
    const d = table[index];
    if (d.flags & DESC_F_INDIRECT) {
      const fine = c.indirect && !inIndirect && !(d.flags & DESC_F_NEXT) && d.len > 0 && d.len % 16 === 0 && d.len / 16 <= SIZE && inRam(BigInt(d.addr), d.len);
      // Only the prepared indirect area holds the table this model knows.
      if (!fine) return { kind: 'invalid' };
      if (BigInt(d.addr) !== BigInt(INDIRECT)) return { kind: 'uncertain' };
      table = c.indirectTable.slice(0, d.len / 16);
      inIndirect = true;
      index = 0;
      steps = 0;
      continue;
    }
    if (d.len > 0 && !inRam(BigInt(d.addr), d.len)) return { kind: 'invalid' };
    if (d.flags & DESC_F_WRITE) {
      sawWritable = true;
      if (d.len > 0) writable.push([Number(d.addr), d.len]);
    } else if (sawWritable) {
      return { kind: 'invalid' };
    } else if (d.len > 0) {
      readable.push([Number(d.addr), d.len]);
    }
    if (!(d.flags & DESC_F_NEXT)) break;
    if (d.next >= table.length) return { kind: 'invalid' };
    index = d.next;
  }
  const overAvailIndex = writable.some(([a, l]) => a < AVAIL + 4 && AVAIL + 2 < a + l);
  return overAvailIndex ? { kind: 'uncertain' } : { kind: 'valid', readable, writable };
}

/** Whether every byte that changed lies in one of `allowed`. */
export function changesOnlyIn(before: Uint8Array, after: Uint8Array, allowed: [number, number][]): boolean {
  const same = (start: number, end: number) =>
    end <= start || Buffer.from(before.buffer, before.byteOffset + start, end - start).equals(Buffer.from(after.buffer, after.byteOffset + start, end - start));
  let at = 0;
  for (const [start, length] of [...allowed].sort((a, b) => a[0] - b[0])) {
    if (!same(at, start)) return false;
    at = Math.max(at, start + length);
  }
  return same(at, before.length);
}


/** Writes the case's tables and available ring into queue `queue` (set up at DESC/AVAIL/USED). */
export function placeCase(d: VirtioDriver, memory: GuestMemory, queue: number, c: Case): void {
  c.table.forEach((desc, i) => writeDescriptorAt(memory, DESC + 16 * i, desc));
  c.indirectTable.forEach((desc, i) => writeDescriptorAt(memory, INDIRECT + 16 * i, desc));
  memory.writeU16(AVAIL + 4, c.head);
  d.setAvailIndex(queue, c.availIdx);
}

/**
 * What a device must have done with a chain that was not valid, whichever
 * device it is: for 'nothing', nothing; for 'invalid', NEEDS_RESET set and
 * reported once, nothing returned. Either way no byte changed outside `allowed`.
 */
export function assertRefusedCase(kind: 'nothing' | 'invalid', d: VirtioDriver, before: Uint8Array, ram: Uint8Array, allowed: [number, number][]): void {
  const needsReset = (d.status & DeviceStatus.NEEDS_RESET) !== 0;
  assert.equal(needsReset, kind === 'invalid', kind === 'invalid' ? 'a bad chain sets NEEDS_RESET' : 'no chain, no reset');
  assert.equal(d.reports.length, kind === 'invalid' ? 1 : 0, 'a bad chain is reported once');
  assert.equal(d.memory.readU16(USED + 2), 0, 'nothing returned');
  assert.ok(changesOnlyIn(before, ram, allowed));
}

/** The generator must reach valid and invalid chains often, or the fuzzing proves little. */
export function assertCoverage(seen: Record<Verdict['kind'], number>, runs: number): void {
  assert.ok(seen.valid > runs / 5, `valid chains: ${seen.valid}`);
  assert.ok(seen.invalid > runs / 5, `invalid chains: ${seen.invalid}`);
  assert.ok(seen.nothing > 0);
}
