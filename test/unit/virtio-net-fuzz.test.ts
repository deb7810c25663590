/**
 * Random and malformed descriptor chains against the network device, on
 * its receive and its transmit queue, with and without mergeable buffers
 * and segmentation offloads, through the whole path (notify register,
 * backend, split queue, device, a packet port in memory). Each case is
 * checked against the independent chain model (test/helpers/chain-fuzz.ts)
 * and what the device must make of a valid chain: a transmitted frame is
 * exactly its readable bytes, a received one lands only in its writable
 * buffers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { usedRingSize } from '../../src/devices/virtio/queue.js';
import { NET_HEADER_SIZE, NetFeature, RX_QUEUE, TX_QUEUE, VirtioNet } from '../../src/devices/virtio/net.js';
import { assertCoverage, assertRefusedCase, AVAIL, caseArbitrary, changesOnlyIn, DESC, expected, placeCase, RAM, SIZE, USED, USED_RING } from '../helpers/chain-fuzz.js';
import { FakePacketPort } from '../helpers/fake-packet-port.js';
import { guardedMemory, VirtioDriver } from '../helpers/virtio-driver.js';

const RUNS = 100_000;
/** The other queue sits past the model's area, at the top of RAM; it stays empty. */
const IDLE_QUEUE = { size: SIZE, desc: RAM - 0x400, avail: RAM - 0x300, used: RAM - 0x200 };

const netCase = fc.record({
  chain: caseArbitrary,
  queue: fc.constantFrom(RX_QUEUE, TX_QUEUE),
  mergeable: fc.boolean(),
  gso: fc.boolean(),
  frameLength: fc.oneof(fc.constant(0), fc.integer({ min: NET_HEADER_SIZE, max: 2000 })),
});

test(`${RUNS} random and malformed chains on the network device's queues: it stays up, in bounds, and sends or receives exactly what a valid chain allows`, { timeout: 300_000 }, () => {
  const { memory, guardsIntact } = guardedMemory(0, RAM);
  const ram = memory.view(0, RAM);
  const port = new FakePacketPort();
  const d = new VirtioDriver(memory, new VirtioNet(Uint8Array.of(0x52, 0x54, 0, 1, 2, 3), port));
  d.enablePci();
  const seen = { nothing: 0, invalid: 0, uncertain: 0, valid: 0, sent: 0, received: 0 };

  fc.assert(
    fc.property(netCase, ({ chain: c, queue, mergeable, gso, frameLength }) => {
      ram.fill(0);
      d.reports.length = 0;
      port.sent.length = 0;
      port.incoming.length = 0;
      const frame = Uint8Array.from({ length: frameLength }, (_, i) => (i * 7 + 1) & 0xff);
      if (frameLength > 0) port.incoming.push(frame);
      d.reset();
      const features =
        Feature.VERSION_1 | (c.indirect ? Feature.INDIRECT_DESC : 0n) | (c.eventIdx ? Feature.EVENT_IDX : 0n) |
        (mergeable ? NetFeature.MRG_RXBUF : 0n) | (gso ? NetFeature.GUEST_CSUM | NetFeature.GUEST_TSO4 : 0n);
      assert.equal(d.negotiate(features), true);
      const other = queue === RX_QUEUE ? TX_QUEUE : RX_QUEUE;
      d.setUpQueue(queue, { size: SIZE, desc: DESC, avail: AVAIL, used: USED });
      d.setUpQueue(other, IDLE_QUEUE);
      d.driverOk();
      placeCase(d, memory, queue, c);
      const before = ram.slice();

      d.notify(queue); // throws nothing, or the property fails

      assert.ok(guardsIntact(), 'no write outside guest RAM');
      const verdict = expected(c);
      seen[verdict.kind]++;
      const needsReset = (d.status & DeviceStatus.NEEDS_RESET) !== 0;
      const used = memory.readU16(USED + 2);
      const idle: [number, number] = [IDLE_QUEUE.used, usedRingSize(SIZE)];
      switch (verdict.kind) {
        case 'nothing':
        case 'invalid':
          assertRefusedCase(verdict.kind, d, before, ram, [USED_RING, idle]);
          assert.deepEqual(port.sent, [], 'nothing sent');
          break;
        case 'valid': {
          assert.equal(needsReset, false, `a valid chain was refused: ${d.reports[0]}`);
          const readable = verdict.readable.reduce((n, [, l]) => n + l, 0);
          const writable = verdict.writable.reduce((n, [, l]) => n + l, 0);
          if (queue === TX_QUEUE) {
            assert.equal(used, 1);
            assert.equal(memory.readU32(USED + 8), 0, 'a transmit chain comes back with nothing written');
            if (readable > NET_HEADER_SIZE) {
              seen.sent++;
              assert.deepEqual(port.sent, [Uint8Array.from(Buffer.concat(verdict.readable.map(([a, l]) => before.subarray(a, a + l))))]);
            } else {
              assert.deepEqual(port.sent, [], 'a runt is dropped');
            }
            assert.ok(changesOnlyIn(before, ram, [USED_RING, idle]));
          } else {
            // With mergeable buffers a frame waits for room for the largest one; without, one chain is used
            // whatever its size, and one too small for the header is handed back empty at once.
            const room = mergeable ? writable >= NET_HEADER_SIZE + (gso ? 65550 : 1518) : writable >= NET_HEADER_SIZE;
            if (frameLength === 0 ? room || mergeable : !room && mergeable) {
              assert.equal(used, 0, 'the chain waits for a frame, or for more room');
            } else {
              assert.equal(used, 1);
              const got = memory.readU32(USED + 8);
              assert.equal(got, writable < NET_HEADER_SIZE ? 0 : Math.min(frameLength, writable));
              if (got > 0) seen.received++;
            }
            assert.ok(changesOnlyIn(before, ram, [USED_RING, idle, ...verdict.writable]), 'writes only into writable buffers and the used ring');
          }
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
  assert.ok(seen.sent > RUNS / 20 && seen.received > RUNS / 50, `frames sent ${seen.sent}, received ${seen.received}`);
  console.log(`# fuzz outcomes: ${JSON.stringify(seen)}`);
});
