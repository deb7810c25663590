/**
 * Random and malformed descriptor chains against the rng device, through
 * the whole path: notify register, backend, split queue, device. Each case
 * is checked against an independent model of which chains are valid and
 * which bytes the device may write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, usedRingSize } from '../../src/devices/virtio/queue.js';
import { RNG_MAX_REQUEST, VirtioRng } from '../../src/devices/virtio/rng.js';
import { guardedMemory, VirtioDriver, writeDescriptorAt, type Descriptor } from '../helpers/virtio-driver.js';

const RUNS = 100_000;
const RAM = 0x4000;
const SIZE = 8;
const DESC = 0x0000;
const AVAIL = 0x0080;
const USED = 0x1000;
const INDIRECT = 0x2000;
/** Where well-formed buffers go: clear of the rings and tables. */
const DATA = 0x2800;

interface Case {
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
const caseArbitrary: fc.Arbitrary<Case> = fc.record({
  indirect: fc.boolean(),
  eventIdx: fc.boolean(),
  table: fc.array(descriptor, { minLength: SIZE, maxLength: SIZE }),
  indirectTable: fc.array(descriptor, { minLength: SIZE, maxLength: SIZE }),
  head: fc.oneof({ arbitrary: fc.integer({ min: 0, max: SIZE - 1 }), weight: 10 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
  // One chain, nothing, or an index that runs ahead of the queue.
  availIdx: fc.oneof({ arbitrary: fc.constant(1), weight: 20 }, { arbitrary: fc.constant(0), weight: 1 }, { arbitrary: fc.integer({ min: SIZE + 1, max: 0xffff }), weight: 1 }),
});

type Verdict =
  | { kind: 'nothing' | 'invalid' }
  /** The device's writes may change what it reads next (a buffer over the available index): only safety is checked. */
  | { kind: 'uncertain' }
  | { kind: 'valid'; writable: [number, number][] };

/** The rules of virtio 1.2, 2.7, written out again: what the device must make of this case. */
function expected(c: Case): Verdict {
  const pending = c.availIdx & 0xffff;
  if (pending === 0) return { kind: 'nothing' };
  if (pending > SIZE || c.head >= SIZE) return { kind: 'invalid' };
  const inRam = (addr: bigint, len: number) => addr + BigInt(len) <= BigInt(RAM);
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
    }
    if (!(d.flags & DESC_F_NEXT)) break;
    if (d.next >= table.length) return { kind: 'invalid' };
    index = d.next;
  }
  const overAvailIndex = writable.some(([a, l]) => a < AVAIL + 4 && AVAIL + 2 < a + l);
  return overAvailIndex ? { kind: 'uncertain' } : { kind: 'valid', writable };
}

/** Whether every byte that changed lies in one of `allowed`. */
function changesOnlyIn(before: Uint8Array, after: Uint8Array, allowed: [number, number][]): boolean {
  const same = (start: number, end: number) =>
    end <= start || Buffer.from(before.buffer, before.byteOffset + start, end - start).equals(Buffer.from(after.buffer, after.byteOffset + start, end - start));
  let at = 0;
  for (const [start, length] of [...allowed].sort((a, b) => a[0] - b[0])) {
    if (!same(at, start)) return false;
    at = Math.max(at, start + length);
  }
  return same(at, before.length);
}

test(`${RUNS} random and malformed descriptor chains: the device stays up, writes only where allowed, and NEEDS_RESET follows every bad chain`, { timeout: 180_000 }, () => {
  const { memory, guardsIntact } = guardedMemory(0, RAM);
  const ram = memory.view(0, RAM);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  const seen = { nothing: 0, invalid: 0, uncertain: 0, valid: 0 };
  const usedRing: [number, number] = [USED, usedRingSize(SIZE)];

  fc.assert(
    fc.property(caseArbitrary, (c) => {
      ram.fill(0);
      d.reports.length = 0;
      d.reset();
      assert.equal(d.negotiate(Feature.VERSION_1 | (c.indirect ? Feature.INDIRECT_DESC : 0n) | (c.eventIdx ? Feature.EVENT_IDX : 0n)), true);
      d.setUpQueue(0, { size: SIZE, desc: DESC, avail: AVAIL, used: USED });
      d.driverOk();
      c.table.forEach((desc, i) => writeDescriptorAt(memory, DESC + 16 * i, desc));
      c.indirectTable.forEach((desc, i) => writeDescriptorAt(memory, INDIRECT + 16 * i, desc));
      memory.writeU16(AVAIL + 4, c.head);
      d.setAvailIndex(0, c.availIdx);
      const before = ram.slice();

      d.notify(0); // throws nothing, or the property fails

      assert.ok(guardsIntact(), 'no write outside guest RAM');
      const verdict = expected(c);
      seen[verdict.kind]++;
      const needsReset = (d.status & DeviceStatus.NEEDS_RESET) !== 0;
      const used = memory.readU16(USED + 2);
      switch (verdict.kind) {
        case 'nothing':
          assert.equal(needsReset, false);
          assert.equal(used, 0);
          assert.ok(changesOnlyIn(before, ram, [usedRing]));
          break;
        case 'invalid':
          assert.equal(needsReset, true, 'a bad chain sets NEEDS_RESET');
          assert.equal(d.reports.length, 1, 'reported once');
          assert.equal(used, 0, 'nothing returned');
          assert.ok(changesOnlyIn(before, ram, [usedRing]));
          break;
        case 'valid': {
          assert.equal(needsReset, false, `a valid chain was refused: ${d.reports[0]}`);
          assert.equal(used, 1);
          assert.equal(memory.readU32(USED + 4), c.head);
          const total = verdict.writable.reduce((n, [, l]) => n + l, 0);
          assert.equal(memory.readU32(USED + 8), Math.min(total, RNG_MAX_REQUEST));
          assert.ok(changesOnlyIn(before, ram, [usedRing, ...verdict.writable]), 'writes only into the chain\'s writable buffers and the used ring');
          break;
        }
        case 'uncertain':
          assert.ok(d.reports.length <= 1);
          break;
      }
    }),
    { numRuns: RUNS },
  );
  // The generator must reach every outcome often, or the test proves little.
  assert.ok(seen.valid > RUNS / 5, `valid chains: ${seen.valid}`);
  assert.ok(seen.invalid > RUNS / 5, `invalid chains: ${seen.invalid}`);
  assert.ok(seen.nothing > 0);
  console.log(`# fuzz outcomes: ${JSON.stringify(seen)}`);
});
