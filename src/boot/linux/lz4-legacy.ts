/**
 * A decoder for the LZ4 "legacy" frame that Linux kernels are compressed
 * with (`lz4 -l`): the magic 0x184C2102, then chunks, each a little-endian
 * u32 compressed size followed by one independent LZ4 block of at most
 * 8 MiB of output. LZ4 blocks are sequences of literals then a back
 * reference (2-byte offset, length of at least 4); the last sequence has
 * literals only.
 */
import { LinuxImageError } from './errors.js';

export const LZ4_LEGACY_MAGIC = 0x184c2102;
const MIN_MATCH = 4;
/** Below this length a byte loop beats copyWithin's call overhead. */
const SHORT_COPY = 32;

const corrupt = (why: string) => new LinuxImageError(`the LZ4-compressed kernel is corrupt: ${why}`);

/**
 * Decodes a legacy LZ4 stream whose output is exactly `outputSize` bytes
 * (the kernel build appends that size after the stream).
 */
export function decodeLz4Legacy(stream: Uint8Array, outputSize: number): Uint8Array {
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  if (stream.length < 4 || view.getUint32(0, true) !== LZ4_LEGACY_MAGIC) throw corrupt('no LZ4 legacy magic');
  const out = new Uint8Array(outputSize);
  let at = 4;
  let written = 0;
  while (at < stream.length) {
    if (stream.length - at < 4) throw corrupt(`${stream.length - at} stray bytes after the last chunk`);
    const chunkSize = view.getUint32(at, true);
    at += 4;
    // Concatenated streams repeat the magic.
    if (chunkSize === LZ4_LEGACY_MAGIC) continue;
    if (chunkSize > stream.length - at) throw corrupt(`a chunk of ${chunkSize} bytes runs past the end of the stream`);
    written = decodeLz4Block(stream.subarray(at, at + chunkSize), out, written);
    at += chunkSize;
  }
  if (written !== outputSize) throw corrupt(`it decompresses to ${written} bytes, not the ${outputSize} announced`);
  return out;
}

/** Decodes one block into `out` from `start`; returns where its output ends. */
export function decodeLz4Block(block: Uint8Array, out: Uint8Array, start: number): number {
  let s = 0;
  let d = start;
  const extendLength = (length: number): number => {
    let byte: number;
    do {
      if (s >= block.length) throw corrupt('a length runs past the end of a block');
      byte = block[s++];
      length += byte;
    } while (byte === 255);
    return length;
  };

  for (;;) {
    if (s >= block.length) throw corrupt('a block ends without its final literals');
    const token = block[s++];
    let literals = token >> 4;
    if (literals === 15) literals = extendLength(literals);
    if (literals > block.length - s) throw corrupt('literals run past the end of a block');
    if (literals > out.length - d) throw corrupt('output larger than announced');
    out.set(block.subarray(s, s + literals), d);
    s += literals;
    d += literals;
    if (s === block.length) return d;

    if (block.length - s < 2) throw corrupt('a match offset is cut off');
    const offset = block[s] | (block[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d - start) throw corrupt(`match offset ${offset} points before the block's output`);
    let length = token & 15;
    if (length === 15) length = extendLength(length);
    length += MIN_MATCH;
    if (length > out.length - d) throw corrupt('output larger than announced');

    // A match may overlap its own output (offset < length): that repeats the last `offset` bytes.
    if (length < SHORT_COPY || offset < length) {
      for (let i = 0; i < length; i++) out[d + i] = out[d + i - offset];
    } else {
      out.copyWithin(d, d - offset, d - offset + length);
    }
    d += length;
  }
}
