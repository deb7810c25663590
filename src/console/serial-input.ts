/**
 * Host input for a machine's UART, from the main thread: bytes go into the
 * line ring in the UART's shared state, under its lock, and its interrupt
 * line is driven as the guest would see bytes arrive. What the ring cannot
 * take yet waits here and is offered again every few milliseconds as the
 * guest reads, so nothing typed or pasted is lost.
 */
import type { DeviceContext } from '../devices/context.js';
import { DeviceState } from '../devices/device-state.js';
import type { DeviceSpec, MachineDevice } from '../devices/registry.js';
import { SerialPort } from '../devices/legacy/serial-port.js';
import type { Machine } from '../vmm/machine.js';

const RETRY_MS = 5;
const NOTHING = new Uint8Array(0);

export type IrqLine = (line: number, level: boolean) => void;
export type SerialMachineDevice = MachineDevice & { spec: Extract<DeviceSpec, { kind: 'serial' }> };

export class SerialInput {
  private readonly state: DeviceState;
  private readonly port: SerialPort;
  private backlog = NOTHING;
  private retry?: NodeJS.Timeout;

  /** `onDrained` runs when input that had to wait has all gone to the guest (to resume a source paused on `pending`). */
  constructor(
    device: SerialMachineDevice,
    irq: IrqLine,
    private readonly onDrained: () => void = () => {},
  ) {
    this.state = new DeviceState(device.state);
    // The main thread's view of the UART: receiving only ever drives the interrupt line.
    const hostSide: DeviceContext = { vcpuId: -1, console: () => {}, irq, stop: () => {} };
    this.port = new SerialPort(hostSide, this.state, device.spec.irq);
  }

  /** Bytes still waiting for room in the UART. */
  get pending(): number {
    return this.backlog.length;
  }

  /** Queues bytes for the guest; what the UART cannot take yet stays in `pending`. */
  send(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const joined = new Uint8Array(this.backlog.length + bytes.length);
    joined.set(this.backlog);
    joined.set(bytes, this.backlog.length);
    this.backlog = joined;
    this.offer();
  }

  /** Drops what is waiting and stops retrying. */
  close(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    this.backlog = NOTHING;
  }

  private offer(): void {
    const taken = this.state.locked(() => this.port.receive(this.backlog));
    this.backlog = this.backlog.subarray(taken);
    if (this.backlog.length > 0) {
      this.retry ??= setTimeout(() => this.retryOffer(), RETRY_MS).unref();
    }
  }

  private retryOffer(): void {
    this.retry = undefined;
    this.offer();
    if (this.backlog.length === 0) this.onDrained();
  }
}

/** Input for the machine's first serial port, or undefined when it has none (or is not built). */
export function serialInputOf(machine: Machine, onDrained?: () => void): SerialInput | undefined {
  const vm = machine.vm;
  const device = machine.devices.find((d): d is SerialMachineDevice => d.spec.kind === 'serial');
  if (vm === undefined || device === undefined) return undefined;
  return new SerialInput(device, (line, level) => vm.irqLine(line, level), onDrained);
}
