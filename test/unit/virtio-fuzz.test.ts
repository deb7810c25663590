/**
 * Random and malformed descriptor chains against the rng device, through
 * the whole path: notify register, backend, split queue, device. Each case
 * is checked against an independent model of which chains are valid and
 * which bytes the device may write (test/helpers/chain-fuzz.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { RNG_MAX_REQUEST, VirtioRng } from '../../src/devices/virtio/rng.js';
import { assertCoverage, assertRefusedCase, AVAIL, caseArbitrary, changesOnlyIn, DESC, expected, placeCase, RAM, SIZE, USED, USED_RING } from '../helpers/chain-fuzz.js';
import { guardedMemory, VirtioDriver } from '../helpers/virtio-driver.js';

const RUNS = 100_000;

test(`${RUNS} random and malformed descriptor chains: the device stays up, writes only where allowed, and NEEDS_RESET follows every bad chain`, { timeout: 180_000 }, () => {
  const { memory, guardsIntact } = guardedMemory(0, RAM);
  const ram = memory.view(0, RAM);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  const seen = { nothing: 0, invalid: 0, uncertain: 0, valid: 0 };

  fc.assert(
    fc.property(caseArbitrary, (c) => {
      ram.fill(0);
      d.reports.length = 0;
      d.reset();
      assert.equal(d.negotiate(Feature.VERSION_1 | (c.indirect ? Feature.INDIRECT_DESC : 0n) | (c.eventIdx ? Feature.EVENT_IDX : 0n)), true);
      d.setUpQueue(0, { size: SIZE, desc: DESC, avail: AVAIL, used: USED });
      d.driverOk();
      placeCase(d, memory, 0, c);
      const before = ram.slice();

      d.notify(0); // throws nothing, or the property fails

      assert.ok(guardsIntact(), 'no write outside guest RAM');
      const verdict = expected(c);
      seen[verdict.kind]++;
      const needsReset = (d.status & DeviceStatus.NEEDS_RESET) !== 0;
      const used = memory.readU16(USED + 2);
      switch (verdict.kind) {
        case 'nothing':
        case 'invalid':
          assertRefusedCase(verdict.kind, d, before, ram, [USED_RING]);
          break;
        case 'valid': {
          assert.equal(needsReset, false, `a valid chain was refused: ${d.reports[0]}`);
          assert.equal(used, 1);
          assert.equal(memory.readU32(USED + 4), c.head);
          const total = verdict.writable.reduce((n, [, l]) => n + l, 0);
          assert.equal(memory.readU32(USED + 8), Math.min(total, RNG_MAX_REQUEST));
          assert.ok(changesOnlyIn(before, ram, [USED_RING, ...verdict.writable]), 'writes only into the chain\'s writable buffers and the used ring');
          break;
        }
        case 'uncertain':
          assert.ok(d.reports.length <= 1);
          break;
      }
    }),
    { numRuns: RUNS },
  );
  assertCoverage(seen, RUNS);
  console.log(`# fuzz outcomes: ${JSON.stringify(seen)}`);
});
