/**
 * Rate limiters: the token bucket's arithmetic on a clock the test moves,
 * the shared limits the API changes under a running device, and the block
 * device holding requests back until its bucket refills.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseDisk, parseNet } from '../../src/cli/run-command.js';
import { openRawImage, RawImage, SECTOR_SIZE } from '../../src/devices/disk/raw-image.js';
import { BlkStatus, BlkType, VirtioBlk } from '../../src/devices/virtio/blk.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { DESC_F_WRITE } from '../../src/devices/virtio/queue.js';
import { QueueLimiter, RateLimiter, SharedRateLimits, TokenBucket } from '../../src/devices/virtio/rate-limiter.js';
import { guardedMemory, queueLayout, VirtioDriver } from '../helpers/virtio-driver.js';

/** A clock the test moves by hand. */
function manualClock() {
  let now = 1000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test('a bucket starts full, refills at size per refill time, and lets one operation take it into debt', () => {
  const clock = manualClock();
  const bucket = new TokenBucket({ size: 1000, refillTimeMs: 1000 }, clock.now);
  assert.equal(bucket.waitMs(), 0);
  bucket.take(1500);
  // 500 tokens of debt, and one token needed: 501 ms at a token a millisecond.
  assert.equal(bucket.waitMs(), 501);
  clock.advance(500);
  assert.equal(bucket.waitMs(), 1);
  clock.advance(1);
  assert.equal(bucket.waitMs(), 0);
  clock.advance(1e6);
  bucket.take(1000);
  assert.equal(bucket.waitMs(), 1, 'refilled no further than its size');
});

test('the one-time burst is spent first and never comes back', () => {
  const clock = manualClock();
  const bucket = new TokenBucket({ size: 10, oneTimeBurst: 100, refillTimeMs: 1000 }, clock.now);
  bucket.take(100);
  assert.equal(bucket.waitMs(), 0, 'the burst paid for it: the bucket is still full');
  bucket.take(10);
  assert.equal(bucket.waitMs(), 100, 'then the bucket: one token in 100 ms');
  clock.advance(10_000);
  bucket.take(11);
  assert.equal(bucket.waitMs(), 200, 'no burst left: 1 token of debt, one more needed');
});

test('a limiter waits for the slower of its buckets; a bucket of size 0 or refill time 0 sets no limit', () => {
  const clock = manualClock();
  const both = new RateLimiter({ bandwidth: { size: 1000, refillTimeMs: 1000 }, ops: { size: 2, refillTimeMs: 1000 } }, clock.now);
  both.take(10);
  both.take(10);
  assert.equal(both.waitMs(), 500, 'two ops spent: the ops bucket decides');
  clock.advance(500);
  both.take(2000);
  assert.equal(both.waitMs(), 1001, 'then a large one: 1000 bytes of debt, so the bandwidth bucket decides');
  assert.equal(RateLimiter.limits({ bandwidth: { size: 0, refillTimeMs: 1000 }, ops: { size: 5, refillTimeMs: 0 } }), false);
  assert.equal(RateLimiter.limits({}), false);
  const none = new RateLimiter({ bandwidth: { size: 0, refillTimeMs: 1000 } }, clock.now);
  none.take(1e12);
  assert.equal(none.waitMs(), 0);
});

test('shared limits: a change replaces the buckets given, keeps the others, and the I/O side starts it with full buckets', () => {
  const clock = manualClock();
  const shared = SharedRateLimits.create([{ ops: { size: 1, refillTimeMs: 1000 } }, undefined]);
  assert.deepEqual(shared.read(0), { bandwidth: undefined, ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 1000 } });
  assert.equal(shared.read(1), undefined);
  const io = new QueueLimiter(new SharedRateLimits(shared.buffer), 0, 3, clock.now);
  assert.equal(io.admit(0), true);
  assert.equal(io.admit(0), false);
  assert.equal(io.held, true);
  assert.deepEqual(io.wakeups(), [{ queue: 3, atMs: clock.now() + 1000 }]);

  shared.update(0, { bandwidth: { size: 4096, refillTimeMs: 100 } });
  assert.deepEqual(shared.read(0), { bandwidth: { size: 4096, oneTimeBurst: 0, refillTimeMs: 100 }, ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 1000 } }, 'ops kept');
  assert.equal(io.admit(100), true, 'the new limits, with full buckets');
  assert.equal(io.held, false);
  shared.update(0, { ops: { size: 0, refillTimeMs: 0 }, bandwidth: { size: 0, refillTimeMs: 0 } });
  assert.equal(shared.read(0), undefined, 'both lifted: no limiter');
  for (let i = 0; i < 100; i++) assert.equal(io.admit(1 << 20), true);
});

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-limiter-'));
const fds: number[] = [];
after(() => {
  for (const fd of fds) closeSync(fd);
  rmSync(dir, { recursive: true });
});

