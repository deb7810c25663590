import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDisk } from '../../src/cli/run-command.js';
import type { DiskImage } from '../../src/devices/disk/disk-image.js';
import { openRawImage, RawImage, SECTOR_SIZE } from '../../src/devices/disk/raw-image.js';
import { placement, type DeviceSpec } from '../../src/devices/registry.js';
import { CfgType } from '../../src/devices/virtio/capabilities.js';
import { BLK_ID_BYTES, BLK_MAX_ZERO_SECTORS, BLK_MAX_ZERO_SEGMENTS, BlkFeature, BlkStatus, BlkType, VirtioBlk } from '../../src/devices/virtio/blk.js';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { Bar0 } from '../../src/devices/virtio/pci-transport.js';
import { DESC_F_WRITE } from '../../src/devices/virtio/queue.js';
import { createVirtioDevice, prepareVirtioSpec, type VirtioSpec } from '../../src/devices/virtio/virtio-devices.js';
import type { IoEventFd } from '../../src/kvm/vm.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import { setUpPci, type PciVm } from '../../src/vmm/pci-setup.js';
import { guardedMemory, queueLayout, VirtioDriver } from '../helpers/virtio-driver.js';

const RAM_SIZE = 0x40000;
const QUEUE = queueLayout(0x1000, 16);
const HEADER = 0x8000;
const SEGMENTS = 0x8100;
const STATUS = 0x9000;
const DATA = 0x10000;
const SECTORS = 128;
const ALL_BLK_FEATURES = BlkFeature.SEG_MAX | BlkFeature.BLK_SIZE | BlkFeature.FLUSH | BlkFeature.DISCARD | BlkFeature.WRITE_ZEROES;
const TRANSPORT = Feature.VERSION_1 | Feature.EVENT_IDX | Feature.INDIRECT_DESC;

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-blk-'));
const openFds: number[] = [];
after(() => {
  for (const fd of openFds) closeSync(fd);
  rmSync(dir, { recursive: true });
});

let images = 0;
/** A raw image file of `content` (default: SECTORS sectors, each byte its sector number + 1). */
function imageFile(content: Uint8Array = sectorPattern(SECTORS)): string {
  const path = join(dir, `disk${images++}.img`);
  writeFileSync(path, content);
  return path;
}

function sectorPattern(sectors: number): Uint8Array {
  const bytes = new Uint8Array(sectors * SECTOR_SIZE);
  for (let s = 0; s < sectors; s++) bytes.fill(s + 1, s * SECTOR_SIZE, (s + 1) * SECTOR_SIZE);
  return bytes;
}

function rawImage(path: string, readOnly = false): RawImage {
  const opened = openRawImage(path, readOnly);
  openFds.push(opened.fd);
  return new RawImage(opened.fd, opened.size);
}

/** An image over a file the host fails on: /proc/self/mem (EIO at unmapped address 0) or /dev/full (ENOSPC on write). */
function failingImage(path: '/proc/self/mem' | '/dev/full'): RawImage {
  const fd = openSync(path, 'r+');
  openFds.push(fd);
  return new RawImage(fd, SECTORS * SECTOR_SIZE);
}

/** Records what the device asks of the image, then passes it on. */
class SpyImage implements DiskImage {
  readonly calls: string[] = [];
  constructor(private readonly inner: DiskImage) {}
  get size(): number {
    return this.inner.size;
  }
  read(into: readonly Uint8Array[], offset: number): void {
    this.calls.push(`read ${offset}+${into.map((b) => b.length).join('+')}`);
    this.inner.read(into, offset);
  }
  write(from: readonly Uint8Array[], offset: number): void {
    this.calls.push(`write ${offset}+${from.map((b) => b.length).join('+')}`);
    this.inner.write(from, offset);
  }
  flush(): void {
    this.calls.push('flush');
    this.inner.flush();
  }
  zero(offset: number, length: number, deallocate: boolean): void {
    this.calls.push(`zero ${offset}+${length}${deallocate ? ' deallocate' : ''}`);
    this.inner.zero(offset, length, deallocate);
  }
}

