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

  private count(): void {
    const v = this.state.view;
    v.setBigUint64(COUNTER, v.getBigUint64(COUNTER, true) + 1n, true);
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
