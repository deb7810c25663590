/**
 * Random and malformed block requests through the whole path (notify,
 * backend, split queue, virtio-blk, disk image): headers cut short, data
 * in the wrong direction, no status byte, sectors past the end or
 * overflowing, huge lengths, bad discard segments, a read-only disk, a
 * host that fails every I/O. Each case is checked against an independent
 * model of virtio 1.2, 5.2.6: the status (or NEEDS_RESET), the used
 * length, which guest bytes and which image bytes may change, and to what.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DiskImage } from '../../src/devices/disk/disk-image.js';
import { BLK_ID_BYTES, BLK_MAX_ZERO_SECTORS, BLK_MAX_ZERO_SEGMENTS, BlkFeature, BlkStatus, BlkType, VirtioBlk } from '../../src/devices/virtio/blk.js';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { DESC_F_WRITE, usedRingSize } from '../../src/devices/virtio/queue.js';
import { guardedMemory, VirtioDriver } from '../helpers/virtio-driver.js';

const RUNS = 40_000;
const RAM = 0x8000;
const QUEUE = { size: 8, desc: 0x0000, avail: 0x0080, used: 0x1000 };
/** Descriptor i's buffer lives at SLOTS + i * SLOT, clear of the rings and of each other. */
const SLOTS = 0x2000;
const SLOT = 0x800;
const SECTORS = 64;
const CAPACITY = SECTORS * 512;
const ID = 'fuzz-disk';
const CANARY = 0xee;

/** A disk in memory that can be told to fail every operation, as a host with a dying disk would. */
class MemoryImage implements DiskImage {
  readonly bytes = new Uint8Array(CAPACITY);
  failing = false;
  get size(): number {
    return CAPACITY;
  }
  private check(): void {
    if (this.failing) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
  }
  read(into: readonly Uint8Array[], offset: number): void {
    this.check();
    for (const b of into) {
      b.set(this.bytes.subarray(offset, offset + b.length));
      offset += b.length;
    }
  }
  write(from: readonly Uint8Array[], offset: number): void {
    this.check();
    for (const b of from) {
      this.bytes.set(b, offset);
      offset += b.length;
    }
  }
  flush(): void {
    this.check();
  }
  zero(offset: number, length: number): void {
    this.check();
    this.bytes.fill(0, offset, offset + length);
  }
}

interface Segment {
  sector: bigint;
  sectors: number;
  flags: number;
}

interface Case {
  readOnly: boolean;
  flush: boolean;
  discard: boolean;
  writeZeroes: boolean;
  hostFails: boolean;
  type: number;
  sector: bigint;
  /** What follows the header: discard segments, or so many data bytes. */
  body: { segments: Segment[]; junk: number } | { bytes: number; seed: number };
  /** Keep only this much of the readable stream (header and body). */
  truncate: number | undefined;
  /** Where the readable stream is cut into descriptors. */
  cuts: number[];
  writable: readonly number[];
  /** Move the first readable descriptor after the writable ones. */
  misorder: boolean;
  /** Make one descriptor reach outside guest RAM. */
  outside: { index: number; huge: boolean } | null;
}

