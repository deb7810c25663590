/**
 * Random and malformed descriptor chains against the hybrid vsock device
 * (Unix sockets), on its transmit queue (packets with headers that are
 * plausible, or not) and on its receive queue (with a reset waiting for the
 * guest), through the whole path. Each case is checked against the chain
 * model (test/helpers/chain-fuzz.ts): the device stays up, writes only into
 * the chain's writable buffers and the used ring, never outside guest RAM,
 * and sets NEEDS_RESET for every bad chain; a valid transmit chain always
 * comes back, with nothing written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { close } from '../../src/kvm/libc.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { usedRingSize } from '../../src/devices/virtio/queue.js';
import { HOST_CID, VSOCK_HEADER_SIZE, VSOCK_TYPE_STREAM, VsockOp, writeHeader } from '../../src/devices/virtio/vsock-packet.js';
import { listenUds, RX_QUEUE, TX_QUEUE, VsockUds } from '../../src/devices/virtio/vsock-uds.js';
import { assertCoverage, assertRefusedCase, AVAIL, caseArbitrary, changesOnlyIn, DATA, DESC, expected, placeCase, RAM, SIZE, USED, USED_RING } from '../helpers/chain-fuzz.js';
import { guardedMemory, VirtioDriver, writeDescriptorAt } from '../helpers/virtio-driver.js';

const RUNS = 100_000;
const GUEST_CID = 3n;
/** The other queue sits past the model's area, at the top of RAM. */
const OTHER = { size: SIZE, desc: RAM - 0x400, avail: RAM - 0x300, used: RAM - 0x200 };
/** Where the priming packet (a connect to a port nobody listens on) lies, past every buffer the model makes. */
const PRIMING = RAM - 0x100;

const vsockCase = fc.record({
  chain: caseArbitrary,
  queue: fc.constantFrom(RX_QUEUE, TX_QUEUE),
  header: fc.record({
    plausible: fc.boolean(),
    op: fc.integer({ min: 0, max: 9 }),
    type: fc.constantFrom(VSOCK_TYPE_STREAM, VSOCK_TYPE_STREAM, 2),
    len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 0xffff_ffff })),
    port: fc.integer({ min: 1, max: 8 }),
    bytes: fc.uint8Array({ minLength: VSOCK_HEADER_SIZE, maxLength: VSOCK_HEADER_SIZE }),
  }),
});

test(`${RUNS} random and malformed chains on the vsock device's queues: it stays up, in bounds, and returns every valid transmit chain`, { timeout: 300_000 }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-vsock-fuzz-'));
  const uds = join(dir, 'v.sock');
  const listenFd = listenUds(uds);
  const device = new VsockUds(Number(GUEST_CID), uds, listenFd, () => {});
  t.after(() => {
    device.close();
    close(listenFd);
    rmSync(dir, { recursive: true, force: true });
  });
  const { memory, guardsIntact } = guardedMemory(0, RAM);
  const ram = memory.view(0, RAM);
  const d = new VirtioDriver(memory, device);
  d.enablePci();
  const seen = { nothing: 0, invalid: 0, uncertain: 0, valid: 0 };

  fc.assert(
    fc.property(vsockCase, ({ chain: c, queue, header }) => {
      ram.fill(0);
      d.reports.length = 0;
      d.reset();
      assert.equal(d.negotiate(Feature.VERSION_1 | (c.indirect ? Feature.INDIRECT_DESC : 0n) | (c.eventIdx ? Feature.EVENT_IDX : 0n)), true);
      const other = queue === RX_QUEUE ? TX_QUEUE : RX_QUEUE;
      d.setUpQueue(queue, { size: SIZE, desc: DESC, avail: AVAIL, used: USED });
      d.setUpQueue(other, OTHER);
      d.setUpQueue(2, { size: SIZE, desc: RAM - 0x600, avail: RAM - 0x580, used: RAM - 0x500 });
      d.driverOk();
      if (queue === RX_QUEUE) {
        // A connect to a port nobody listens on: the device owes the guest a reset.
        const request = new Uint8Array(VSOCK_HEADER_SIZE);
        writeHeader(request, { srcCid: GUEST_CID, dstCid: BigInt(HOST_CID), srcPort: 1000, dstPort: header.port, len: 0, type: VSOCK_TYPE_STREAM, op: VsockOp.REQUEST, flags: 0, bufAlloc: 4096, fwdCnt: 0 });
        memory.write(PRIMING, request);
        writeDescriptorAt(memory, OTHER.desc, { addr: PRIMING, len: VSOCK_HEADER_SIZE, flags: 0, next: 0 });
        d.makeAvailable(TX_QUEUE, 0);
        d.notify(TX_QUEUE);
      }
      placeCase(d, memory, queue, c);
      const verdict = expected(c);
      // A transmit chain whose first buffer lies among the data (not over a ring) gets header bytes,
      // most of them a header that gets past the first checks.
      const first = verdict.kind === 'valid' ? verdict.readable[0] : undefined;
      if (queue === TX_QUEUE && first !== undefined && first[0] >= DATA && first[0] + first[1] <= OTHER.desc - 0x200) {
        const [addr, len] = first;
        const bytes = header.bytes.slice(0, Math.min(len, VSOCK_HEADER_SIZE));
        if (header.plausible && len >= VSOCK_HEADER_SIZE) {
          writeHeader(bytes, { srcCid: GUEST_CID, dstCid: BigInt(HOST_CID), srcPort: 1000, dstPort: header.port, len: header.len, type: header.type, op: header.op, flags: 0, bufAlloc: 4096, fwdCnt: 0 });
        }
        memory.write(addr, bytes);
      }
      const before = ram.slice();

      d.notify(queue); // throws nothing, or the property fails

      assert.ok(guardsIntact(), 'no write outside guest RAM');
      seen[verdict.kind]++;
      const otherUsed: [number, number] = [OTHER.used, usedRingSize(SIZE)];
      switch (verdict.kind) {
        case 'nothing':
        case 'invalid':
          assertRefusedCase(verdict.kind, d, before, ram, [USED_RING, otherUsed]);
          break;
        case 'valid':
          assert.deepEqual(d.reports, [], 'a valid chain is not a driver error');
          if (queue === TX_QUEUE) {
            assert.equal(memory.readU16(USED + 2), 1, 'the chain came back');
            assert.equal(memory.readU32(USED + 8), 0, 'with nothing written');
          }
          // A transmit chain may make the device answer on the receive queue, which has no buffers here.
          assert.ok(changesOnlyIn(before, ram, [USED_RING, otherUsed, ...(queue === RX_QUEUE ? verdict.writable : [])]), 'writes only into writable buffers and used rings');
          break;
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