interface Setup {
  image?: DiskImage;
  readOnly?: boolean;
  id?: string;
  /** Device features to take, besides VERSION_1 and EVENT_IDX (default: all offered). */
  features?: bigint;
}

interface Answer {
  status: number;
  /** The used length. */
  len: number;
}

/** A disk driven through the start-up sequence, queue 0 ready. */
function readyBlk({ image = rawImage(imageFile()), readOnly = false, id = 'test-disk', features = ALL_BLK_FEATURES }: Setup = {}) {
  const { memory, guardsIntact } = guardedMemory(0, RAM_SIZE);
  const reports: string[] = [];
  const blk = new VirtioBlk(image, { readOnly, id }, (m) => reports.push(m));
  const d = new VirtioDriver(memory, blk);
  d.enablePci();
  d.reset();
  assert.equal(d.negotiate(Feature.VERSION_1 | Feature.EVENT_IDX | features), true);
  d.setUpQueue(0, QUEUE);
  d.driverOk();

  /** Offers a chain of raw buffers (the status byte pre-set to 0xff), returns what came back in the used ring. */
  const submit = (buffers: { addr: number; len: number; flags: number }[]): Answer[] => {
    memory.writeU8(STATUS, 0xff);
    d.offerChain(0, buffers);
    d.notify(0);
    return d.takeUsed(0).map((u) => ({ status: memory.readU8(STATUS), len: u.len }));
  };

  /** header, then data (out: device-readable; in: so many device-writable bytes), then the status byte. */
  const request = (type: number, sector: bigint, data: { out?: Uint8Array; in?: number } = {}): Answer => {
    writeHeader(memory, type, sector);
    const buffers = [{ addr: HEADER, len: 16, flags: 0 }];
    if (data.out) {
      memory.write(DATA, data.out);
      buffers.push({ addr: DATA, len: data.out.length, flags: 0 });
    }
    if (data.in) buffers.push({ addr: DATA, len: data.in, flags: DESC_F_WRITE });
    buffers.push({ addr: STATUS, len: 1, flags: DESC_F_WRITE });
    const used = submit(buffers);
    assert.equal(used.length, 1, 'one request, one used entry');
    return used[0];
  };

  /** A discard or write-zeroes request of these segments. */
  const zeroRequest = (type: number, segments: { sector: bigint; sectors: number; flags?: number }[]): Answer => {
    segments.forEach((s, i) => {
      memory.writeU64(SEGMENTS + 16 * i, s.sector);
      memory.writeU32(SEGMENTS + 16 * i + 8, s.sectors);
      memory.writeU32(SEGMENTS + 16 * i + 12, s.flags ?? 0);
    });
    writeHeader(memory, type, 0n);
    return submit([
      { addr: HEADER, len: 16, flags: 0 },
      { addr: SEGMENTS, len: 16 * segments.length, flags: 0 },
      { addr: STATUS, len: 1, flags: DESC_F_WRITE },
    ])[0];
  };

  return { d, memory, reports, guardsIntact, submit, request, zeroRequest };
}

function writeHeader(memory: GuestMemory, type: number, sector: bigint): void {
  memory.writeU32(HEADER, type);
  memory.writeU32(HEADER + 4, 0);
  memory.writeU64(HEADER + 8, sector);
}

const ok = (len = 1): Answer => ({ status: BlkStatus.OK, len });
const IOERR: Answer = { status: BlkStatus.IOERR, len: 1 };
const UNSUPP: Answer = { status: BlkStatus.UNSUPP, len: 1 };

function fileBytes(path: string, sector: number, sectors: number): Uint8Array {
  return new Uint8Array(readFileSync(path).subarray(sector * SECTOR_SIZE, (sector + sectors) * SECTOR_SIZE));
}