const sectorArb = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: SECTORS + 2 }).map(BigInt), weight: 6 },
  { arbitrary: fc.constantFrom(2n ** 64n - 1n, 2n ** 63n, 2n ** 55n, BigInt(SECTORS - 1)), weight: 1 },
  { arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), weight: 1 },
);
const segmentArb: fc.Arbitrary<Segment> = fc.record({
  sector: fc.oneof({ arbitrary: fc.integer({ min: 0, max: SECTORS - 1 }).map(BigInt), weight: 4 }, { arbitrary: sectorArb, weight: 1 }),
  sectors: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 8 }), weight: 6 },
    { arbitrary: fc.constantFrom(BLK_MAX_ZERO_SECTORS, BLK_MAX_ZERO_SECTORS + 1, 0xffff_ffff), weight: 1 },
    { arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }), weight: 1 },
  ),
  flags: fc.oneof({ arbitrary: fc.constant(0), weight: 8 }, { arbitrary: fc.constant(1), weight: 2 }, { arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }), weight: 1 }),
});
const segmentsBody = fc.record({
  segments: fc.oneof({ arbitrary: fc.array(segmentArb, { minLength: 1, maxLength: 2 }), weight: 4 }, { arbitrary: fc.array(segmentArb, { maxLength: BLK_MAX_ZERO_SEGMENTS + 2 }), weight: 1 }),
  junk: fc.oneof({ arbitrary: fc.constant(0), weight: 8 }, { arbitrary: fc.integer({ min: 1, max: 17 }), weight: 1 }),
});
const bytesBody = (wellFormed: number) =>
  fc.record({
    bytes: fc.oneof({ arbitrary: fc.constant(wellFormed), weight: 4 }, { arbitrary: fc.constantFrom(0, 512, 1024), weight: 1 }, { arbitrary: fc.integer({ min: 0, max: 1100 }), weight: 1 }),
    seed: fc.integer({ min: 0, max: 255 }),
  });
/** A request type and a body that mostly suits it. */
const requestArb = fc
  .oneof(
    { arbitrary: fc.constantFrom(BlkType.IN, BlkType.OUT, BlkType.FLUSH, BlkType.GET_ID, BlkType.DISCARD, BlkType.WRITE_ZEROES), weight: 12 },
    { arbitrary: fc.constantFrom(2, 3, 5, 10, 14, 15, 16, 24, 0x8000_0000), weight: 1 },
    { arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }), weight: 1 },
  )
  .chain((type) => {
    const suited = type === BlkType.DISCARD || type === BlkType.WRITE_ZEROES ? segmentsBody : bytesBody(type === BlkType.OUT ? 1024 : 0);
    const other = type === BlkType.DISCARD || type === BlkType.WRITE_ZEROES ? bytesBody(0) : segmentsBody;
    return fc.record({ type: fc.constant(type), body: fc.oneof({ arbitrary: suited, weight: 8 }, { arbitrary: other, weight: 1 }) });
  });
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    readOnly: fc.boolean(),
    flush: fc.boolean(),
    discard: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
    writeZeroes: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
    hostFails: fc.oneof({ arbitrary: fc.constant(false), weight: 12 }, { arbitrary: fc.constant(true), weight: 1 }),
    request: requestArb,
    sector: sectorArb,
    truncate: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 12 },
      { arbitrary: fc.integer({ min: 0, max: 20 }), weight: 1 },
      { arbitrary: fc.integer({ min: 0, max: 1200 }), weight: 1 },
    ),
    cuts: fc.array(fc.integer({ min: 0, max: 1200 }), { maxLength: 2 }),
    writable: fc.oneof(
      { arbitrary: fc.constant([1]), weight: 3 },
      // Data and status, split or not.
      { arbitrary: fc.constantFrom([512, 1], [513], [1024, 1], [512, 513], [20, 1], [21]), weight: 3 },
      { arbitrary: fc.array(fc.oneof(fc.constantFrom(0, 1, 2, 20, 21, 512, 513, 1024, 1025), fc.integer({ min: 0, max: 1100 })), { maxLength: 3 }), weight: 2 },
    ),
    misorder: fc.oneof({ arbitrary: fc.constant(false), weight: 20 }, { arbitrary: fc.constant(true), weight: 1 }),
    outside: fc.oneof(
      { arbitrary: fc.constant(null), weight: 20 },
      { arbitrary: fc.record({ index: fc.integer({ min: 0, max: 7 }), huge: fc.boolean() }), weight: 1 },
    ),
  })
  .map(({ request, ...rest }) => ({ ...rest, ...request }));

