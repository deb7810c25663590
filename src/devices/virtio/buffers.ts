/**
 * A descriptor chain's buffers taken as one run of bytes, whatever the
 * descriptor boundaries (virtio 1.2, 2.6.4): their length, live views for
 * one scatter/gather call, and copies in and out.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { GuestBuffer } from './queue.js';

export function byteLength(buffers: readonly GuestBuffer[]): number {
  return buffers.reduce((n, b) => n + b.len, 0);
}

/** Live views of the buffers, for one scatter/gather call (preadv, readv). */
export function bufferViews(buffers: readonly GuestBuffer[], memory: GuestMemory): Uint8Array[] {
  return buffers.map((b) => memory.view(b.addr, b.len));
}

/** A copy of the first `length` bytes of `buffers`, which hold at least that many. */
export function gather(memory: GuestMemory, buffers: readonly GuestBuffer[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const b of sliceBuffers(buffers, 0, length)) {
    out.set(memory.view(b.addr, b.len), at);
    at += b.len;
  }
  return out;
}

/** Writes as much of `bytes` as `buffers` hold; returns how much that was. */
export function scatter(memory: GuestMemory, buffers: readonly GuestBuffer[], bytes: Uint8Array): number {
  let at = 0;
  for (const b of sliceBuffers(buffers, 0, bytes.length)) {
    memory.write(b.addr, bytes.subarray(at, at + b.len));
    at += b.len;
  }
  return at;
}

/** The buffers that hold bytes [start, end) of `buffers` taken as one run. */
export function sliceBuffers(buffers: readonly GuestBuffer[], start: number, end: number): GuestBuffer[] {
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
