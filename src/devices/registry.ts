/**
 * The devices a machine can have, described by plain data (a DeviceSpec)
 * so the same list can be sent to every vCPU worker and printed in the
 * memory map. Each device's registers live in shared state allocated once
 * per machine; every thread builds its own device object over that state.
 */
import { Bus, type BusDevice } from './bus.js';
import type { DeviceContext } from './context.js';
import { DeviceState } from './device-state.js';
import { DebugExit, DEBUG_EXIT_PORT } from './debug/debug-exit.js';
import { TestDevice, TEST_DEVICE_SIZE } from './debug/test-device.js';
import { COM1_BASE, SERIAL_PORT_SIZE, SerialPort } from './legacy/serial-port.js';

export type DeviceSpec =
  | { kind: 'serial'; base?: number }
  | { kind: 'debug-exit'; port?: number }
  | { kind: 'test-device'; base: number };

/** A device of one machine: what it is, and its shared state. */
export interface MachineDevice {
  spec: DeviceSpec;
  state: SharedArrayBuffer;
}

export interface DevicePlacement {
  name: string;
  bus: 'pio' | 'mmio';
  base: number;
  length: number;
}

interface DeviceKind<S extends DeviceSpec> {
  placement(spec: S): DevicePlacement;
  stateSize: number;
  create(spec: S, ctx: DeviceContext, state: DeviceState): BusDevice;
}

type Kinds = { [K in DeviceSpec['kind']]: DeviceKind<Extract<DeviceSpec, { kind: K }>> };

const kinds: Kinds = {
  serial: {
    placement: (s) => ({ name: 'serial (COM1)', bus: 'pio', base: s.base ?? COM1_BASE, length: SERIAL_PORT_SIZE }),
    stateSize: SerialPort.stateSize,
    create: (_s, ctx, state) => new SerialPort(ctx, state),
  },
  'debug-exit': {
    placement: (s) => ({ name: 'debug-exit', bus: 'pio', base: s.port ?? DEBUG_EXIT_PORT, length: 1 }),
    stateSize: 0,
    create: (_s, ctx) => new DebugExit(ctx),
  },
  'test-device': {
    placement: (s) => ({ name: 'test-device', bus: 'mmio', base: s.base, length: TEST_DEVICE_SIZE }),
    stateSize: TestDevice.stateSize,
    create: (_s, _ctx, state) => new TestDevice(state),
  },
};

function kindOf<S extends DeviceSpec>(spec: S): DeviceKind<S> {
  return kinds[spec.kind] as unknown as DeviceKind<S>;
}

export function placement(spec: DeviceSpec): DevicePlacement {
  return kindOf(spec).placement(spec);
}

/** A device for a new machine, with its shared state; made once, on the main thread. */
export function machineDevice(spec: DeviceSpec): MachineDevice {
  return { spec, state: DeviceState.allocate(kindOf(spec).stateSize) };
}

/** A device that runs each access under its state's lock, so vCPU threads take turns. */
class LockedDevice implements BusDevice {
  constructor(
    private readonly device: BusDevice,
    private readonly state: DeviceState,
  ) {}
  read(offset: number, data: Uint8Array): void {
    this.state.locked(() => this.device.read(offset, data));
  }
  write(offset: number, data: Uint8Array): void {
    this.state.locked(() => this.device.write(offset, data));
  }
}

export function attachDevice({ spec, state: buffer }: MachineDevice, buses: { pio: Bus; mmio: Bus }, ctx: DeviceContext): void {
  const p = placement(spec);
  const state = new DeviceState(buffer);
  buses[p.bus].insert(p.base, p.length, p.name, new LockedDevice(kindOf(spec).create(spec, ctx, state), state));
}
