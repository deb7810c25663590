/**
 * A raw disk image: a regular file whose bytes are the disk's, sector 0 at
 * offset 0. The builder opens it on the main thread (so a bad path fails
 * the build with one line, before the guest starts); the device's I/O
 * thread uses the same fd, which threads of a process share.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, readvSync, writeSync, writevSync } from 'node:fs';
import type { DiskImage } from './disk-image.js';
import { fallocateZero } from './fallocate.js';

export const SECTOR_SIZE = 512;
/** Most buffers per preadv/pwritev (the kernel's UIO_MAXIOV). */
const IOV_MAX = 1024;
const ZEROS = new Uint8Array(1 << 20);

/** An image the builder opened: plain data, so it crosses to every thread. */
export interface OpenedImage {
  fd: number;
  /** Size in bytes, a whole number of sectors. */
  size: number;
  /** Names the file while it exists (device and inode numbers): a default disk ID. */
  fileId: string;
}

export function openRawImage(path: string, readOnly: boolean): OpenedImage {
  let fd: number;
  try {
    fd = openSync(path, readOnly ? 'r' : 'r+');
  } catch (e) {
    throw new Error(`disk image '${path}': ${openFailure(e as NodeJS.ErrnoException)}`);
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (!stat.isFile()) throw new Error(`disk image '${path}': not a regular file`);
    const size = Number(stat.size);
    if (size % SECTOR_SIZE !== 0) throw new Error(`disk image '${path}': ${size} bytes is not a whole number of ${SECTOR_SIZE}-byte sectors`);
    return { fd, size, fileId: `${stat.dev.toString(16)}-${stat.ino.toString(16)}` };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function openFailure(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'EROFS': return 'on a read-only file system (open it read-only)';
    default: return e.message;
  }
}

export class RawImage implements DiskImage {
  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  /** One preadv for the whole request (a request's segments are often 4 KiB pages: one call each would be hundreds). */
  read(into: readonly Uint8Array[], offset: number): void {
    for (let left = [...into], at = offset; left.length > 0; ) {
      const n = readvSync(this.fd, left.slice(0, IOV_MAX), at);
      if (n === 0) throw new Error(`the image ends at byte ${at}: it shrank while in use`);
      left = advance(left, n);
      at += n;
    }
  }

  write(from: readonly Uint8Array[], offset: number): void {
    for (let left = [...from], at = offset; left.length > 0; ) {
      const n = writevSync(this.fd, left.slice(0, IOV_MAX), at);
      left = advance(left, n);
      at += n;
    }
  }

  flush(): void {
    fdatasyncSync(this.fd);
  }

  zero(offset: number, length: number, deallocate: boolean): void {
    if (length === 0 || fallocateZero(this.fd, offset, length, deallocate)) return;
    for (let done = 0; done < length; ) done += writeSync(this.fd, ZEROS, 0, Math.min(length - done, ZEROS.length), offset + done);
  }
}

/** The buffers left once `n` bytes of them are done. */
function advance(buffers: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (i < buffers.length && n >= buffers[i].length) n -= buffers[i++].length;
  const left = buffers.slice(i);
  if (n > 0) left[0] = left[0].subarray(n);
  return left;
}
