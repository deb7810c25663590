/**
 * QEMU's isa-debug-exit: a write of value v ends the VM and the VMM exits
 * with status (v << 1) | 1, so a guest can report pass or fail to a script.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceContext } from '../context.js';

export const DEBUG_EXIT_PORT = 0xf4;

export class DebugExit implements BusDevice {
  constructor(private readonly ctx: DeviceContext) {}

  read(_offset: number, data: Uint8Array): void {
    data.fill(0xff);
  }

  write(_offset: number, data: Uint8Array): void {
    let value = 0;
    for (let i = data.length - 1; i >= 0; i--) value = value * 256 + data[i];
    const status = ((value << 1) | 1) & 0xff;
    this.ctx.stop({ kind: 'debug-exit', exitCode: status, message: `guest wrote ${value} to the debug-exit port` });
  }
}
