/**
 * The pages of guest RAM the VMM itself wrote since they were last taken:
 * a bitmap in shared memory, one bit per 4 KiB page of the memory file,
 * that every thread's GuestMemory marks (device emulation on vCPU threads,
 * virtio I/O threads, the main thread). KVM's dirty log covers what the
 * guest writes; a diff snapshot takes the union of both.
 *
 * A view handed out may be read or written, so every page it covers is
 * marked: a page too many in a diff, never one too few.
 */
import type { RamRange } from './layout.js';

export const PAGE_SIZE = 4096;

export class DirtyPages {
  private readonly words: Int32Array;

  static allocate(ramBytes: number): SharedArrayBuffer {
    return new SharedArrayBuffer(Math.ceil(ramBytes / PAGE_SIZE / 32) * 4);
  }

  constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly ram: readonly RamRange[],
  ) {
    this.words = new Int32Array(buffer);
  }

  /** Marks the pages of [gpa, gpa+length), which lies in RAM range `range`. */
  mark(range: number, gpa: number, length: number): void {
    const r = this.ram[range];
    const first = (r.fileOffset + gpa - r.gpa) / PAGE_SIZE;
    const last = (r.fileOffset + gpa - r.gpa + Math.max(length, 1) - 1) / PAGE_SIZE;
    for (let page = Math.floor(first); page <= last; page++) Atomics.or(this.words, page >> 5, 1 << (page & 31));
  }

  /** The marked pages, as one bit per page of the memory file (bit i of byte j is page 8j + i), cleared. */
  take(): Uint8Array {
    const taken = new Uint8Array(this.words.length * 4);
    const view = new Int32Array(taken.buffer);
    for (let i = 0; i < this.words.length; i++) view[i] = Atomics.exchange(this.words, i, 0);
    return taken;
  }
}