test('the device: virtio-blk (PCI device 0x1042, mass storage), one queue of 256, its features, and a DEVICE_CFG capability', () => {
  const { d } = readyBlk();
  assert.equal(d.configRead(0x02, 2), 0x1042);
  assert.equal(d.configRead(0x08, 4) >>> 8, 0x010000, 'class: mass storage, SCSI, as QEMU');
  assert.equal(d.deviceFeatures(), TRANSPORT | ALL_BLK_FEATURES);
  assert.equal(d.readCommon(0x12, 2), 1, 'num_queues');
  d.writeCommon(0x16, 2, 0);
  assert.equal(d.readCommon(0x18, 2), QUEUE.size, 'the size the driver chose');
  const cap = d.virtioCapability(CfgType.DEVICE);
  assert.deepEqual([cap.bar, cap.barOffset, cap.length], [0, Bar0.DEVICE, 60]);

  const ro = readyBlk({ readOnly: true });
  assert.equal(ro.d.deviceFeatures(), TRANSPORT | ALL_BLK_FEATURES | BlkFeature.RO);
});

test('config space: capacity in 512-byte sectors, seg_max, blk_size, and the discard and write-zeroes limits; read-only', () => {
  const { d } = readyBlk({ image: rawImage(imageFile(new Uint8Array(3 * 1024 * 1024))) });
  const at = d.virtioCapability(CfgType.DEVICE).barOffset!;
  const u32 = (offset: number) => d.mmioRead(at + offset, 4);
  assert.equal(u32(0) + 2 ** 32 * u32(4), 6144, 'capacity: 3 MiB in sectors');
  assert.equal(u32(8), 0, 'size_max: VIRTIO_BLK_F_SIZE_MAX is not offered');
  assert.equal(u32(12), 254, 'seg_max: a chain of the queue size, less header and status');
  assert.equal(u32(20), 512, 'blk_size');
  assert.deepEqual([u32(36), u32(40), u32(44)], [BLK_MAX_ZERO_SECTORS, BLK_MAX_ZERO_SEGMENTS, 8], 'max_discard_sectors, max_discard_seg, discard_sector_alignment');
  assert.deepEqual([u32(48), u32(52)], [BLK_MAX_ZERO_SECTORS, BLK_MAX_ZERO_SEGMENTS], 'max_write_zeroes_sectors, max_write_zeroes_seg');
  assert.equal(d.mmioRead(at + 56, 1), 1, 'write_zeroes_may_unmap');
  assert.equal(d.mmioRead(at + 33, 1), 0, 'unused0');
  assert.equal(d.mmioRead(at + 2, 2), 0, 'a 2-byte read inside capacity');
  assert.equal(d.mmioRead(at + 60, 4), 0, 'past the structure');
  d.mmioWrite(at, 4, 0x1234);
  assert.equal(u32(0), 6144, 'writes go nowhere');
  assert.equal(d.readCommon(0x15, 1), 0, 'config_generation: the configuration never changes');
});

test('a pattern written through the queue lands in the image file and reads back, across descriptors', () => {
  const path = imageFile();
  const { request, submit, memory, guardsIntact } = readyBlk({ image: rawImage(path) });
  const pattern = new Uint8Array(3 * SECTOR_SIZE).map((_, i) => (i * 7 + 3) & 0xff);
  memory.write(DATA, pattern);
  writeHeader(memory, BlkType.OUT, 5n);
  // The data in two descriptors, and the header too: boundaries mean nothing.
  assert.deepEqual(submit([
    { addr: HEADER, len: 8, flags: 0 },
    { addr: HEADER + 8, len: 8, flags: 0 },
    { addr: DATA, len: 512, flags: 0 },
    { addr: DATA + 512, len: 1024, flags: 0 },
    { addr: STATUS, len: 1, flags: DESC_F_WRITE },
  ]), [ok()]);
  assert.deepEqual(fileBytes(path, 5, 3), pattern, 'in the file');
  assert.deepEqual(fileBytes(path, 4, 1), sectorPattern(SECTORS).subarray(4 * 512, 5 * 512), 'the sector before untouched');
  assert.deepEqual(fileBytes(path, 8, 1), sectorPattern(SECTORS).subarray(8 * 512, 9 * 512), 'the sector after untouched');

  memory.fill(DATA, pattern.length);
  assert.deepEqual(request(BlkType.IN, 5n, { in: pattern.length }), ok(pattern.length + 1), 'used length: data and status');
  assert.deepEqual(memory.read(DATA, pattern.length), pattern);
  assert.ok(guardsIntact());
});

