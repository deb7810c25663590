/**
 * PCI Express enhanced configuration access (ECAM): each function's 4 KiB
 * of config space mapped in memory, at base + (bus << 20 | device << 15 |
 * function << 12). This window covers bus 0 only; the ACPI MCFG table
 * tells the guest where it is.
 */
import type { BusDevice } from '../bus.js';
import type { PciBus } from './pci-bus.js';

/** One bus: 32 devices of 8 functions of 4 KiB. */
export const ECAM_BUS_SIZE = 1 << 20;

export class Ecam implements BusDevice {
  constructor(private readonly bus: PciBus) {}

  read(offset: number, data: Uint8Array): void {
    this.bus.read(decode(offset), data);
  }

  write(offset: number, data: Uint8Array): void {
    this.bus.write(decode(offset), data);
  }
}

function decode(offset: number) {
  return { bus: offset >>> 20, slot: (offset >>> 15) & 0x1f, fn: (offset >>> 12) & 0x7, offset: offset & 0xfff };
}
