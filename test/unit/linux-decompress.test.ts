import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { lzma } from '@napi-rs/lzma';
import { undoX86Bcj } from '../../src/boot/linux/bcj-x86.js';
import { decompressPayload, detectCompression } from '../../src/boot/linux/decompress.js';
import { LinuxImageError } from '../../src/boot/linux/errors.js';
import { LZ4_LEGACY_MAGIC } from '../../src/boot/linux/lz4-legacy.js';
import { decodeXz } from '../../src/boot/linux/xz.js';

// Made with the reference tools (xz 5.4, zstd 1.5) from the data the functions below rebuild.
/** `xz --check=crc32 --x86 --lzma2=dict=1MiB` of callsToOneTarget(): the kernel's xz settings. */
const CALLS_XZ_X86 =
  '/Td6WFoAAAFpIt42AgEEACEBEACLIW9J4A//ACFdAHP//+AMArTTn+bbgPQa0FyrPFKyPNkCSEsqNutCGMoKAAAAAABEcu4zAAE5gCAAAAAUnfTxPjANiwIAAAAAAVla';
/** `xz --check=crc32 --delta=dist=1 --lzma2=dict=1MiB` of text(). */
const TEXT_XZ_DELTA =
  '/Td6WFoAAAFpIt42AgEDAQAhARBMhacH4A7XAC9dADo/vG90g1QpAtlr+KgydwQupUq47DMEZQMolX5G4LfZBALix1jvNYv9P68iL9cAAABFV4B2AAFH2B0AAADTVf7KPjANiwIAAAAAAVla';
/** `zstd -19` of text(). */
const TEXT_ZSTD = 'KLUv/WTYDd0AAJh0c3ZtbSB6c3RkIHBheWxvYWQKAQCFbf4MA/50qOE=';

/** 512 `call 0x2000` instructions, each followed by three NOPs: what the x86 filter is for. */
function callsToOneTarget(): Uint8Array {
  const code = new Uint8Array(512 * 8);
  const view = new DataView(code.buffer);
  for (let i = 0; i < 512; i++) {
    code[i * 8] = 0xe8;
    view.setInt32(i * 8 + 1, 0x2000 - (i * 8 + 5), true);
    code.fill(0x90, i * 8 + 5, i * 8 + 8);
  }
  return code;
}
const text = () => Buffer.from('tsvmm zstd payload\n'.repeat(200));

/** What the kernel build does to every payload but gzip: append the decompressed size. */
function withSize(stream: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(stream.length + 4);
  out.set(stream);
  new DataView(out.buffer).setUint32(stream.length, size, true);
  return out;
}

const fromBase64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const refuses = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof LinuxImageError && message.test(e.message));

test('formats are told by their magic bytes', () => {
  assert.equal(detectCompression(gzipSync('x')), 'gzip');
  assert.equal(detectCompression(fromBase64(CALLS_XZ_X86)), 'xz');
  assert.equal(detectCompression(Uint8Array.of(0x02, 0x21, 0x4c, 0x18)), 'lz4');
  assert.equal(detectCompression(fromBase64(TEXT_ZSTD)), 'zstd');
  assert.equal(detectCompression(lzma.compressSync('x')), 'lzma');
  assert.equal(detectCompression(Buffer.from('BZh91AY&SY')), 'bzip2');
  assert.equal(detectCompression(Uint8Array.of(0x89, 0x4c, 0x5a, 0x4f, 0, 0xd, 0xa)), 'lzo');
  assert.equal(detectCompression(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46)), undefined);
});