test('reads return what the host wrote; the status byte may share a buffer with the data', () => {
  const path = imageFile();
  const { submit, memory } = readyBlk({ image: rawImage(path) });
  writeHeader(memory, BlkType.IN, 100n);
  // One device-writable buffer of two sectors and the status byte.
  memory.fill(DATA, 1025, 0xee);
  assert.deepEqual(submit([
    { addr: HEADER, len: 16, flags: 0 },
    { addr: DATA, len: 1025, flags: DESC_F_WRITE },
  ]), [{ status: 0xff, len: 1025 }], 'the status went to the last byte of the data buffer, not STATUS');
  assert.deepEqual(memory.read(DATA, 1024), fileBytes(path, 100, 2));
  assert.equal(memory.readU8(DATA + 1024), BlkStatus.OK);
});

test('FLUSH calls fdatasync after the writes; an fd whose fdatasync fails answers IOERR', () => {
  const spy = new SpyImage(rawImage(imageFile()));
  const { request, reports } = readyBlk({ image: spy });
  assert.deepEqual(request(BlkType.OUT, 0n, { out: new Uint8Array(512).fill(9) }), ok());
  assert.deepEqual(request(BlkType.FLUSH, 0n), ok());
  assert.deepEqual(spy.calls, ['write 0+512', 'flush'], 'with VIRTIO_BLK_F_FLUSH, a write waits for the flush');

  // fdatasync on a character device fails (EINVAL): the flush reached the system call.
  const dev = readyBlk({ image: failingImage('/dev/full') });
  assert.deepEqual(dev.request(BlkType.FLUSH, 0n), IOERR);
  assert.match(dev.reports[0], /^virtio-blk test-disk: flush failed on the host \(EINVAL: invalid argument, fdatasync\); the guest gets an I\/O error$/);
  assert.deepEqual(reports, []);
});

test('without VIRTIO_BLK_F_FLUSH each write is made durable before it completes (writethrough)', () => {
  const spy = new SpyImage(rawImage(imageFile()));
  const { request, zeroRequest } = readyBlk({ image: spy, features: ALL_BLK_FEATURES & ~BlkFeature.FLUSH });
  assert.deepEqual(request(BlkType.OUT, 1n, { out: new Uint8Array(512) }), ok());
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 2n, sectors: 1 }]), ok());
  assert.deepEqual(request(BlkType.IN, 1n, { in: 512 }), ok(513));
  assert.deepEqual(spy.calls, ['write 512+512', 'flush', 'zero 1024+512', 'flush', 'read 512+512']);
});

test('GET_ID returns the ID string NUL-padded to 20 bytes, with no NUL when it fills them', () => {
  const { request, memory } = readyBlk({ id: 'disk-a' });
  memory.fill(DATA, 32, 0xee);
  assert.deepEqual(request(BlkType.GET_ID, 0n, { in: BLK_ID_BYTES }), ok(21));
  assert.deepEqual(memory.read(DATA, 21), new Uint8Array([...Buffer.from('disk-a'), ...new Uint8Array(14), 0xee]));

  const full = readyBlk({ id: '0123456789abcdefghij' });
  assert.deepEqual(full.request(BlkType.GET_ID, 0n, { in: BLK_ID_BYTES }), ok(21));
  assert.equal(Buffer.from(full.memory.read(DATA, 20)).toString('latin1'), '0123456789abcdefghij');

  // A shorter buffer gets the start of it.
  full.memory.fill(DATA, 32, 0xee);
  assert.deepEqual(full.request(BlkType.GET_ID, 0n, { in: 4 }), ok(5));
  assert.deepEqual(full.memory.read(DATA, 5), new Uint8Array([...Buffer.from('0123'), 0xee]));
});

