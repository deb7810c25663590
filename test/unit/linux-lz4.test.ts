import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinuxImageError } from '../../src/boot/linux/errors.js';
import { decodeLz4Legacy, LZ4_LEGACY_MAGIC } from '../../src/boot/linux/lz4-legacy.js';

const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
const concat = (...parts: (Uint8Array | number[])[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** LZ4's length encoding past the 4-bit token field: 255s, then the remainder. */
function extension(rest: number): number[] {
  const out: number[] = [];
  for (; rest >= 255; rest -= 255) out.push(255);
  out.push(rest);
  return out;
}

/** A block of one literals-only sequence. */
function literalBlock(data: Uint8Array): Uint8Array {
  if (data.length < 15) return concat([data.length << 4], data);
  return concat([0xf0], extension(data.length - 15), data);
}

/** The legacy frame: magic, then each block with its size. */
const frame = (...blocks: Uint8Array[]) => concat(u32(LZ4_LEGACY_MAGIC), ...blocks.flatMap((b) => [u32(b.length), b]));

const pattern = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);

const refuses = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof LinuxImageError && message.test(e.message));

test('literal-only blocks of all length encodings decode to their data', () => {
  for (const n of [1, 14, 15, 16, 269, 270, 271, 1000, 70000]) {
    const data = pattern(n);
    assert.deepEqual(decodeLz4Legacy(frame(literalBlock(data)), n), data, `${n} bytes`);
  }
});

test('blocks follow each other, and a repeated magic (concatenated streams) is skipped', () => {
  const a = pattern(300, 1);
  const b = pattern(20, 2);
  const stream = concat(frame(literalBlock(a)), frame(literalBlock(b)));
  assert.deepEqual(decodeLz4Legacy(stream, 320), concat(a, b));
});

test('matches copy earlier output, overlapping ones repeat it', () => {
  // "ab", then a match of 10 at offset 2 (overlapping: "abababababab"), then literals "xyz".
  const overlapping = concat([0x26], [0x61, 0x62], [2, 0], [0x30], [0x78, 0x79, 0x7a]);
  assert.equal(Buffer.from(decodeLz4Legacy(frame(overlapping), 15)).toString('latin1'), 'ababababababxyz');
  // 40 literals, then a 60-byte match at offset 40 (overlapping) and a 36-byte one at offset 100 (not).
  const literals = pattern(40);
  const longMatches = concat(
    [0xf0 | 15], extension(40 - 15), literals, [40, 0], extension(60 - 4 - 15),
    [0x0f], [100, 0], extension(36 - 4 - 15),
    [0x10], [0x21],
  );
  const expected = new Uint8Array(137);
  expected.set(literals);
  for (let i = 40; i < 100; i++) expected[i] = expected[i - 40];
  for (let i = 100; i < 136; i++) expected[i] = expected[i - 100];
  expected[136] = 0x21;
  assert.deepEqual(decodeLz4Legacy(frame(longMatches), 137), expected);
});

test('malformed streams are refused', () => {
  refuses(() => decodeLz4Legacy(concat(u32(0x184d2204), literalBlock(pattern(4))), 4), /no LZ4 legacy magic/);
  refuses(() => decodeLz4Legacy(concat(u32(LZ4_LEGACY_MAGIC), u32(100), [0x10, 1]), 1), /runs past the end/);
  refuses(() => decodeLz4Legacy(concat(frame(literalBlock(pattern(4))), [1, 2]), 4), /stray bytes/);
  refuses(() => decodeLz4Legacy(frame(concat([0x20], [1, 2], [0, 0], [0x10], [3])), 7), /offset 0/);
  refuses(() => decodeLz4Legacy(frame(concat([0x20], [1, 2], [3, 0], [0x10], [3])), 7), /offset 3/);
  refuses(() => decodeLz4Legacy(frame(concat([0xf0], [255])), 300), /past the end of a block/);
  refuses(() => decodeLz4Legacy(frame(concat([0x20], [1, 2], [2])), 6), /offset is cut off/);
  refuses(() => decodeLz4Legacy(frame(new Uint8Array(0)), 0), /without its final literals/);
  // Matches may not reach back into the previous block: legacy blocks are independent.
  refuses(() => decodeLz4Legacy(frame(literalBlock(pattern(8)), concat([0x10], [1], [4, 0], [0x10], [2])), 15), /offset 4/);
  refuses(() => decodeLz4Legacy(frame(literalBlock(pattern(8))), 7), /larger than announced/);
  refuses(() => decodeLz4Legacy(frame(literalBlock(pattern(8))), 9), /8 bytes, not the 9 announced/);
});
