/**
 * A reader of the .xz container (tukaani.org/xz/xz-file-format.txt) for
 * kernel payloads. The LZMA2 data of each block is decoded by @napi-rs/lzma;
 * the x86 branch filter that kernel builds add (xz --x86), which that
 * package does not know, is undone by bcj-x86.ts.
 *
 * Layout: stream header (12 bytes), blocks (header, compressed data,
 * padding to 4, check), index (a record per block: unpadded and
 * uncompressed sizes), stream footer (12 bytes, pointing back at the index).
 */
import { crc32 } from 'node:zlib';
import { createRequire } from 'node:module';
import { undoX86Bcj } from './bcj-x86.js';
import { LinuxImageError } from './errors.js';

// Loaded on first use (see decompress.ts).
const lzma2 = (): typeof import('@napi-rs/lzma').lzma2 => createRequire(import.meta.url)('@napi-rs/lzma').lzma2;

const HEADER_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const FOOTER_MAGIC = [0x59, 0x5a]; // "YZ"
const STREAM_HEADER_SIZE = 12;
const STREAM_FOOTER_SIZE = 12;
const CHECK_CRC32 = 1;
/** Check sizes by check type (0 none, 1 CRC32, 4 CRC64, 10 SHA-256, others reserved). */
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

const FILTER_X86 = 0x04;
const FILTER_LZMA2 = 0x21;

const BLOCK_FLAG_FILTER_COUNT = 0x03;
const BLOCK_FLAG_COMPRESSED_SIZE = 0x40;
const BLOCK_FLAG_UNCOMPRESSED_SIZE = 0x80;
const BLOCK_FLAG_RESERVED = 0x3c;

const corrupt = (why: string) => new LinuxImageError(`the xz-compressed kernel is corrupt: ${why}`);
const alignUp4 = (n: number): number => (n + 3) & ~3;

/** Reads xz's variable-length integers (7 bits a byte, low bits first). */
class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    public at: number,
  ) {}

  byte(): number {
    if (this.at >= this.bytes.length) throw corrupt('a header runs past the end of the stream');
    return this.bytes[this.at++];
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 63; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) {
        if (!Number.isSafeInteger(value)) throw corrupt('a size is too large');
        return value;
      }
    }
    throw corrupt('a variable-length integer is too long');
  }
}

interface IndexRecord {
  unpaddedSize: number;
  uncompressedSize: number;
}

interface Filter {
  id: number;
  properties: Uint8Array;
}

export function decodeXz(stream: Uint8Array): Uint8Array {
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  if (stream.length < STREAM_HEADER_SIZE + STREAM_FOOTER_SIZE) throw corrupt('too short');
  if (!HEADER_MAGIC.every((b, i) => stream[i] === b)) throw corrupt('no xz magic');
  const footer = stream.length - STREAM_FOOTER_SIZE;
  if (!FOOTER_MAGIC.every((b, i) => stream[footer + 10 + i] === b)) {
    throw corrupt('no stream footer at its end (concatenated or padded streams are not supported)');
  }
  const flags = stream.subarray(6, 8);
  if (flags[0] !== 0 || flags[1] & 0xf0) throw corrupt('unknown stream flags');
  if (crc32(flags) !== view.getUint32(8, true)) throw corrupt('stream header checksum mismatch');
  if (stream[footer + 8] !== flags[0] || stream[footer + 9] !== flags[1]) throw corrupt('footer flags differ from the header');
  const checkType = flags[1];
  const checkSize = CHECK_SIZES[checkType];

  const indexSize = (view.getUint32(footer + 4, true) + 1) * 4;
  const indexStart = footer - indexSize;
  if (indexStart < STREAM_HEADER_SIZE) throw corrupt('the index lies outside the stream');
  const records = readIndex(stream, indexStart, indexSize);

  const parts: Uint8Array[] = [];
  let at = STREAM_HEADER_SIZE;
  for (const record of records) {
    const block = decodeBlock(stream, at, record, checkSize);
    if (checkType === CHECK_CRC32 && crc32(block.data) !== view.getUint32(block.checkAt, true)) {
      throw corrupt('block checksum mismatch');
    }
    parts.push(block.data);
    at = block.checkAt + checkSize;
  }
  if (at !== indexStart) throw corrupt('the blocks do not end where the index starts');
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

function readIndex(stream: Uint8Array, start: number, size: number): IndexRecord[] {
  const r = new Reader(stream.subarray(0, start + size), start);
  if (r.byte() !== 0) throw corrupt('no index indicator');
  const count = r.varint();
  const records: IndexRecord[] = [];
  for (let i = 0; i < count; i++) records.push({ unpaddedSize: r.varint(), uncompressedSize: r.varint() });
  return records;
}

function decodeBlock(
  stream: Uint8Array,
  start: number,
  record: IndexRecord,
  checkSize: number,
): { data: Uint8Array; checkAt: number } {
  if (start >= stream.length || stream[start] === 0) throw corrupt('a block is missing');
  const headerSize = (stream[start] + 1) * 4;
  const headerEnd = start + headerSize;
  if (headerEnd > stream.length) throw corrupt('a block header runs past the end of the stream');
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  if (crc32(stream.subarray(start, headerEnd - 4)) !== view.getUint32(headerEnd - 4, true)) {
    throw corrupt('block header checksum mismatch');
  }

  const r = new Reader(stream.subarray(0, headerEnd - 4), start + 1);
  const flags = r.byte();
  if (flags & BLOCK_FLAG_RESERVED) throw corrupt('unknown block flags');
  if (flags & BLOCK_FLAG_COMPRESSED_SIZE) r.varint();
  if (flags & BLOCK_FLAG_UNCOMPRESSED_SIZE) r.varint();
  const filters: Filter[] = [];
  for (let i = 0; i <= (flags & BLOCK_FLAG_FILTER_COUNT); i++) {
    const id = r.varint();
    const size = r.varint();
    r.at += size;
    if (r.at > headerEnd - 4) throw corrupt('filter properties run past the block header');
    filters.push({ id, properties: stream.subarray(r.at - size, r.at) });
  }

  const compressedSize = record.unpaddedSize - headerSize - checkSize;
  if (compressedSize <= 0 || headerEnd + compressedSize > stream.length) throw corrupt('a block size in the index is wrong');
  const data = decodeFilters(stream.subarray(headerEnd, headerEnd + compressedSize), filters);
  if (data.length !== record.uncompressedSize) {
    throw corrupt(`a block decompresses to ${data.length} bytes, the index says ${record.uncompressedSize}`);
  }
  return { data, checkAt: alignUp4(headerEnd + compressedSize) };
}

/** Filters are listed in encoding order, ending with LZMA2; decoding runs them backwards. */
function decodeFilters(compressed: Uint8Array, filters: Filter[]): Uint8Array {
  const last = filters.at(-1);
  if (last?.id !== FILTER_LZMA2) throw corrupt('the last filter is not LZMA2');
  let data: Uint8Array;
  try {
    data = lzma2().decompressSync(compressed);
  } catch (e) {
    throw corrupt(`LZMA2: ${(e as Error).message}`);
  }
  for (const filter of filters.slice(0, -1).reverse()) {
    if (filter.id !== FILTER_X86) {
      throw new LinuxImageError(`the xz-compressed kernel uses filter 0x${filter.id.toString(16)}, which tsvmm cannot decode; use decompress: 'guest'`);
    }
    const start = filter.properties.length === 4
      ? new DataView(filter.properties.buffer, filter.properties.byteOffset).getUint32(0, true)
      : 0;
    undoX86Bcj(data, start);
  }
  return data;
}