test('without id= the ID string comes from the image file\'s device and inode numbers', () => {
  const path = imageFile();
  const spec = prepareVirtioSpec({ kind: 'virtio-blk', path }, (fd) => openFds.push(fd), () => {}) as Extract<VirtioSpec, { kind: 'virtio-blk' }>;
  const stat = statSync(path, { bigint: true });
  const expected = `${stat.dev.toString(16)}-${stat.ino.toString(16)}`;
  assert.equal(spec.image?.fileId, expected);
  const device = createVirtioDevice(spec, () => {});
  assert.equal(device.info.name, `virtio-blk ${expected}`);
  const { request, memory } = readyBlk({ image: rawImage(path), id: expected });
  request(BlkType.GET_ID, 0n, { in: BLK_ID_BYTES });
  assert.equal(memory.readCString(DATA, BLK_ID_BYTES + 1), expected);
});

test('discard and write zeroes zero their ranges; discard and unmap punch holes in the image', () => {
  const path = imageFile(new Uint8Array(1024 * 1024).fill(0xab));
  const { zeroRequest } = readyBlk({ image: rawImage(path) });
  const blocksBefore = statSync(path).blocks;
  assert.deepEqual(zeroRequest(BlkType.DISCARD, [{ sector: 64n, sectors: 512 }]), ok());
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 3n, sectors: 2 }, { sector: 10n, sectors: 1 }]), ok());
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 1024n, sectors: 512, flags: 1 }]), ok());
  const file = readFileSync(path);
  const zeroed = (from: number, sectors: number) => file.subarray(from * 512, (from + sectors) * 512).every((b) => b === 0);
  const intact = (from: number, sectors: number) => file.subarray(from * 512, (from + sectors) * 512).every((b) => b === 0xab);
  assert.ok(zeroed(64, 512) && zeroed(3, 2) && zeroed(10, 1) && zeroed(1024, 512));
  assert.ok(intact(0, 3) && intact(5, 5) && intact(11, 53) && intact(576, 448) && intact(1536, 512), 'nothing else');
  assert.equal(file.length, 1024 * 1024, 'the image keeps its size');
  // Two 256 KiB holes: 1024 fewer 512-byte blocks allocated on the host.
  assert.equal(blocksBefore - statSync(path).blocks, 1024, 'discard and write zeroes with unmap free the space');
});

test('discard and write zeroes: UNSUPP for unmap on a discard, an unknown flag, or a feature not taken; IOERR past the limits', () => {
  const path = imageFile();
  const before = readFileSync(path);
  const { zeroRequest, submit, memory } = readyBlk({ image: rawImage(path) });
  assert.deepEqual(zeroRequest(BlkType.DISCARD, [{ sector: 0n, sectors: 1, flags: 1 }]), UNSUPP, 'unmap is for write zeroes only');
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 0n, sectors: 1, flags: 2 }]), UNSUPP, 'unknown flag');
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 0n, sectors: 1 }, { sector: 200n, sectors: 1, flags: 1 << 31 }]), UNSUPP, 'an unknown flag in any segment');
  assert.deepEqual(zeroRequest(BlkType.DISCARD, [{ sector: 0n, sectors: BLK_MAX_ZERO_SECTORS + 1 }]), IOERR, 'more sectors than max_discard_sectors');
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: BigInt(SECTORS - 1), sectors: 2 }]), IOERR, 'past the end');
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 2n ** 64n - 1n, sectors: 1 }]), IOERR, 'sector + count overflows 64 bits');
  const tooMany = Array.from({ length: BLK_MAX_ZERO_SEGMENTS + 1 }, (_, i) => ({ sector: BigInt(i), sectors: 1 }));
  assert.deepEqual(zeroRequest(BlkType.DISCARD, tooMany), IOERR, 'more segments than max_discard_seg');
  writeHeader(memory, BlkType.WRITE_ZEROES, 0n);
  assert.deepEqual(submit([{ addr: HEADER, len: 16 + 15, flags: 0 }, { addr: STATUS, len: 1, flags: DESC_F_WRITE }]), [IOERR], 'not whole segments');
  assert.deepEqual(submit([{ addr: HEADER, len: 16, flags: 0 }, { addr: STATUS, len: 1, flags: DESC_F_WRITE }]), [IOERR], 'no segment');
  assert.deepEqual(readFileSync(path), before, 'nothing was zeroed');

  const without = readyBlk({ image: rawImage(path), features: BlkFeature.FLUSH });
  assert.deepEqual(without.zeroRequest(BlkType.DISCARD, [{ sector: 0n, sectors: 1 }]), UNSUPP);
  assert.deepEqual(without.zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 0n, sectors: 1 }]), UNSUPP);
});

