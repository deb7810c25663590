/**
 * COM1 as a minimal 16550A: what a bare-metal guest needs to print. Writes
 * to the transmit register go to the console at once, so the line status
 * always reports the transmitter empty; the other registers keep what the
 * guest programs so drivers that read back their settings are satisfied.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceContext } from '../context.js';
import type { DeviceState } from '../device-state.js';

export const COM1_BASE = 0x3f8;
export const SERIAL_PORT_SIZE = 8;

const THR = 0; // transmit holding (DLAB=0)
const IIR = 2;
const LCR = 3;
const LSR = 5;
const MSR = 6;
const LCR_DLAB = 0x80;
const LSR_THR_EMPTY = 0x20;
const LSR_TX_IDLE = 0x40;
const IIR_NO_INTERRUPT = 0x01;
const MSR_CTS_DSR_DCD = 0xb0;

export class SerialPort implements BusDevice {
  static readonly stateSize = SERIAL_PORT_SIZE + 2;
  private readonly regs: Uint8Array;
  private readonly divisor: Uint8Array;

  constructor(
    private readonly ctx: DeviceContext,
    state: DeviceState,
  ) {
    this.regs = state.bytes.subarray(0, SERIAL_PORT_SIZE);
    this.divisor = state.bytes.subarray(SERIAL_PORT_SIZE, SERIAL_PORT_SIZE + 2);
  }

  private get dlab(): boolean {
    return (this.regs[LCR] & LCR_DLAB) !== 0;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (this.dlab && offset < 2) {
      data[0] = this.divisor[offset];
      return;
    }
    switch (offset) {
      case THR: data[0] = 0; break; // nothing ever received
      case IIR: data[0] = IIR_NO_INTERRUPT; break;
      case LSR: data[0] = LSR_THR_EMPTY | LSR_TX_IDLE; break;
      case MSR: data[0] = MSR_CTS_DSR_DCD; break;
      default: data[0] = this.regs[offset];
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (this.dlab && offset < 2) {
      this.divisor[offset] = data[0];
    } else if (offset === THR) {
      this.ctx.console(data.subarray(0, 1));
    } else {
      this.regs[offset] = data[0];
    }
  }
}
