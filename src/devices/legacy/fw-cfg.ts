/**
 * QEMU's firmware configuration device (fw_cfg) at its x86 ports, as QEMU
 * docs/specs/fw_cfg describes it, for kernels and test harnesses written
 * against `qemu -kernel`:
 *
 *   0x510  selector, 16-bit write: the item to read (offset back to 0)
 *   0x511  data, read: the next bytes of the item, zeros past its end
 *   0x514  DMA address, 64-bit big-endian: writing its low half (0x518) runs
 *          the FWCfgDmaAccess at that guest address; reading gives "QEMU CFG"
 *
 * The items are read-only (content in fw-cfg-content.ts); a DMA write sets
 * the error bit. Every guest address goes through GuestMemory, so a DMA
 * request outside RAM fails with the error bit and touches nothing else.
 * Selector, offset and the DMA high half are shared by the vCPU threads.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceContext } from '../context.js';
import type { DeviceState } from '../device-state.js';
import type { FwCfgContent } from './fw-cfg-content.js';

export const FW_CFG_BASE = 0x510;
export const FW_CFG_SIZE = 12;
const Port = { SELECTOR: 0, DATA: 1, DMA_HIGH: 4, DMA_LOW: 8 } as const;
/** "QEMU CFG", what the DMA address register reads. */
const DMA_SIGNATURE = 0x51454d5520434647n;
const Dma = { ERROR: 1, READ: 2, SKIP: 4, SELECT: 8, WRITE: 16 } as const;
const DMA_ACCESS_SIZE = 16;

const At = { SELECTOR: 0, OFFSET: 4, DMA_HIGH: 8 } as const;

export class FwCfg implements BusDevice {
  static readonly stateSize = 16;
  private readonly items = new Map<number, Uint8Array>();

  constructor(
    private readonly ctx: DeviceContext,
    private readonly state: DeviceState,
    content: FwCfgContent,
  ) {
    for (const { key, offset, length } of content.items) this.items.set(key, new Uint8Array(content.bytes, offset, length));
  }

  private get selector(): number {
    return this.state.view.getUint16(At.SELECTOR, true);
  }
  private get offset(): number {
    return this.state.view.getUint32(At.OFFSET, true);
  }
  private set offset(n: number) {
    this.state.view.setUint32(At.OFFSET, Math.min(n, 0xffff_ffff), true);
  }

  private select(key: number): void {
    this.state.view.setUint16(At.SELECTOR, key, true);
    this.offset = 0;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === Port.DATA) {
      const item = this.items.get(this.selector) ?? new Uint8Array(0);
      const at = this.offset;
      data.set(item.subarray(at, at + data.length));
      this.offset = at + data.length;
    } else if (offset >= Port.DMA_HIGH && offset + data.length <= FW_CFG_SIZE) {
      const signature = Buffer.alloc(8);
      signature.writeBigUInt64BE(DMA_SIGNATURE);
      data.set(signature.subarray(offset - Port.DMA_HIGH, offset - Port.DMA_HIGH + data.length));
    }
  }

  write(offset: number, data: Uint8Array): void {
    const be = Buffer.from(data.buffer, data.byteOffset, data.length);
    if (offset === Port.SELECTOR && data.length === 2) {
      this.select(be.readUInt16LE(0));
    } else if (offset === Port.DMA_HIGH && data.length === 4) {
      this.state.view.setUint32(At.DMA_HIGH, be.readUInt32BE(0), true);
    } else if (offset === Port.DMA_LOW && data.length === 4) {
      const high = this.state.view.getUint32(At.DMA_HIGH, true);
      this.state.view.setUint32(At.DMA_HIGH, 0, true);
      this.dma(high * 2 ** 32 + be.readUInt32BE(0));
    } else if (offset === Port.DMA_HIGH && data.length === 8) {
      this.dma(Number(be.readBigUInt64BE(0)));
    }
    // Writes to the data port are ignored, as in QEMU since 2.4.
  }

  /** Runs the FWCfgDmaAccess at `address` and writes its control word back: 0, or the error bit. */
  private dma(address: number): void {
    const memory = this.ctx.memory;
    if (memory === undefined || !memory.contains(address, DMA_ACCESS_SIZE)) return;
    const access = Buffer.from(memory.read(address, DMA_ACCESS_SIZE));
    const control = access.readUInt32BE(0);
    const length = access.readUInt32BE(4);
    const target = Number(access.readBigUInt64BE(8));
    let status = 0;
    if (control & Dma.SELECT) this.select(control >>> 16);
    if (control & Dma.READ) {
      const item = this.items.get(this.selector) ?? new Uint8Array(0);
      const from = item.subarray(Math.min(this.offset, item.length), this.offset + length);
      if (memory.contains(target, length)) {
        memory.write(target, from);
        memory.fill(target + from.length, length - from.length);
      } else {
        status = Dma.ERROR;
      }
      this.offset += length;
    } else if (control & Dma.WRITE) {
      status = Dma.ERROR; // every item is read-only
    } else if (control & Dma.SKIP) {
      this.offset += length;
    }
    const done = Buffer.alloc(4);
    done.writeUInt32BE(status);
    memory.write(address, done);
  }
}