test('a read-only disk offers VIRTIO_BLK_F_RO, answers writes, discards and write zeroes with IOERR and touches nothing', () => {
  const path = imageFile();
  const before = readFileSync(path);
  const spy = new SpyImage(rawImage(path, true));
  const { request, zeroRequest } = readyBlk({ image: spy, readOnly: true });
  assert.deepEqual(request(BlkType.OUT, 0n, { out: new Uint8Array(512) }), IOERR);
  assert.deepEqual(zeroRequest(BlkType.DISCARD, [{ sector: 0n, sectors: 1 }]), IOERR);
  assert.deepEqual(zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 0n, sectors: 1 }]), IOERR);
  assert.deepEqual(request(BlkType.IN, 0n, { in: 512 }), ok(513), 'reads work');
  assert.deepEqual(request(BlkType.FLUSH, 0n), ok());
  assert.deepEqual(spy.calls, ['read 0+512', 'flush'], 'no write reached the image');
  assert.deepEqual(readFileSync(path), before);
});

test('every sector range is checked against the capacity: past the end, overflowing, or not whole sectors is IOERR', () => {
  const spy = new SpyImage(rawImage(imageFile()));
  const { request } = readyBlk({ image: spy });
  const last = BigInt(SECTORS - 1);
  assert.deepEqual(request(BlkType.IN, last, { in: 512 }), ok(513), 'the last sector');
  spy.calls.length = 0;
  assert.deepEqual(request(BlkType.IN, last, { in: 1024 }), IOERR, 'runs past the end');
  assert.deepEqual(request(BlkType.IN, BigInt(SECTORS), { in: 512 }), IOERR, 'starts at the end');
  assert.deepEqual(request(BlkType.OUT, last + 1n, { out: new Uint8Array(512) }), IOERR);
  assert.deepEqual(request(BlkType.IN, 2n ** 64n - 1n, { in: 512 }), IOERR, 'sector + count overflows 64 bits');
  assert.deepEqual(request(BlkType.IN, 2n ** 55n, { in: 512 }), IOERR, 'a byte offset past 2^64');
  assert.deepEqual(request(BlkType.IN, 0n, { in: 511 }), IOERR, 'not whole sectors');
  assert.deepEqual(request(BlkType.OUT, 0n, { out: new Uint8Array(513) }), IOERR);
  assert.deepEqual(spy.calls, [], 'none reached the image');
});

