/**
 * PCI configuration mechanism #1: the guest writes a function and register
 * to CONFIG_ADDRESS (port 0xCF8, 32-bit accesses only) and then reads or
 * writes CONFIG_DATA (ports 0xCFC-0xCFF, any width inside the dword).
 *
 *   CONFIG_ADDRESS: bit 31 enable, 23-16 bus, 15-11 device, 10-8 function, 7-2 register
 *
 * Narrower accesses to 0xCF8-0xCFB are not the address register (on a PC
 * 0xCF9 is the reset control): they read all-ones and do nothing.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceState } from '../device-state.js';
import type { PciBus } from './pci-bus.js';

export const CONFIG_PORTS_BASE = 0xcf8;
export const CONFIG_PORTS_SIZE = 8;
const DATA = 4;
const ENABLE = 0x8000_0000;
/** Bits of CONFIG_ADDRESS that hold something; the two low bits read 0. */
const ADDRESS_BITS = 0x80ff_fffc;

export class PciConfigPorts implements BusDevice {
  /** CONFIG_ADDRESS, 4 bytes of shared state. */
  static readonly stateSize = 4;

  constructor(
    private readonly state: DeviceState,
    private readonly bus: PciBus,
  ) {}

  private get address(): number {
    return this.state.view.getUint32(0, true);
  }

  read(offset: number, data: Uint8Array): void {
    if (offset === 0 && data.length === 4) {
      new DataView(data.buffer, data.byteOffset, 4).setUint32(0, this.address, true);
    } else if (offset >= DATA && this.address & ENABLE) {
      this.bus.read(decode(this.address, offset - DATA), data);
    } else {
      data.fill(0xff);
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === 0 && data.length === 4) {
      this.state.view.setUint32(0, (new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) & ADDRESS_BITS) >>> 0, true);
    } else if (offset >= DATA && this.address & ENABLE) {
      this.bus.write(decode(this.address, offset - DATA), data);
    }
  }
}

function decode(address: number, byte: number) {
  return { bus: (address >>> 16) & 0xff, slot: (address >>> 11) & 0x1f, fn: (address >>> 8) & 0x7, offset: (address & 0xfc) + byte };
}
