/**
 * The block device (virtio 1.2, 5.2) over a disk image: one request queue
 * carrying reads, writes, flushes, the ID string, discard and write zeroes.
 *
 * It runs on the device's I/O thread and does its I/O synchronously there.
 * What the guest may get wrong inside a well-framed request (a direction,
 * a length, a sector past the end, an unknown type) is answered with a
 * status; so is any failure of the host's I/O, which is also reported once
 * per kind. Only a chain with no room for the header or the status byte
 * is a driver error the device cannot answer (it then needs a reset).
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { DiskImage } from '../disk/disk-image.js';
import { SECTOR_SIZE } from '../disk/raw-image.js';
import { bufferViews, byteLength, gather, scatter } from './buffers.js';
import { parseBlkRequest, type BlkRequest } from './blk-request.js';
import type { VirtioDevice, VirtioDeviceInfo } from './device.js';
import type { DescriptorChain } from './queue.js';
import type { QueueLimiter } from './rate-limiter.js';

export const VIRTIO_ID_BLOCK = 2;

/** Device feature bits (virtio 1.2, 5.2.3). */
export const BlkFeature = {
  SEG_MAX: 1n << 2n,
  RO: 1n << 5n,
  BLK_SIZE: 1n << 6n,
  FLUSH: 1n << 9n,
  DISCARD: 1n << 13n,
  WRITE_ZEROES: 1n << 14n,
} as const;

export const BlkType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** The ID string: ASCII, NUL-padded to 20 bytes, no NUL when it fills them. */
export const BLK_ID_BYTES = 20;
const QUEUE_SIZE = 256;
export const BLK_QUEUE_SIZES: readonly number[] = [QUEUE_SIZE];
/** A chain is no longer than the queue (2.7.5.3.1), and the header and status take a descriptor each. */
export const BLK_SEG_MAX = QUEUE_SIZE - 2;
/** Per discard or write-zeroes request: segments, and sectors per segment (32 MiB, so one request stays short). */
export const BLK_MAX_ZERO_SEGMENTS = 8;
export const BLK_MAX_ZERO_SECTORS = 1 << 16;
/** Discards in units of the host's 4 KiB blocks, which a hole punched in the image frees. */
const DISCARD_ALIGNMENT_SECTORS = 8;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
const ZERO_SEGMENT_SIZE = 16;
const FLAG_UNMAP = 1;
/** Mass storage, SCSI: what QEMU's virtio-blk shows too. */
const CLASS_STORAGE_SCSI = 0x010000;

/** struct virtio_blk_config (virtio 1.2, 5.2.4), up to the fields of the features offered. */
const Config = {
  CAPACITY: 0, SEG_MAX: 12, BLK_SIZE: 20,
  MAX_DISCARD_SECTORS: 36, MAX_DISCARD_SEG: 40, DISCARD_SECTOR_ALIGNMENT: 44,
  MAX_WRITE_ZEROES_SECTORS: 48, MAX_WRITE_ZEROES_SEG: 52, WRITE_ZEROES_MAY_UNMAP: 56,
  SIZE: 60,
} as const;

export interface BlkOptions {
  readOnly: boolean;
  /** The ID string (checkBlkId). */
  id: string;
  /** Requests wait for it (bytes: the request's data); none when undefined. */
  limiter?: QueueLimiter;
}

/** What a request carries besides its data: the 16-byte header and the status byte. */
const REQUEST_FRAMING = 17;

/** Throws unless `id` can be the ID string: 1 to 20 printable ASCII characters. */
export function checkBlkId(id: string): void {
  if (!/^[\x20-\x7e]{1,20}$/.test(id)) throw new Error(`disk ID '${id}' is not 1 to ${BLK_ID_BYTES} printable ASCII characters`);
}

/** What the transport shows of a disk of `size` bytes. */
export function blkInfo(size: number, { readOnly, id }: BlkOptions): VirtioDeviceInfo {
  const features = BlkFeature.SEG_MAX | BlkFeature.BLK_SIZE | BlkFeature.FLUSH | BlkFeature.DISCARD | BlkFeature.WRITE_ZEROES;
  return {
    id: VIRTIO_ID_BLOCK,
    name: `virtio-blk ${id}`,
    features: readOnly ? features | BlkFeature.RO : features,
    queueSizes: BLK_QUEUE_SIZES,
    classCode: CLASS_STORAGE_SCSI,
    config: blkConfig(size / SECTOR_SIZE),
  };
}