test('host I/O errors (EIO, ENOSPC) answer IOERR, are reported once, and the device goes on', () => {
  const mem = readyBlk({ image: failingImage('/proc/self/mem') });
  assert.deepEqual(mem.request(BlkType.IN, 0n, { in: 512 }), IOERR);
  assert.deepEqual(mem.request(BlkType.IN, 0n, { in: 512 }), IOERR);
  assert.deepEqual(mem.request(BlkType.OUT, 0n, { out: new Uint8Array(512) }), IOERR);
  assert.deepEqual(mem.reports, [
    'virtio-blk test-disk: read failed on the host (EIO: i/o error, read); the guest gets an I/O error',
    'virtio-blk test-disk: write failed on the host (EIO: i/o error, write); the guest gets an I/O error',
  ]);
  assert.deepEqual(mem.request(BlkType.GET_ID, 0n, { in: 20 }), ok(21), 'still serving');
  assert.equal(mem.d.status & DeviceStatus.NEEDS_RESET, 0);

  const full = readyBlk({ image: failingImage('/dev/full') });
  assert.deepEqual(full.request(BlkType.OUT, 0n, { out: new Uint8Array(512) }), IOERR);
  assert.deepEqual(full.zeroRequest(BlkType.WRITE_ZEROES, [{ sector: 0n, sectors: 1 }]), IOERR, 'no fallocate on a device, and writing zeros fails too');
  assert.match(full.reports[0], /write failed on the host \(ENOSPC: no space left on device, write\)/);
  assert.match(full.reports[1], /write zeroes failed on the host \(ENOSPC/);
  assert.deepEqual(full.request(BlkType.IN, 0n, { in: 512 }), ok(513), '/dev/full reads zeros');
});

test('data in the wrong direction is IOERR; an unknown request type is UNSUPP', () => {
  const spy = new SpyImage(rawImage(imageFile()));
  const { submit, request, memory } = readyBlk({ image: spy });
  writeHeader(memory, BlkType.IN, 0n);
  assert.deepEqual(submit([
    { addr: HEADER, len: 16 + 512, flags: 0 },
    { addr: STATUS, len: 1, flags: DESC_F_WRITE },
  ]), [IOERR], 'a read whose data is device-readable');
  writeHeader(memory, BlkType.OUT, 0n);
  assert.deepEqual(submit([
    { addr: HEADER, len: 16, flags: 0 },
    { addr: DATA, len: 513, flags: DESC_F_WRITE },
  ]), [{ status: 0xff, len: 1 }], 'a write whose data is device-writable');
  assert.equal(memory.readU8(DATA + 512), BlkStatus.IOERR, 'the status byte ends the writable buffer');
  assert.deepEqual(request(BlkType.FLUSH, 0n, { in: 512 }), IOERR, 'a flush with data');
  assert.deepEqual(request(BlkType.GET_ID, 0n, { out: new Uint8Array(20) }), IOERR, 'GET_ID with readable data');
  assert.deepEqual(request(BlkType.GET_ID, 0n), IOERR, 'GET_ID with nowhere to put it');
  for (const type of [2, 3, 5, 10, 14, 15, 16, 0x8000_0000, 0xffff_ffff]) {
    assert.deepEqual(request(type, 0n, { in: 512 }), UNSUPP, `type ${type}`);
  }
  assert.deepEqual(spy.calls, []);
});

test('a chain with no room for the header or the status sets NEEDS_RESET; after a reset the device works', () => {
  for (const [chain, why] of [
    [[{ addr: HEADER, len: 15, flags: 0 }, { addr: STATUS, len: 1, flags: DESC_F_WRITE }], /a block request with 15 device-readable bytes, less than its 16-byte header/],
    [[{ addr: HEADER, len: 16, flags: 0 }, { addr: DATA, len: 512, flags: 0 }], /a block request with no device-writable byte for its status/],
    [[{ addr: HEADER, len: 16, flags: DESC_F_WRITE }, { addr: STATUS, len: 1, flags: DESC_F_WRITE }], /a block request with 0 device-readable bytes/],
  ] as const) {
    const { d, submit, memory } = readyBlk();
    writeHeader(memory, BlkType.IN, 0n);
    assert.deepEqual(submit([...chain]), [], 'the chain is not returned');
    assert.equal(memory.readU8(STATUS), 0xff, 'no status written');
    assert.equal(d.status & DeviceStatus.NEEDS_RESET, DeviceStatus.NEEDS_RESET);
    assert.match(d.reports[0], why);
    assert.match(d.reports[0], /^virtio-blk test-disk: queue 0: .*; the device needs a reset$/);

    d.reset();
    assert.equal(d.negotiate(Feature.VERSION_1 | ALL_BLK_FEATURES), true);
    d.setUpQueue(0, QUEUE);
    d.driverOk();
    writeHeader(memory, BlkType.GET_ID, 0n);
    assert.deepEqual(submit([{ addr: HEADER, len: 16, flags: 0 }, { addr: DATA, len: 20, flags: DESC_F_WRITE }, { addr: STATUS, len: 1, flags: DESC_F_WRITE }]), [ok(21)]);
  }
});

test('two disks are two devices over two images', () => {
  const [pathA, pathB] = [imageFile(), imageFile()];
  const a = readyBlk({ image: rawImage(pathA), id: 'a' });
  const b = readyBlk({ image: rawImage(pathB), id: 'b' });
  assert.deepEqual(a.request(BlkType.OUT, 7n, { out: new Uint8Array(512).fill(0xa0) }), ok());
  assert.deepEqual(b.request(BlkType.OUT, 7n, { out: new Uint8Array(512).fill(0xb0) }), ok());
  assert.ok(fileBytes(pathA, 7, 1).every((x) => x === 0xa0));
  assert.ok(fileBytes(pathB, 7, 1).every((x) => x === 0xb0));
});

/** A VM that takes the eventfds without wiring them. */
const fakeVm: PciVm = { fd: 42, irqfd: () => {}, ioeventfd: (_e: IoEventFd) => {}, setGsiRouting: () => {} };

test('the builder opens each --disk image, puts the disks in their own slots, and closes the files with the machine', () => {
  const [pathA, pathB] = [imageFile(), imageFile(new Uint8Array(4096))];
  const pci = setUpPci(fakeVm, [{ kind: 'virtio-rng' }, { kind: 'virtio-blk', path: pathA }, { kind: 'virtio-blk', path: pathB, readOnly: true, id: 'b' }]);
  const disks = pci.devices.filter((d) => d.spec.kind === 'virtio-blk').map((d) => d.spec as Extract<DeviceSpec, { kind: 'virtio-blk' }>);
  assert.deepEqual(disks.map((s) => [s.pci?.slot, s.image?.size, s.readOnly, s.id]), [[2, SECTORS * 512, undefined, undefined], [3, 4096, true, 'b']]);
  assert.deepEqual(placement(pci.devices[1].spec), { name: 'virtio-blk (PCI 00:02.0 BAR0)', bus: 'mmio', base: 0xc100_4000, length: Bar0.SIZE });
  const fds = disks.map((s) => s.image!.fd);
  assert.ok(fds.every((fd) => fstatSync(fd).isFile()));
  pci.close();
  for (const fd of fds) assert.throws(() => fstatSync(fd), { code: 'EBADF' }, 'closed with the machine');
});

test('a disk image the builder cannot use fails the build with one line', () => {
  const odd = imageFile(new Uint8Array(1000));
  const cases: [DeviceSpec, RegExp][] = [
    [{ kind: 'virtio-blk', path: join(dir, 'missing.img') }, /^Error: disk image '.*missing\.img': no such file$/],
    [{ kind: 'virtio-blk', path: dir }, /^Error: disk image '.*': is a directory$/],
    [{ kind: 'virtio-blk', path: '/dev/null', readOnly: true }, /^Error: disk image '\/dev\/null': not a regular file$/],
    [{ kind: 'virtio-blk', path: odd }, /^Error: disk image '.*': 1000 bytes is not a whole number of 512-byte sectors$/],
    [{ kind: 'virtio-blk', path: odd, id: 'x'.repeat(21) }, /^Error: disk ID 'x{21}' is not 1 to 20 printable ASCII characters$/],
  ];
  for (const [spec, message] of cases) assert.throws(() => setUpPci(fakeVm, [{ kind: 'virtio-rng' }, spec]), message);
});

test('--disk PATH[,ro][,id=NAME]', () => {
  assert.deepEqual(parseDisk('a.img'), { kind: 'virtio-blk', path: 'a.img' });
  assert.deepEqual(parseDisk('/x/b.img,ro,id=root'), { kind: 'virtio-blk', path: '/x/b.img', readOnly: true, id: 'root' });
  assert.throws(() => parseDisk('a.img,rw'), /^Error: --disk: unknown option 'rw' in 'a.img,rw' \(expected ro, id=NAME or bw_size=N, ops_size=N \(with _one_time_burst, _refill_time=MS\)\)$/);
  assert.throws(() => parseDisk(',ro'), /^Error: --disk: ',ro' names no image file$/);
  assert.throws(() => parseDisk('a.img,id='), /^Error: --disk: disk ID '' is not 1 to 20 printable ASCII characters$/);
  assert.throws(() => parseDisk('a.img,id=ä'), /--disk: disk ID 'ä' is not/);
});