/** The bytes the driver means to put in device-readable buffers: header, then body. */
function readableStream(c: Case): Uint8Array {
  const body = 'segments' in c.body ? 16 * c.body.segments.length + c.body.junk : c.body.bytes;
  const bytes = new Uint8Array(16 + body);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, c.type, true);
  v.setUint32(4, 0x5a5a5a5a, true); // reserved: ignored
  v.setBigUint64(8, c.sector, true);
  if ('segments' in c.body) {
    c.body.segments.forEach((s, i) => {
      v.setBigUint64(16 + 16 * i, s.sector, true);
      v.setUint32(16 + 16 * i + 8, s.sectors, true);
      v.setUint32(16 + 16 * i + 12, s.flags, true);
    });
  } else {
    for (let i = 16; i < bytes.length; i++) bytes[i] = (i * 31 + c.body.seed) & 0xff;
  }
  return c.truncate === undefined ? bytes : bytes.subarray(0, Math.min(c.truncate, bytes.length));
}

interface Desc {
  addr: number;
  len: number;
  flags: number;
}

/** The chain's descriptors, in order, and the readable bytes each carries. */
function chainOf(c: Case): { buffers: Desc[]; contents: Uint8Array[] } {
  const stream = readableStream(c);
  const cuts = [0, ...c.cuts.map((x) => Math.min(x, stream.length)).sort((a, b) => a - b), stream.length];
  const pieces = cuts.slice(1).map((end, i) => stream.subarray(cuts[i], end));
  const buffers: Desc[] = [];
  const contents: Uint8Array[] = [];
  pieces.forEach((p) => {
    buffers.push({ addr: 0, len: p.length, flags: 0 });
    contents.push(p);
  });
  for (const len of c.writable) {
    buffers.push({ addr: 0, len, flags: DESC_F_WRITE });
    contents.push(new Uint8Array(0));
  }
  if (c.misorder && c.writable.length > 0) {
    buffers.push(buffers.shift()!);
    contents.push(contents.shift()!);
  }
  buffers.forEach((b, i) => (b.addr = SLOTS + SLOT * i));
  if (c.outside && c.outside.index < buffers.length) {
    const b = buffers[c.outside.index];
    if (c.outside.huge) b.len = 0xffff_fff0;
    else b.addr = RAM - 8;
    b.len = Math.max(b.len, 9);
  }
  return { buffers, contents };
}

type Verdict =
  | { kind: 'reset' }
  | { kind: 'answered'; status: number; used: number; image: Uint8Array; data?: Uint8Array };

