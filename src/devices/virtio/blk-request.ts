/**
 * How a block request lies in a descriptor chain (virtio 1.2, 5.2.6): a
 * 16-byte header the device reads (type, reserved, sector), the data, and
 * a status byte the device writes, last of all. Descriptor boundaries mean
 * nothing (2.6.4): the header may span buffers, and the status byte may
 * share its buffer with data, so the chain is taken as two runs of bytes.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { QueueError, type DescriptorChain, type GuestBuffer } from './queue.js';

export const BLK_HEADER_SIZE = 16;

export interface BlkRequest {
  type: number;
  sector: bigint;
  /** Device-readable data, after the header. */
  readable: GuestBuffer[];
  /** Device-writable data, before the status byte. */
  writable: GuestBuffer[];
  /** Guest-physical address of the status byte. */
  status: number;
}

/**
 * The request in `chain`. A chain with no room for the header among its
 * readable bytes or for the status among its writable ones cannot be
 * answered at all: a driver error, which makes the device need a reset.
 */
export function parseBlkRequest(chain: DescriptorChain, memory: GuestMemory): BlkRequest {
  const readable = byteLength(chain.readable);
  if (readable < BLK_HEADER_SIZE) throw new QueueError(`a block request with ${readable} device-readable bytes, less than its ${BLK_HEADER_SIZE}-byte header`);
  const writable = byteLength(chain.writable);
  if (writable === 0) throw new QueueError('a block request with no device-writable byte for its status');
  const header = new DataView(gather(memory, chain.readable, BLK_HEADER_SIZE).buffer);
  const last = chain.writable[chain.writable.length - 1];
  return {
    type: header.getUint32(0, true),
    sector: header.getBigUint64(8, true),
    readable: slice(chain.readable, BLK_HEADER_SIZE, readable),
    writable: slice(chain.writable, 0, writable - 1),
    status: last.addr + last.len - 1,
  };
}

export function byteLength(buffers: readonly GuestBuffer[]): number {
  return buffers.reduce((n, b) => n + b.len, 0);
}

/** Live views of the buffers, for one scatter/gather call (preadv, readv). */
export function bufferViews(buffers: readonly GuestBuffer[], memory: GuestMemory): Uint8Array[] {
  return buffers.map((b) => memory.view(b.addr, b.len));
}

/** The buffers that hold bytes [start, end) of `buffers` taken as one run. */
function slice(buffers: readonly GuestBuffer[], start: number, end: number): GuestBuffer[] {
  const out: GuestBuffer[] = [];
  let at = 0;
  for (const b of buffers) {
    const from = Math.max(start, at);
    const to = Math.min(end, at + b.len);
    if (from < to) out.push({ addr: b.addr + from - at, len: to - from });
    at += b.len;
  }
  return out;
}

/** A copy of the first `length` bytes of `buffers`, which hold at least that many. */
export function gather(memory: GuestMemory, buffers: readonly GuestBuffer[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const b of slice(buffers, 0, length)) {
    out.set(memory.view(b.addr, b.len), at);
    at += b.len;
  }
  return out;
}

/** Writes as much of `bytes` as `buffers` hold; returns how much that was. */
export function scatter(memory: GuestMemory, buffers: readonly GuestBuffer[], bytes: Uint8Array): number {
  let at = 0;
  for (const b of slice(buffers, 0, bytes.length)) {
    memory.write(b.addr, bytes.subarray(at, at + b.len));
    at += b.len;
  }
  return at;
}
