/**
 * Host-side decompression of a bzImage payload into the vmlinux ELF file,
 * so the guest starts in the kernel proper instead of spending its first
 * seconds in the decompressor (every guest instruction at CPL0 is emulated
 * on hosts without hardware virtualisation).
 *
 * The format is told by its magic bytes. The kernel build appends the
 * decompressed size as a little-endian u32 to every payload (for gzip it is
 * the trailer's ISIZE), so the size is known before decompressing.
 */
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { LinuxImageError } from './errors.js';
import { decodeLz4Legacy } from './lz4-legacy.js';
import { decodeXz } from './xz.js';

// The decompressors of rarer formats load on first use: most kernels are gzip or LZ4,
// and loading them all costs ~40 ms of start-up.
const require = createRequire(import.meta.url);
const lzma = (): typeof import('@napi-rs/lzma').lzma => require('@napi-rs/lzma').lzma;
const zstdDecompress: typeof import('fzstd').decompress = (...args) => require('fzstd').decompress(...args);

export type Compression = 'gzip' | 'xz' | 'lz4' | 'zstd' | 'lzma' | 'bzip2' | 'lzo';

const MAGICS: [Compression, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['lz4', [0x02, 0x21, 0x4c, 0x18]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  // LZMA "alone" header: properties byte 0x5d (lc=3, lp=0, pb=2), then the dictionary size.
  ['lzma', [0x5d, 0x00, 0x00]],
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
  ['lzo', [0x89, 0x4c, 0x5a, 0x4f]], // "\x89LZO"
];

export function detectCompression(payload: Uint8Array): Compression | undefined {
  return MAGICS.find(([, magic]) => magic.every((b, i) => payload[i] === b))?.[0];
}

/** The size the build appended to the payload. */
export function decompressedSize(payload: Uint8Array): number {
  if (payload.length < 4) throw new LinuxImageError(`the compressed kernel is only ${payload.length} bytes`);
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(payload.length - 4, true);
}

export interface DecompressedKernel {
  data: Uint8Array;
  compression: Compression;
}

/**
 * Decompresses the payload, refusing one that says it is larger than
 * `maxSize` (the guest's RAM: a vmlinux larger than that cannot be loaded anyway).
 */
export function decompressPayload(payload: Uint8Array, maxSize: number): DecompressedKernel {
  const compression = detectCompression(payload);
  if (!compression) {
    const magic = Buffer.from(payload.subarray(0, 4)).toString('hex');
    throw new LinuxImageError(`the compressed kernel has an unknown format (magic ${magic}); use decompress: 'guest'`);
  }
  if (compression === 'bzip2' || compression === 'lzo') {
    throw new LinuxImageError(`tsvmm cannot decompress ${compression} kernels on the host; use decompress: 'guest'`);
  }
  const size = decompressedSize(payload);
  if (size > maxSize) {
    throw new LinuxImageError(`the kernel decompresses to ${size} bytes, more than the guest's ${maxSize} bytes of RAM`);
  }
  // All but gzip carry the appended size after the compressed stream itself.
  const stream = payload.subarray(0, payload.length - 4);
  const data = decode(compression, compression === 'gzip' ? payload : stream, size);
  if (data.length !== size) {
    throw new LinuxImageError(`the ${compression} kernel decompresses to ${data.length} bytes, not the ${size} its image announces`);
  }
  return { data, compression };
}

function decode(compression: Exclude<Compression, 'bzip2' | 'lzo'>, stream: Uint8Array, size: number): Uint8Array {
  switch (compression) {
    case 'lz4':
      return decodeLz4Legacy(stream, size);
    case 'xz':
      return decodeXz(stream);
  }
  try {
    switch (compression) {
      case 'gzip':
        return gunzipSync(stream, { maxOutputLength: Math.max(size, 1) });
      case 'zstd':
        // Kernels are compressed from a pipe with -22 --ultra: no content size in the frame and a
        // 128 MiB window, which fzstd without an output buffer shifts for every block (20 s
        // instead of 1.5 s for Debian's kernel). With one, fzstd cannot say how much it wrote
        // (it returns the whole buffer and drops what does not fit), so a stream that does not
        // match the size the build appended is caught only by the ELF checks that follow.
        return zstdDecompress(stream, new Uint8Array(size));
      case 'lzma':
        return lzma().decompressSync(stream);
    }
  } catch (e) {
    throw new LinuxImageError(`the ${compression}-compressed kernel is corrupt: ${(e as Error).message}`);
  }
}
