/**
 * Guest-physical memory as seen from the VMM: a set of RAM regions, each a
 * typed-array view over host pages that KVM maps into the guest.
 *
 * Every access goes through `view()`, which checks that the whole range lies
 * inside one region. An address or length handed over by the guest can never
 * make the VMM touch host memory outside guest RAM.
 */

export class GuestMemoryError extends Error {
  constructor(
    readonly gpa: number,
    readonly length: number,
    reason = 'outside guest RAM',
  ) {
    super(`guest-physical range 0x${gpa.toString(16)}+${length} is ${reason}`);
    this.name = 'GuestMemoryError';
  }
}

export interface RamRegion {
  /** First guest-physical address of the region. */
  readonly gpa: number;
  /** The region's bytes; `bytes.length` is its size. */
  readonly bytes: Uint8Array;
}

export class GuestMemory {
  readonly regions: readonly RamRegion[];
  private readonly views: DataView[];

  constructor(
    regions: RamRegion[],
    /** Told of every range handed out for writing (or for either, by view()), by region index: dirty-page tracking. */
    private readonly written?: (region: number, gpa: number, length: number) => void,
  ) {
    this.regions = [...regions].sort((a, b) => a.gpa - b.gpa);
    for (let i = 1; i < this.regions.length; i++) {
      const prev = this.regions[i - 1];
      if (prev.gpa + prev.bytes.length > this.regions[i].gpa) {
        throw new Error(`RAM regions overlap at 0x${this.regions[i].gpa.toString(16)}`);
      }
    }
    this.views = this.regions.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
  }

  /** Total RAM in bytes. */
  get size(): number {
    return this.regions.reduce((n, r) => n + r.bytes.length, 0);
  }

  /** Index of the region holding [gpa, gpa+length), or -1. */
  private find(gpa: number, length: number): number {
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(length) || gpa < 0 || length < 0) return -1;
    for (let i = 0; i < this.regions.length; i++) {
      const r = this.regions[i];
      if (gpa >= r.gpa && gpa + length <= r.gpa + r.bytes.length) return i;
    }
    return -1;
  }

  /** True when [gpa, gpa+length) is RAM, inside a single region. */
  contains(gpa: number, length: number): boolean {
    return this.find(gpa, length) >= 0;
  }

  /** A live view of [gpa, gpa+length): writes to it reach the guest. */
  view(gpa: number, length: number): Uint8Array {
    const i = this.find(gpa, length);
    if (i < 0) throw new GuestMemoryError(gpa, length);
    this.written?.(i, gpa, length);
    const r = this.regions[i];
    return r.bytes.subarray(gpa - r.gpa, gpa - r.gpa + length);
  }

  read(gpa: number, length: number): Uint8Array {
    return this.view(gpa, length).slice();
  }

  write(gpa: number, data: Uint8Array): void {
    this.view(gpa, data.length).set(data);
  }

  fill(gpa: number, length: number, value = 0): void {
    this.view(gpa, length).fill(value);
  }

  private dataView(gpa: number, length: number, writing = false): [DataView, number] {
    const i = this.find(gpa, length);
    if (i < 0) throw new GuestMemoryError(gpa, length);
    if (writing) this.written?.(i, gpa, length);
    return [this.views[i], gpa - this.regions[i].gpa];
  }

  readU8(gpa: number): number {
    const [v, o] = this.dataView(gpa, 1);
    return v.getUint8(o);
  }
  readU16(gpa: number): number {
    const [v, o] = this.dataView(gpa, 2);
    return v.getUint16(o, true);
  }
  readU32(gpa: number): number {
    const [v, o] = this.dataView(gpa, 4);
    return v.getUint32(o, true);
  }
  readU64(gpa: number): bigint {
    const [v, o] = this.dataView(gpa, 8);
    return v.getBigUint64(o, true);
  }
  writeU8(gpa: number, value: number): void {
    const [v, o] = this.dataView(gpa, 1, true);
    v.setUint8(o, value);
  }
  writeU16(gpa: number, value: number): void {
    const [v, o] = this.dataView(gpa, 2, true);
    v.setUint16(o, value, true);
  }
  writeU32(gpa: number, value: number): void {
    const [v, o] = this.dataView(gpa, 4, true);
    v.setUint32(o, value >>> 0, true);
  }
  writeU64(gpa: number, value: bigint): void {
    const [v, o] = this.dataView(gpa, 8, true);
    v.setBigUint64(o, BigInt.asUintN(64, value), true);
  }

  /** A NUL-terminated string at gpa, at most maxLength bytes long. */
  readCString(gpa: number, maxLength = 4096): string {
    const out: number[] = [];
    for (let i = 0; i < maxLength; i++) {
      const b = this.readU8(gpa + i);
      if (b === 0) return Buffer.from(out).toString('latin1');
      out.push(b);
    }
    throw new GuestMemoryError(gpa, maxLength, 'not a terminated string');
  }

  writeCString(gpa: number, text: string): number {
    const bytes = Buffer.from(text + '\0', 'latin1');
    this.write(gpa, bytes);
    return bytes.length;
  }
}