test('gzip, zstd, lzma and LZ4 payloads decompress to their data', () => {
  const data = text();
  // One literals-only LZ4 block: token 0xf0, then the length past 15 as 255s and a remainder.
  const rest = data.length - 15;
  const lz4Block = Uint8Array.of(0xf0, ...new Array(Math.floor(rest / 255)).fill(255), rest % 255, ...data);
  const lz4Stream = new Uint8Array(8 + lz4Block.length);
  new DataView(lz4Stream.buffer).setUint32(0, LZ4_LEGACY_MAGIC, true);
  new DataView(lz4Stream.buffer).setUint32(4, lz4Block.length, true);
  lz4Stream.set(lz4Block, 8);

  const payloads = {
    gzip: gzipSync(data),
    zstd: withSize(fromBase64(TEXT_ZSTD), data.length),
    lzma: withSize(lzma.compressSync(data), data.length),
    lz4: withSize(lz4Stream, data.length),
  };
  for (const [format, payload] of Object.entries(payloads)) {
    const out = decompressPayload(payload, 1 << 20);
    assert.equal(out.compression, format);
    assert.deepEqual(Buffer.from(out.data), data, format);
  }
});

test('xz payloads with the x86 branch filter decompress to their data', () => {
  const code = callsToOneTarget();
  const out = decompressPayload(withSize(fromBase64(CALLS_XZ_X86), code.length), 1 << 20);
  assert.equal(out.compression, 'xz');
  assert.deepEqual(Buffer.from(out.data), Buffer.from(code));
});

test('the x86 filter turns absolute call targets back into relative ones', () => {
  // At offset 0, absolute 5 is relative 0; at 0x100, absolute 0xf5 is relative -0x10 (sign-extended).
  const code = new Uint8Array(0x110).fill(0x90);
  code.set([0xe8, 0x05, 0x00, 0x00, 0x00], 0);
  code.set([0xe8, 0xf5, 0x00, 0x00, 0x00], 0x100);
  undoX86Bcj(code);
  assert.deepEqual([...code.subarray(0, 5)], [0xe8, 0, 0, 0, 0]);
  assert.deepEqual([...code.subarray(0x100, 0x105)], [0xe8, 0xf0, 0xff, 0xff, 0xff]);
  // Targets whose top byte is neither 0x00 nor 0xff were never converted.
  const far = Uint8Array.of(0xe8, 0x05, 0x00, 0x00, 0x12, 0x90);
  undoX86Bcj(far);
  assert.deepEqual([...far], [0xe8, 0x05, 0x00, 0x00, 0x12, 0x90]);
});

test('malformed or unsupported xz payloads are refused', () => {
  refuses(() => decodeXz(fromBase64(TEXT_XZ_DELTA)), /filter 0x3.*decompress: 'guest'/);
  const badCheck = fromBase64(CALLS_XZ_X86);
  badCheck[68] ^= 1; // the block's CRC32: the block starts at 12 with a 12-byte header and 41 bytes of data padded to 44
  refuses(() => decodeXz(badCheck), /block checksum mismatch/);
  const badHeader = fromBase64(CALLS_XZ_X86);
  badHeader[13] ^= 0x40;
  refuses(() => decodeXz(badHeader), /block header checksum mismatch/);
  refuses(() => decodeXz(fromBase64(CALLS_XZ_X86).subarray(0, 90)), /no stream footer/);
});

test('payloads that are not what they claim are refused', () => {
  const data = text();
  refuses(() => decompressPayload(withSize(lzma.compressSync(data), data.length + 1), 1 << 20), /3800 bytes, not the 3801/);
  refuses(() => decompressPayload(gzipSync(data), 1000), /more than the guest's 1000 bytes/);
  refuses(() => decompressPayload(withSize(Buffer.from('BZh91AY&SY'), 100), 1 << 20), /bzip2.*decompress: 'guest'/);
  refuses(() => decompressPayload(withSize(Uint8Array.of(0x89, 0x4c, 0x5a, 0x4f), 100), 1 << 20), /lzo.*decompress: 'guest'/);
  refuses(() => decompressPayload(withSize(Uint8Array.of(1, 2, 3, 4), 100), 1 << 20), /unknown format \(magic 01020304\)/);
  const truncatedGzip = gzipSync(data).subarray(0, 30);
  refuses(() => decompressPayload(truncatedGzip, 2 ** 32), /gzip-compressed kernel is corrupt/);
});