function blkConfig(sectors: number): Uint8Array {
  const bytes = new Uint8Array(Config.SIZE);
  const v = new DataView(bytes.buffer);
  v.setBigUint64(Config.CAPACITY, BigInt(sectors), true);
  v.setUint32(Config.SEG_MAX, BLK_SEG_MAX, true);
  v.setUint32(Config.BLK_SIZE, SECTOR_SIZE, true);
  v.setUint32(Config.MAX_DISCARD_SECTORS, BLK_MAX_ZERO_SECTORS, true);
  v.setUint32(Config.MAX_DISCARD_SEG, BLK_MAX_ZERO_SEGMENTS, true);
  v.setUint32(Config.DISCARD_SECTOR_ALIGNMENT, DISCARD_ALIGNMENT_SECTORS, true);
  v.setUint32(Config.MAX_WRITE_ZEROES_SECTORS, BLK_MAX_ZERO_SECTORS, true);
  v.setUint32(Config.MAX_WRITE_ZEROES_SEG, BLK_MAX_ZERO_SEGMENTS, true);
  v.setUint8(Config.WRITE_ZEROES_MAY_UNMAP, 1);
  return bytes;
}

/** A request's status, and how many data bytes the device wrote into the chain before it. */
interface Outcome {
  status: number;
  written: number;
}
const IOERR: Outcome = { status: BlkStatus.IOERR, written: 0 };
const UNSUPP: Outcome = { status: BlkStatus.UNSUPP, written: 0 };
const OK: Outcome = { status: BlkStatus.OK, written: 0 };

interface ZeroSegment {
  sector: bigint;
  sectors: number;
  flags: number;
}

export class VirtioBlk implements VirtioDevice {
  readonly info: VirtioDeviceInfo;
  private readonly sectors: bigint;
  private readonly readOnly: boolean;
  private readonly idString: Uint8Array;
  private features = 0n;
  /** Host failures already reported, by operation and error code. */
  private readonly reported = new Set<string>();

  constructor(
    private readonly image: DiskImage,
    options: BlkOptions,
    /** Told of host I/O failures. */
    private readonly report: (message: string) => void,
  ) {
    checkBlkId(options.id);
    this.info = blkInfo(image.size, options);
    this.sectors = BigInt(image.size / SECTOR_SIZE);
    this.readOnly = options.readOnly;
    const { limiter } = options;
    if (limiter) {
      this.admit = (_queue, chain) => limiter.admit(Math.max(0, byteLength(chain.readable) + byteLength(chain.writable) - REQUEST_FRAMING));
      this.wakeups = () => limiter.wakeups();
    }
    this.idString = new Uint8Array(BLK_ID_BYTES);
    this.idString.set(Buffer.from(options.id, 'latin1'));
  }

  /** Only with a rate limiter: without one, every chain is served at once. */
  readonly admit?: (queue: number, chain: DescriptorChain) => boolean;
  readonly wakeups?: () => readonly { queue: number; atMs: number }[];

  negotiated(features: bigint): void {
    this.features = features;
  }

  serve(_queue: number, chain: DescriptorChain, memory: GuestMemory): number {
    const request = parseBlkRequest(chain, memory);
    const { status, written } = this.execute(request, memory);
    memory.writeU8(request.status, status);
    return written + 1;
  }

  private execute(r: BlkRequest, memory: GuestMemory): Outcome {
    switch (r.type) {
      case BlkType.IN: return this.read(r, memory);
      case BlkType.OUT: return this.write(r, memory);
      case BlkType.FLUSH: return this.flush(r);
      case BlkType.GET_ID: return this.getId(r, memory);
      case BlkType.DISCARD:
      case BlkType.WRITE_ZEROES: return this.zero(r, memory);
      default: return UNSUPP;
    }
  }

  /** Data into the device-writable buffers; there must be no readable data. */
  private read(r: BlkRequest, memory: GuestMemory): Outcome {
    const length = byteLength(r.writable);
    if (byteLength(r.readable) > 0 || !this.fits(r.sector, length)) return IOERR;
    // A read of nothing asks nothing of the host (which may be failing).
    const ok = length === 0 || this.host('read', () => this.image.read(bufferViews(r.writable, memory), Number(r.sector) * SECTOR_SIZE));
    return ok ? { status: BlkStatus.OK, written: length } : IOERR;
  }

