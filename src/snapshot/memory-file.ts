/**
 * A snapshot's memory file: RAM's bytes, range after range, as many bytes
 * as the machine has RAM. A full one holds every page. A diff one holds
 * only the pages written since the previous snapshot, at their offsets,
 * the rest left as holes (a sparse file, as Firecracker writes it);
 * merged onto the previous snapshot's memory file, it makes the memory
 * file of the diff's state. Each is written whole or not at all.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { seekData, seekHole } from '../kvm/libc.js';
import type { RamRegion } from '../memory/guest-memory.js';
import { PAGE_SIZE } from '../memory/dirty-pages.js';
import { SnapshotError } from './snapshot-file.js';

/** Writes `path` through a temporary file renamed over it once complete. */
function writeWhole(path: string, write: (fd: number) => void): void {
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, 'w');
  try {
    write(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

export function writeFullMemory(path: string, regions: readonly RamRegion[]): void {
  writeWhole(path, (fd) => {
    let position = 0;
    for (const { bytes } of regions) {
      writeAll(fd, bytes, position);
      position += bytes.length;
    }
  });
}

/** The pages whose bit is set in `dirty` (bit i of byte j: page 8j + i of the file), each run written at its offset. Returns the bytes written. */
export function writeDiffMemory(path: string, regions: readonly RamRegion[], dirty: Uint8Array): number {
  let written = 0;
  writeWhole(path, (fd) => {
    let fileOffset = 0;
    for (const { bytes } of regions) {
      const pages = bytes.length / PAGE_SIZE;
      const first = fileOffset / PAGE_SIZE;
      for (let page = 0; page < pages; ) {
        if (!isSet(dirty, first + page)) {
          page++;
          continue;
        }
        let end = page;
        while (end < pages && isSet(dirty, first + end)) end++;
        writeAll(fd, bytes.subarray(page * PAGE_SIZE, end * PAGE_SIZE), fileOffset + page * PAGE_SIZE);
        written += (end - page) * PAGE_SIZE;
        page = end;
      }
      fileOffset += bytes.length;
    }
    ftruncateSync(fd, fileOffset);
  });
  return written;
}

const isSet = (bitmap: Uint8Array, bit: number) => (bitmap[bit >> 3] & (1 << (bit & 7))) !== 0;

/** Copies the data (not the holes) of diff memory file `diffPath` onto `basePath`, which it updates in place. Returns the bytes copied. */
export function mergeDiffMemory(diffPath: string, basePath: string): number {
  const open = (path: string, flags: string) => {
    try {
      return openSync(path, flags);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SnapshotError(`memory file '${path}': ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
    }
  };
  const diff = open(diffPath, 'r');
  try {
    const base = open(basePath, 'r+');
    try {
      const size = fstatSync(diff).size;
      const baseSize = fstatSync(base).size;
      if (size !== baseSize) throw new SnapshotError(`'${diffPath}' (${size} bytes) and '${basePath}' (${baseSize} bytes) are not memory files of one machine`);
      const chunk = new Uint8Array(1 << 20);
      let copied = 0;
      for (let at = seekData(diff, 0); at >= 0 && at < size; at = seekData(diff, at)) {
        const end = Math.min(seekHole(diff, at), size);
        for (; at < end; ) {
          const n = readSync(diff, chunk, 0, Math.min(chunk.length, end - at), at);
          if (n === 0) break;
          writeAll(base, chunk.subarray(0, n), at);
          at += n;
          copied += n;
        }
      }
      return copied;
    } finally {
      closeSync(base);
    }
  } finally {
    closeSync(diff);
  }
}
