/**
 * Bus 0 as the config mechanisms see it: a function per slot (function 0
 * only). Every other bus, slot and function is absent and reads all-ones.
 * Each access holds the function's state lock.
 */
import { NO_DEVICE } from './config-space.js';
import type { PciFunction } from './pci-device.js';

/** Where a config access goes. */
export interface ConfigAddress {
  bus: number;
  slot: number;
  fn: number;
  /** Offset in the function's config space. */
  offset: number;
}

export const SLOTS = 32;

export class PciBus {
  private readonly slots: (PciFunction | undefined)[] = new Array(SLOTS);

  constructor(functions: readonly { slot: number; fn: PciFunction }[]) {
    for (const { slot, fn } of functions) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS) throw new Error(`PCI slot ${slot} does not exist on a bus (0-31)`);
      if (this.slots[slot]) throw new Error(`two PCI functions in slot ${slot}`);
      this.slots[slot] = fn;
    }
  }

  private find(a: ConfigAddress): PciFunction | undefined {
    return a.bus === 0 && a.fn === 0 ? this.slots[a.slot] : undefined;
  }

  read(a: ConfigAddress, data: Uint8Array): void {
    const fn = this.find(a);
    if (fn === undefined) {
      data.fill(NO_DEVICE & 0xff);
      return;
    }
    fn.state.locked(() => fn.configRead(a.offset, data));
  }

  write(a: ConfigAddress, data: Uint8Array): void {
    const fn = this.find(a);
    if (fn) fn.state.locked(() => fn.configWrite(a.offset, data));
  }
}
