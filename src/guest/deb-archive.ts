/**
 * A Debian package (.deb) is an ar archive of three members:
 * "debian-binary" (the format version, "2.0\n"), control.tar.* (package
 * metadata) and data.tar.* (the files to install). This reads the ar
 * container and hands out the data member as a decompressed tar stream,
 * so nothing of dpkg-deb, ar or tar is needed on the host.
 */
import { createRequire } from 'node:module';

// The native xz decoder the kernel loader uses too (src/boot/linux), loaded on first use.
const xz = (): typeof import('@napi-rs/lzma').xz => createRequire(import.meta.url)('@napi-rs/lzma').xz;

export class DebArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DebArchiveError';
  }
}

export interface ArMember {
  name: string;
  /** A view into the archive, not a copy. */
  data: Uint8Array;
}

const AR_MAGIC = '!<arch>\n';
const AR_HEADER_SIZE = 60;
const AR_HEADER_END = '`\n';

/** The members of an ar archive, in order. */
export function readArArchive(archive: Uint8Array): ArMember[] {
  const text = (start: number, length: number) => Buffer.from(archive.subarray(start, start + length)).toString('latin1');
  if (text(0, AR_MAGIC.length) !== AR_MAGIC) throw new DebArchiveError('not an ar archive (bad magic)');
  const members: ArMember[] = [];
  let at = AR_MAGIC.length;
  while (at < archive.length) {
    if (archive.length - at < AR_HEADER_SIZE) throw new DebArchiveError(`ar member header at offset ${at} is truncated`);
    if (text(at + 58, 2) !== AR_HEADER_END) throw new DebArchiveError(`ar member header at offset ${at} is corrupt`);
    // GNU ar ends names with "/"; both pad them with spaces.
    const name = text(at, 16).trimEnd().replace(/\/$/, '');
    const sizeField = text(at + 48, 10).trim();
    const size = Number(sizeField);
    if (!/^\d+$/.test(sizeField)) throw new DebArchiveError(`ar member ${name} has a bad size field "${sizeField}"`);
    const start = at + AR_HEADER_SIZE;
    if (size > archive.length - start) throw new DebArchiveError(`ar member ${name} (${size} bytes) extends past the end of the archive`);
    members.push({ name, data: archive.subarray(start, start + size) });
    // Members start on even offsets.
    at = start + size + (size & 1);
  }
  return members;
}

/** Reports how much of the data member has been read, 0 to 1. */
export type UnpackProgress = (fraction: number) => void;

const FEED_CHUNK = 1 << 20;

/**
 * The data member of a .deb as an uncompressed tar stream. gzip is
 * decompressed as the stream is read, and `progress` follows its input;
 * xz is decompressed whole first, off the main thread (no streaming xz
 * decoder is worth a second dependency), and `progress` follows the tar.
 */
export function debDataTar(deb: Uint8Array, progress?: UnpackProgress): ReadableStream<Uint8Array> {
  const members = readArArchive(deb);
  const version = members[0]?.name === 'debian-binary' ? Buffer.from(members[0].data).toString('latin1').trim() : undefined;
  if (version === undefined || !version.startsWith('2.')) throw new DebArchiveError('not a Debian package (no debian-binary 2.x member first)');
  const dataMember = members.find((m) => m.name.startsWith('data.tar'));
  if (dataMember === undefined) throw new DebArchiveError('the package has no data.tar member');
  const { name, data } = dataMember;

  switch (name) {
    case 'data.tar.xz':
      return chunked(xz().decompress(data).catch((e: Error) => {
        throw new DebArchiveError(`the package's ${name} is corrupt: ${e.message}`);
      }), progress);
    case 'data.tar.gz':
      return chunked(Promise.resolve(data), progress).pipeThrough(new DecompressionStream('gzip'));
    case 'data.tar':
      return chunked(Promise.resolve(data), progress);
    default:
      throw new DebArchiveError(`the package's ${name} uses a compression tsvmm cannot read (xz, gzip or none)`);
  }
}

/** `bytes`, once they are there, as a stream of chunks; `progress` hears how much has been read. */
function chunked(bytes: Promise<Uint8Array>, progress?: UnpackProgress): ReadableStream<Uint8Array> {
  bytes.catch(() => {}); // a failure reaches the reader through pull()
  let fed = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const data = await bytes;
      if (fed >= data.length) return controller.close();
      const chunk = data.subarray(fed, fed + FEED_CHUNK);
      fed += chunk.length;
      controller.enqueue(chunk);
      progress?.(fed / data.length);
    },
  });
}