  /** Data from the device-readable buffers; there must be no writable data but the status. */
  private write(r: BlkRequest, memory: GuestMemory): Outcome {
    if (this.readOnly || byteLength(r.writable) > 0 || !this.fits(r.sector, byteLength(r.readable))) return IOERR;
    const ok = this.host('write', () => {
      if (r.readable.length > 0) this.image.write(bufferViews(r.readable, memory), Number(r.sector) * SECTOR_SIZE);
      this.settle();
    });
    return ok ? OK : IOERR;
  }

  private flush(r: BlkRequest): Outcome {
    if (byteLength(r.readable) > 0 || byteLength(r.writable) > 0) return IOERR;
    return this.host('flush', () => this.image.flush()) ? OK : IOERR;
  }

  /** The ID string, as much of its 20 bytes as the buffers hold. */
  private getId(r: BlkRequest, memory: GuestMemory): Outcome {
    if (byteLength(r.readable) > 0 || byteLength(r.writable) === 0) return IOERR;
    return { status: BlkStatus.OK, written: scatter(memory, r.writable, this.idString) };
  }

  /**
   * Discard and write zeroes: the range reads as zeros afterwards either
   * way. Discard always frees the space; write zeroes when the driver sets
   * unmap (5.2.6.2: UNSUPP for an unknown flag, or unmap on a discard).
   */
  private zero(r: BlkRequest, memory: GuestMemory): Outcome {
    const discard = r.type === BlkType.DISCARD;
    if ((this.features & (discard ? BlkFeature.DISCARD : BlkFeature.WRITE_ZEROES)) === 0n) return UNSUPP;
    const length = byteLength(r.readable);
    const count = length / ZERO_SEGMENT_SIZE;
    if (byteLength(r.writable) > 0 || !Number.isInteger(count) || count < 1 || count > BLK_MAX_ZERO_SEGMENTS) return IOERR;
    const data = new DataView(gather(memory, r.readable, length).buffer);
    const segments: ZeroSegment[] = Array.from({ length: count }, (_, i) => ({
      sector: data.getBigUint64(ZERO_SEGMENT_SIZE * i, true),
      sectors: data.getUint32(ZERO_SEGMENT_SIZE * i + 8, true),
      flags: data.getUint32(ZERO_SEGMENT_SIZE * i + 12, true),
    }));
    if (segments.some((s) => (s.flags & ~FLAG_UNMAP) !== 0 || (discard && s.flags !== 0))) return UNSUPP;
    if (this.readOnly || segments.some((s) => s.sectors > BLK_MAX_ZERO_SECTORS || !this.fits(s.sector, s.sectors * SECTOR_SIZE))) return IOERR;
    const ok = this.host(discard ? 'discard' : 'write zeroes', () => {
      for (const s of segments) this.image.zero(Number(s.sector) * SECTOR_SIZE, s.sectors * SECTOR_SIZE, discard || s.flags === FLAG_UNMAP);
      this.settle();
    });
    return ok ? OK : IOERR;
  }

  /** Whether `bytes` from `sector` are whole sectors inside the disk. */
  private fits(sector: bigint, bytes: number): boolean {
    return bytes % SECTOR_SIZE === 0 && sector + BigInt(bytes / SECTOR_SIZE) <= this.sectors;
  }

  /**
   * A driver that did not take VIRTIO_BLK_F_FLUSH cannot ask for one, so
   * each write is made durable before it completes (5.2.6.2: writethrough).
   */
  private settle(): void {
    if ((this.features & BlkFeature.FLUSH) === 0n) this.image.flush();
  }

  /** Runs host I/O; a failure becomes false (an I/O error for the guest), reported once per operation and code. */
  private host(operation: string, io: () => void): boolean {
    try {
      io();
      return true;
    } catch (e) {
      const error = e as NodeJS.ErrnoException;
      const key = `${operation} ${error.code ?? error.message}`;
      if (!this.reported.has(key)) {
        this.reported.add(key);
        this.report(`${this.info.name}: ${operation} failed on the host (${error.message}); the guest gets an I/O error`);
      }
      return false;
    }
  }
}
