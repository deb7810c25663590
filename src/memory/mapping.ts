/**
 * Guest RAM as host memory, mapped once per VM by the main thread: shared
 * from a new memfd for a machine that boots, or private from a snapshot's
 * memory file for one that is restored (pages are read from the file when
 * the guest first touches them and copied when it first writes them, so
 * restoring does not grow with RAM and the file is never written).
 *
 * Every other thread (vCPU workers, I/O threads, vhost) sees that one
 * mapping through its addresses (RamAddresses); a second mapping of a
 * private file would be a second copy. Each RAM range is its own mapping:
 * a JS view of memory must stay under 4 GiB.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { close, memfdCreate, mmapPrivate, mmapShared, munmap, viewAt, type Mapping } from '../kvm/libc.js';
import { DirtyPages } from './dirty-pages.js';
import { GuestMemory } from './guest-memory.js';
import type { RamRange } from './layout.js';

/** What another thread needs to see guest RAM: the ranges, where the main thread mapped each, and the VMM's dirty pages when tracked. */
export interface RamAddresses {
  ram: RamRange[];
  hostAddresses: bigint[];
  dirtyPages?: SharedArrayBuffer;
}

/** Guest RAM seen from a thread, with the host address of each range (for KVM and vhost). */
export class HostGuestMemory extends GuestMemory {
  /** The pages this VMM wrote, when they are tracked (a machine with trackDirtyPages). */
  readonly dirtyPages?: DirtyPages;

  constructor(readonly addresses: RamAddresses) {
    const dirty = addresses.dirtyPages && new DirtyPages(addresses.dirtyPages, addresses.ram);
    super(
      addresses.ram.map((r, i) => ({ gpa: r.gpa, bytes: new Uint8Array(viewAt(addresses.hostAddresses[i], r.size)) })),
      dirty && ((region, gpa, length) => dirty.mark(region, gpa, length)),
    );
    this.dirtyPages = dirty;
  }

  get ram(): RamRange[] {
    return this.addresses.ram;
  }

  /** Host virtual address of a RAM range, for KVM_SET_USER_MEMORY_REGION and vhost's memory table. */
  hostAddress(range: RamRange): bigint {
    return this.addresses.hostAddresses[this.ram.indexOf(range)];
  }
}

/** The main thread's mapping: it owns the pages and unmaps them once every other thread is done. */
export class MappedGuestMemory extends HostGuestMemory {
  constructor(private readonly mappings: Mapping[], ram: RamRange[], trackDirtyPages: boolean) {
    const bytes = ram.reduce((n, r) => n + r.size, 0);
    super({ ram, hostAddresses: mappings.map((m) => m.address), dirtyPages: trackDirtyPages ? DirtyPages.allocate(bytes) : undefined });
  }

  unmap(): void {
    this.mappings.forEach(munmap);
  }
}

/** Fresh, zeroed RAM: a memfd, mapped shared (the fd is closed at once; the mapping keeps the pages). */
export function createGuestRam(ram: RamRange[], trackDirtyPages = false): MappedGuestMemory {
  const fd = memfdCreate('tsvmm-guest-ram', ram.reduce((n, r) => n + r.size, 0));
  try {
    return mapRanges(ram, trackDirtyPages, (r) => mmapShared(fd, r.size, r.fileOffset));
  } finally {
    close(fd);
  }
}

export class MemoryFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemoryFileError';
  }
}

/** RAM read from `path` as it is touched (copy-on-write); the file must be exactly RAM's size. */
export function mapMemoryFile(path: string, ram: RamRange[], trackDirtyPages = false): MappedGuestMemory {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MemoryFileError(`'${path}': ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
  try {
    const size = ram.reduce((n, r) => n + r.size, 0);
    const actual = fstatSync(fd).size;
    if (actual !== size) throw new MemoryFileError(`'${path}' is ${actual < size ? 'shorter' : 'longer'} than the machine's RAM (${actual} bytes, not ${size})`);
    return mapRanges(ram, trackDirtyPages, (r) => mmapPrivate(fd, r.size, r.fileOffset));
  } finally {
    closeSync(fd);
  }
}

function mapRanges(ram: RamRange[], trackDirtyPages: boolean, map: (range: RamRange) => Mapping): MappedGuestMemory {
  const mappings: Mapping[] = [];
  try {
    for (const range of ram) mappings.push(map(range));
  } catch (e) {
    mappings.forEach(munmap);
    throw e;
  }
  return new MappedGuestMemory(mappings, ram, trackDirtyPages);
}
