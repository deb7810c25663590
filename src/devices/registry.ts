/**
 * The devices a machine can have, described by plain data (a DeviceSpec)
 * so the same list can be sent to every vCPU worker and printed in the
 * memory map. `attachDevice` builds one and puts it on its bus.
 */
import { Bus } from './bus.js';
import type { DeviceContext } from './context.js';
import { DebugExit, DEBUG_EXIT_PORT } from './debug/debug-exit.js';
import { TestDevice, TEST_DEVICE_SIZE } from './debug/test-device.js';
import { COM1_BASE, SERIAL_PORT_SIZE, SerialPort } from './legacy/serial-port.js';

export type DeviceSpec =
  | { kind: 'serial'; base?: number }
  | { kind: 'debug-exit'; port?: number }
  | { kind: 'test-device'; base: number };

export interface DevicePlacement {
  name: string;
  bus: 'pio' | 'mmio';
  base: number;
  length: number;
}

export function placement(spec: DeviceSpec): DevicePlacement {
  switch (spec.kind) {
    case 'serial': return { name: 'serial (COM1)', bus: 'pio', base: spec.base ?? COM1_BASE, length: SERIAL_PORT_SIZE };
    case 'debug-exit': return { name: 'debug-exit', bus: 'pio', base: spec.port ?? DEBUG_EXIT_PORT, length: 1 };
    case 'test-device': return { name: 'test-device', bus: 'mmio', base: spec.base, length: TEST_DEVICE_SIZE };
  }
}

function create(spec: DeviceSpec, ctx: DeviceContext) {
  switch (spec.kind) {
    case 'serial': return new SerialPort(ctx);
    case 'debug-exit': return new DebugExit(ctx);
    case 'test-device': return new TestDevice();
  }
}

export function attachDevice(spec: DeviceSpec, buses: { pio: Bus; mmio: Bus }, ctx: DeviceContext): void {
  const p = placement(spec);
  buses[p.bus].insert(p.base, p.length, p.name, create(spec, ctx));
}
