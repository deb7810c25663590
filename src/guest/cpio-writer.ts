/**
 * A writer for the "newc" cpio format (magic 070701), the one the Linux
 * kernel unpacks as an initramfs (Documentation/driver-api/early-userspace/
 * buffer-format.rst). Each entry is a 110-byte ASCII header of thirteen
 * 8-digit hex fields, the NUL-terminated name padded to a multiple of 4
 * bytes (counting the header), then the data padded to a multiple of 4. The
 * archive ends with an entry named TRAILER!!!.
 *
 * Entries are written as given: a parent directory must come before its
 * children, because the kernel creates them in that order.
 */

export type CpioEntry =
  | { kind: 'directory'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; data: Uint8Array }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'char-device'; path: string; mode: number; major: number; minor: number };

export const NEWC_MAGIC = '070701';
export const NEWC_HEADER_SIZE = 110;
export const CPIO_TRAILER = 'TRAILER!!!';

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  fileSize: number;
  rdevMajor: number;
  rdevMinor: number;
  name: Uint8Array;
}

const padTo4 = (n: number): number => (4 - (n % 4)) % 4;

function hex8(value: number, field: string): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`cpio ${field} ${value} does not fit in 32 bits`);
  return value.toString(16).padStart(8, '0');
}

function encodeHeader(h: Header): Uint8Array {
  const nameSize = h.name.length + 1;
  const text =
    NEWC_MAGIC +
    hex8(h.ino, 'inode') +
    hex8(h.mode, 'mode') +
    hex8(0, 'uid') +
    hex8(0, 'gid') +
    hex8(h.nlink, 'link count') +
    hex8(h.mtime, 'mtime') +
    hex8(h.fileSize, 'file size') +
    // The device holding the file: irrelevant in an archive, so 0.
    hex8(0, 'dev major') +
    hex8(0, 'dev minor') +
    hex8(h.rdevMajor, 'rdev major') +
    hex8(h.rdevMinor, 'rdev minor') +
    hex8(nameSize, 'name size') +
    // The checksum field is only used by the "070702" variant.
    hex8(0, 'check');
  const out = new Uint8Array(NEWC_HEADER_SIZE + nameSize + padTo4(NEWC_HEADER_SIZE + nameSize));
  out.set(Buffer.from(text, 'latin1'));
  out.set(h.name, NEWC_HEADER_SIZE);
  return out;
}

function checkPath(path: string): void {
  const parts = path.split('/');
  if (path === '' || path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`cpio path "${path}" must be relative, without empty, "." or ".." parts`);
  }
}

function entryHeader(entry: CpioEntry, ino: number, mtime: number): { header: Header; data: Uint8Array } {
  checkPath(entry.path);
  const name = Buffer.from(entry.path, 'utf8');
  const base = { ino, mtime, name, rdevMajor: 0, rdevMinor: 0 };
  switch (entry.kind) {
    case 'directory':
      return { header: { ...base, mode: S_IFDIR | entry.mode, nlink: 2, fileSize: 0 }, data: new Uint8Array(0) };
    case 'file':
      return { header: { ...base, mode: S_IFREG | entry.mode, nlink: 1, fileSize: entry.data.length }, data: entry.data };
    case 'symlink': {
      const data = Buffer.from(entry.target, 'utf8');
      return { header: { ...base, mode: S_IFLNK | 0o777, nlink: 1, fileSize: data.length }, data };
    }
    case 'char-device':
      return {
        header: { ...base, mode: S_IFCHR | entry.mode, nlink: 1, fileSize: 0, rdevMajor: entry.major, rdevMinor: entry.minor },
        data: new Uint8Array(0),
      };
  }
}

/**
 * The archive as a sequence of chunks (headers, data, padding), ready to be
 * streamed into a compressor. Inode numbers count up from 1 so that no two
 * entries look like hard links of each other; all files belong to root and
 * carry `mtime` (seconds since 1970), 0 by default so that equal inputs give
 * equal archives.
 */
export function* cpioChunks(entries: Iterable<CpioEntry>, options: { mtime?: number } = {}): Generator<Uint8Array> {
  const mtime = options.mtime ?? 0;
  let ino = 1;
  for (const entry of entries) {
    const { header, data } = entryHeader(entry, ino++, mtime);
    yield encodeHeader(header);
    if (data.length > 0) {
      yield data;
      const pad = padTo4(data.length);
      if (pad > 0) yield new Uint8Array(pad);
    }
  }
  yield encodeHeader({ ino: 0, mode: 0, nlink: 1, mtime: 0, fileSize: 0, rdevMajor: 0, rdevMinor: 0, name: Buffer.from(CPIO_TRAILER) });
}
