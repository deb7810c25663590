/**
 * An MMIO test device, for guests that exercise the MMIO exit path: a page
 * of registers that read back what was written, plus an access counter.
 *
 *   0x000..0xff7  scratch: reads return the last value written
 *   0xff8         (read) number of accesses so far, 64-bit
 */
import type { BusDevice } from '../bus.js';

export const TEST_DEVICE_SIZE = 0x1000;
const COUNTER = 0xff8;

export class TestDevice implements BusDevice {
  private readonly scratch = new Uint8Array(TEST_DEVICE_SIZE);
  private readonly view = new DataView(this.scratch.buffer);
  private accesses = 0n;

  read(offset: number, data: Uint8Array): void {
    this.accesses++;
    this.view.setBigUint64(COUNTER, this.accesses, true);
    data.set(this.scratch.subarray(offset, offset + data.length));
  }

  write(offset: number, data: Uint8Array): void {
    this.accesses++;
    if (offset + data.length <= COUNTER) this.scratch.set(data, offset);
  }
}