/** virtio 1.2, 2.7 and 5.2.6, written out again: what the device must make of this chain. */
function expected(c: Case, buffers: Desc[], contents: Uint8Array[], image: Uint8Array): Verdict {
  if (buffers.some((b) => b.len > 0 && b.addr + b.len > RAM)) return { kind: 'reset' };
  const firstWritable = buffers.findIndex((b) => b.flags & DESC_F_WRITE);
  if (firstWritable >= 0 && buffers.slice(firstWritable).some((b) => !(b.flags & DESC_F_WRITE))) return { kind: 'reset' };
  const readable = Uint8Array.from(contents.filter((_, i) => !(buffers[i].flags & DESC_F_WRITE)).flatMap((x) => [...x]));
  const writableBytes = buffers.filter((b) => b.flags & DESC_F_WRITE).reduce((n, b) => n + b.len, 0);
  if (readable.length < 16 || writableBytes === 0) return { kind: 'reset' };

  const v = new DataView(readable.buffer);
  const type = v.getUint32(0, true);
  const sector = v.getBigUint64(8, true);
  const dataIn = readable.subarray(16);
  const dataOut = writableBytes - 1;
  const after = image.slice();
  const answer = (status: number, written = 0, data?: Uint8Array): Verdict => ({ kind: 'answered', status, used: written + 1, image: status === BlkStatus.OK ? after : image, data });
  const inside = (first: bigint, bytes: number) => bytes % 512 === 0 && first + BigInt(bytes / 512) <= BigInt(SECTORS);
  const IOERR = answer(BlkStatus.IOERR);

  switch (type) {
    case BlkType.IN:
      if (dataIn.length > 0 || !inside(sector, dataOut)) return IOERR;
      if (c.hostFails && dataOut > 0) return IOERR;
      return answer(BlkStatus.OK, dataOut, image.subarray(Number(sector) * 512, Number(sector) * 512 + dataOut));
    case BlkType.OUT:
      if (c.readOnly || dataOut > 0 || !inside(sector, dataIn.length)) return IOERR;
      if (c.hostFails && (dataIn.length > 0 || !c.flush)) return IOERR; // without FLUSH, a write ends with one
      after.set(dataIn, Number(sector) * 512);
      return answer(BlkStatus.OK);
    case BlkType.FLUSH:
      return dataIn.length > 0 || dataOut > 0 || c.hostFails ? IOERR : answer(BlkStatus.OK);
    case BlkType.GET_ID: {
      if (dataIn.length > 0 || dataOut === 0) return IOERR;
      const id = new Uint8Array(BLK_ID_BYTES);
      id.set(Buffer.from(ID));
      return answer(BlkStatus.OK, Math.min(dataOut, BLK_ID_BYTES), id.subarray(0, Math.min(dataOut, BLK_ID_BYTES)));
    }
    case BlkType.DISCARD:
    case BlkType.WRITE_ZEROES: {
      const discard = type === BlkType.DISCARD;
      if (!(discard ? c.discard : c.writeZeroes)) return answer(BlkStatus.UNSUPP);
      if (dataOut > 0 || dataIn.length === 0 || dataIn.length % 16 !== 0 || dataIn.length / 16 > BLK_MAX_ZERO_SEGMENTS) return IOERR;
      const d = new DataView(dataIn.buffer, dataIn.byteOffset, dataIn.length);
      const segments = Array.from({ length: dataIn.length / 16 }, (_, i) => ({ sector: d.getBigUint64(16 * i, true), sectors: d.getUint32(16 * i + 8, true), flags: d.getUint32(16 * i + 12, true) }));
      // Any unknown flag, or unmap on a discard: UNSUPP, whatever else is wrong.
      if (segments.some((s) => s.flags > 1 || (discard && s.flags === 1))) return answer(BlkStatus.UNSUPP);
      if (c.readOnly || segments.some((s) => s.sectors > BLK_MAX_ZERO_SECTORS || !inside(s.sector, s.sectors * 512)) || c.hostFails) return IOERR;
      for (const s of segments) after.fill(0, Number(s.sector) * 512, (Number(s.sector) + s.sectors) * 512);
      return answer(BlkStatus.OK);
    }
    default:
      return answer(BlkStatus.UNSUPP);
  }
}

/** Whether every guest byte that changed lies in one of `allowed`: `before` with those ranges taken from `after` is `after`. */
function changesOnlyIn(before: Uint8Array, after: Uint8Array, allowed: [number, number][]): boolean {
  const patched = before.slice();
  for (const [start, len] of allowed) patched.set(after.subarray(start, start + len), start);
  return Buffer.from(patched.buffer).equals(Buffer.from(after.buffer, after.byteOffset, after.length));
}

/** The device-writable bytes of the chain, in order, as the driver reads them back. */
function writableBytes(memory: Uint8Array, buffers: Desc[]): Uint8Array {
  return Uint8Array.from(buffers.filter((b) => b.flags & DESC_F_WRITE).flatMap((b) => [...memory.subarray(b.addr, b.addr + b.len)]));
}

