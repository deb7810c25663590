/**
 * An MMIO test device, for guests that exercise the MMIO exit path: a page
 * of registers that read back what was written, plus an access counter.
 *
 *   0x000..0xff7  scratch: reads return the last value written
 *   0xff8         (read) number of accesses so far, 64-bit
 */
import type { BusDevice } from '../bus.js';
import type { DeviceState } from '../device-state.js';

export const TEST_DEVICE_SIZE = 0x1000;
const COUNTER = 0xff8;

export class TestDevice implements BusDevice {
  static readonly stateSize = TEST_DEVICE_SIZE;

  constructor(private readonly state: DeviceState) {}

  /** The 64-bit counter as two 32-bit halves (no BigInt on the MMIO path). */
  private count(): void {
    const v = this.state.view;
    const low = (v.getUint32(COUNTER, true) + 1) >>> 0;
    v.setUint32(COUNTER, low, true);
    if (low === 0) v.setUint32(COUNTER + 4, (v.getUint32(COUNTER + 4, true) + 1) >>> 0, true);
  }

  read(offset: number, data: Uint8Array): void {
    this.count();
    data.set(this.state.bytes.subarray(offset, offset + data.length));
  }

  write(offset: number, data: Uint8Array): void {
    this.count();
    if (offset + data.length <= COUNTER) this.state.bytes.set(data, offset);
  }
}
