/**
 * An address bus: maps ranges of ports or guest-physical addresses to the
 * devices behind them. One bus for port I/O, one for MMIO.
 */

/** A device on a bus. `offset` is relative to the device's base; `data` is the access (1 to 8 bytes, little-endian). */
export interface BusDevice {
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

export interface BusEntry {
  readonly base: number;
  readonly length: number;
  readonly name: string;
  readonly device: BusDevice;
}

export class Bus {
  private entries: BusEntry[] = [];

  constructor(readonly kind: 'pio' | 'mmio') {}

  insert(base: number, length: number, name: string, device: BusDevice): void {
    if (length <= 0) throw new Error(`${name}: empty ${this.kind} range`);
    const clash = this.entries.find((e) => base < e.base + e.length && e.base < base + length);
    if (clash) {
      throw new Error(`${name} at ${hex(base)}+${length} overlaps ${clash.name} at ${hex(clash.base)}+${clash.length} on the ${this.kind} bus`);
    }
    this.entries.push({ base, length, name, device });
    this.entries.sort((a, b) => a.base - b.base);
  }

  /** The device whose range holds [address, address+size), or undefined. */
  find(address: number, size = 1): BusEntry | undefined {
    for (const e of this.entries) {
      if (address >= e.base && address + size <= e.base + e.length) return e;
    }
    return undefined;
  }

  get list(): readonly BusEntry[] {
    return this.entries;
  }
}

export function hex(n: number | bigint, width = 0): string {
  return '0x' + n.toString(16).padStart(width, '0');
}