test('a disk with a limit of 2 requests a second serves 2, holds the rest in the ring, and serves them as the bucket refills', () => {
  const path = join(dir, 'disk.img');
  writeFileSync(path, new Uint8Array(64 * SECTOR_SIZE));
  const image = openRawImage(path, false);
  fds.push(image.fd);
  const clock = manualClock();
  const shared = SharedRateLimits.create([{ ops: { size: 2, refillTimeMs: 1000 } }]);
  const limiter = new QueueLimiter(shared, 0, 0, clock.now);
  const { memory } = guardedMemory(0, 0x40000);
  const blk = new VirtioBlk(new RawImage(image.fd, image.size), { readOnly: false, id: 'limited', limiter }, () => {});
  const d = new VirtioDriver(memory, blk);
  d.enablePci();
  d.reset();
  assert.equal(d.negotiate(Feature.VERSION_1), true);
  d.setUpQueue(0, queueLayout(0x1000, 16));
  d.driverOk();

  // Five reads of one sector, each a chain of header, data and status of its own.
  for (let i = 0; i < 5; i++) {
    const header = 0x8000 + 16 * i;
    memory.writeU32(header, BlkType.IN);
    memory.writeU64(header + 8, BigInt(i));
    d.offerChain(0, [
      { addr: header, len: 16, flags: 0 },
      { addr: 0x10000 + SECTOR_SIZE * i, len: SECTOR_SIZE, flags: DESC_F_WRITE },
      { addr: 0x9000 + i, len: 1, flags: DESC_F_WRITE },
    ], 3 * i);
  }
  d.notify(0);
  assert.equal(d.takeUsed(0).length, 2, 'two requests at once: the bucket');
  assert.deepEqual(blk.wakeups!(), [{ queue: 0, atMs: clock.now() + 500 }], 'the next token comes in 500 ms');
  d.notify(0);
  assert.equal(d.takeUsed(0).length, 0, 'a notification does not get past the limit');
  clock.advance(500);
  d.notify(0);
  assert.equal(d.takeUsed(0).length, 1);
  clock.advance(1000);
  d.notify(0);
  assert.equal(d.takeUsed(0).length, 2, 'the rest, as the bucket allows');
  assert.deepEqual(blk.wakeups!(), []);
  for (let i = 0; i < 5; i++) assert.equal(memory.readU8(0x9000 + i), BlkStatus.OK);
});

test('--disk and --net take the limiters as Cloud Hypervisor names them; a bucket needs its size, and vhost=on cannot be limited', () => {
  assert.deepEqual(parseDisk('d.img,bw_size=1048576,ops_size=100,ops_refill_time=500,ops_one_time_burst=10'), {
    kind: 'virtio-blk', path: 'd.img',
    rateLimiter: { bandwidth: { size: 1048576, oneTimeBurst: undefined, refillTimeMs: 1000 }, ops: { size: 100, oneTimeBurst: 10, refillTimeMs: 500 } },
  });
  assert.deepEqual(parseNet('tap=t0,tx_bw_size=1000'), {
    kind: 'virtio-net', tap: 't0', mac: undefined, vhost: undefined,
    txRateLimiter: { bandwidth: { size: 1000, oneTimeBurst: undefined, refillTimeMs: 1000 }, ops: undefined },
  });
  assert.throws(() => parseDisk('d.img,bw_refill_time=100'), /^Error: --disk: bw_size is missing: a bucket needs its size$/);
  assert.throws(() => parseDisk('d.img,bw_size=1k'), /--disk: bw_size must be a whole number, got '1k'/);
  assert.throws(() => parseDisk('d.img,rx_bw_size=1'), /unknown option 'rx_bw_size=1'/);
  assert.throws(() => parseNet('tap=t0,rx_ops_size=10,vhost=on'), /vhost=on moves frames in the host kernel/);
});