test(`${RUNS} random and malformed block requests: the device stays up, in bounds, and answers as the spec says`, { timeout: 300_000 }, () => {
  const disks = [false, true].map((readOnly) => {
    const { memory, guardsIntact } = guardedMemory(0, RAM);
    const image = new MemoryImage();
    const reports: string[] = [];
    const blk = new VirtioBlk(image, { readOnly, id: ID }, (m) => reports.push(m));
    const driver = new VirtioDriver(memory, blk);
    driver.enablePci();
    return { memory, guardsIntact, image, driver, ram: memory.view(0, RAM) };
  });
  const pristine = new Uint8Array(CAPACITY).map((_, i) => (i >> 9) + 1 + (i & 7));
  const seen: Record<string, number> = {};

  fc.assert(
    fc.property(caseArb, (c) => {
      const { memory, guardsIntact, image, driver: d, ram } = disks[c.readOnly ? 1 : 0];
      ram.fill(0);
      image.bytes.set(pristine);
      image.failing = c.hostFails;
      d.reports.length = 0;
      d.reset();
      const features = Feature.VERSION_1 | BlkFeature.SEG_MAX | BlkFeature.BLK_SIZE | (c.readOnly ? BlkFeature.RO : 0n)
        | (c.flush ? BlkFeature.FLUSH : 0n) | (c.discard ? BlkFeature.DISCARD : 0n) | (c.writeZeroes ? BlkFeature.WRITE_ZEROES : 0n);
      assert.equal(d.negotiate(features), true);
      d.setUpQueue(0, QUEUE);
      d.driverOk();
      const { buffers, contents } = chainOf(c);
      buffers.forEach((b, i) => {
        if (b.addr + b.len > RAM) return; // a buffer outside RAM: nothing to put there
        if (b.flags & DESC_F_WRITE) ram.fill(CANARY, b.addr, b.addr + b.len);
        else ram.set(contents[i], b.addr);
      });
      d.offerChain(0, buffers);
      const before = ram.slice();

      d.notify(0); // throws nothing, or the property fails

      assert.ok(guardsIntact(), 'no write outside guest RAM');
      const verdict = expected(c, buffers, contents, pristine);
      const needsReset = (d.status & DeviceStatus.NEEDS_RESET) !== 0;
      const used = memory.readU16(QUEUE.used + 2);
      const usedRing: [number, number] = [QUEUE.used, usedRingSize(QUEUE.size)];
      if (verdict.kind === 'reset') {
        seen.reset = (seen.reset ?? 0) + 1;
        assert.equal(needsReset, true, 'a chain that cannot hold a request sets NEEDS_RESET');
        assert.equal(d.reports.length, 1);
        assert.equal(used, 0, 'and is not returned');
        assert.ok(changesOnlyIn(before, ram, [usedRing]));
        assert.deepEqual(image.bytes, pristine, 'the image is untouched');
        return;
      }
      const name = verdict.status === BlkStatus.OK ? `ok ${c.type}` : verdict.status === BlkStatus.IOERR ? 'ioerr' : 'unsupp';
      seen[name] = (seen[name] ?? 0) + 1;
      assert.equal(needsReset, false, `a request was refused: ${d.reports[0]}`);
      assert.equal(used, 1);
      assert.equal(memory.readU32(QUEUE.used + 8), verdict.used, 'used length: data written and the status byte');
      const writable = buffers.filter((b) => b.flags & DESC_F_WRITE);
      const back = writableBytes(ram, buffers);
      assert.equal(back[back.length - 1], verdict.status, 'the status, in the last writable byte');
      assert.ok(changesOnlyIn(before, ram, [usedRing, ...writable.map((b): [number, number] => [b.addr, b.len])]), 'writes only into the chain\'s writable buffers');
      if (verdict.data) assert.deepEqual(back.subarray(0, verdict.data.length), verdict.data, 'the data read');
      assert.deepEqual(image.bytes, verdict.image, 'the image changed only as the request says');
    }),
    { numRuns: RUNS },
  );
  console.log(`# fuzz outcomes: ${JSON.stringify(seen)}`);
  // The generator must reach every outcome often, or the test proves little.
  for (const outcome of ['reset', 'ioerr', 'unsupp', `ok ${BlkType.IN}`, `ok ${BlkType.OUT}`, `ok ${BlkType.FLUSH}`, `ok ${BlkType.GET_ID}`, `ok ${BlkType.DISCARD}`, `ok ${BlkType.WRITE_ZEROES}`]) {
    assert.ok((seen[outcome] ?? 0) > RUNS / 400, `${outcome}: ${seen[outcome] ?? 0}`);
  }
});
