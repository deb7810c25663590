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
import { PC_TESTDEV_REGIONS, PcTestdev } from './debug/pc-testdev.js';
import { PCI_TESTDEV_BAR0_SIZE, PCI_TESTDEV_BAR1_SIZE, PciTestdev, type PciTestdevWiring } from './debug/pci-testdev.js';
import { TestDevice, TEST_DEVICE_SIZE } from './debug/test-device.js';
import { ACPI_PM_BASE, ACPI_PM_SIZE, AcpiPm } from './legacy/acpi-pm.js';
import { FW_CFG_BASE, FW_CFG_SIZE, FwCfg } from './legacy/fw-cfg.js';
import type { FwCfgContent, FwCfgFile } from './legacy/fw-cfg-content.js';
import { CmosRtc, RTC_BASE, RTC_SIZE } from './legacy/cmos-rtc.js';
import { I8042, I8042_BASE, I8042_SIZE } from './legacy/i8042.js';
import { COM1_BASE, SERIAL_PORT_SIZE, SerialPort } from './legacy/serial-port.js';
import { createVirtioFunction, pciBusOf, type PciFunctionEntry } from './pci-functions.js';
import { CONFIG_PORTS_BASE, CONFIG_PORTS_SIZE, PciConfigPorts } from './pci/config-ports.js';
import { Ecam, ECAM_BUS_SIZE } from './pci/ecam.js';
import { Bar0, VirtioPciDevice } from './virtio/pci-transport.js';
import { virtioQueueSizes, type VirtioKind, type VirtioSpec } from './virtio/virtio-devices.js';

export type DeviceSpec =
  | { kind: 'serial'; base?: number; irq?: number }
  | { kind: 'i8042' }
  | { kind: 'rtc'; ramBytes?: number }
  /** `mmio` places it at that address instead of a port: on some software KVM backends
   *  ring-3 guests cannot use ports even with IOPL 3, but can reach MMIO. `size`: ports it spans (1, 2 or 4; QEMU's iosize). */
  | { kind: 'debug-exit'; port?: number; mmio?: number; size?: number }
  | { kind: 'test-device'; base: number }
  /** QEMU's ISA test device for kvm-unit-tests, at QEMU's ports and address; for test kernels, never a default. */
  | { kind: 'pc-testdev' }
  /** QEMU's PCI test function for kvm-unit-tests; never a default. The builder gives it `pci`: its slot and BARs. */
  | { kind: 'pci-testdev'; pci?: PciTestdevWiring }
  | { kind: 'acpi-pm'; base?: number }
  /** The VM generation ID, announced in ACPI (Linux guests): in guest memory, on no bus. */
  | { kind: 'vmgenid' }
  /** QEMU's firmware configuration device with the user's `files`; the builder fills `content` (CPUs, RAM, e820, command line). */
  | { kind: 'fw-cfg'; files?: FwCfgFile[]; content?: FwCfgContent }
  /** The virtio functions (virtio/virtio-devices.ts says what each is and what the builder adds). */
  | VirtioSpec
  /** PCI configuration mechanism #1 and ECAM over bus 0's functions; the builder adds both when there are PCI devices. */
  | { kind: 'pci-config-ports'; functions: PciFunctionEntry[] }
  | { kind: 'pci-ecam'; base: number; functions: PciFunctionEntry[] };

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
  /** Where the device answers: one range, or one per register block for a device with several (QEMU's test devices). */
  placements(spec: S): DevicePlacement[];
  stateSize: number;
  /** What answers on each range, in the order of `placements`; all over the one state. */
  create(spec: S, ctx: DeviceContext, state: DeviceState): BusDevice[];
}

type Kinds = { [K in DeviceSpec['kind']]: DeviceKind<Extract<DeviceSpec, { kind: K }>> };

const kinds: Kinds = {
  serial: {
    placements: (s) => [{ name: 'serial (COM1)', bus: 'pio', base: s.base ?? COM1_BASE, length: SERIAL_PORT_SIZE }],
    stateSize: SerialPort.stateSize,
    create: (s, ctx, state) => [new SerialPort(ctx, state, s.irq)],
  },
  i8042: {
    placements: () => [{ name: 'i8042 (keyboard controller)', bus: 'pio', base: I8042_BASE, length: I8042_SIZE }],
    stateSize: I8042.stateSize,
    create: (_s, ctx, state) => [new I8042(ctx, state)],
  },
  rtc: {
    placements: () => [{ name: 'CMOS RTC', bus: 'pio', base: RTC_BASE, length: RTC_SIZE }],
    stateSize: CmosRtc.stateSize,
    create: (s, _ctx, state) => [new CmosRtc(state, { ramBytes: s.ramBytes })],
  },
  'debug-exit': {
    placements: (s) => [
      s.mmio !== undefined
        ? { name: 'debug-exit', bus: 'mmio', base: s.mmio, length: 8 }
        : { name: 'debug-exit', bus: 'pio', base: s.port ?? DEBUG_EXIT_PORT, length: s.size ?? 1 },
    ],
    stateSize: 0,
    create: (_s, ctx) => [new DebugExit(ctx)],
  },
  'test-device': {
    placements: (s) => [{ name: 'test-device', bus: 'mmio', base: s.base, length: TEST_DEVICE_SIZE }],
    stateSize: TestDevice.stateSize,
    create: (_s, _ctx, state) => [new TestDevice(state)],
  },
  'pc-testdev': {
    placements: () => [...PC_TESTDEV_REGIONS],
    stateSize: PcTestdev.stateSize,
    create: (_s, ctx, state) => [...new PcTestdev(ctx, state).regions],
  },
  'pci-testdev': {
    placements: (s) => {
      const { pci } = placed(s);
      return [
        { name: `pci-testdev (${pciAddress(pci.slot)} BAR0)`, bus: 'mmio', base: pci.bar0, length: PCI_TESTDEV_BAR0_SIZE },
        { name: `pci-testdev (${pciAddress(pci.slot)} BAR1)`, bus: 'pio', base: pci.bar1, length: PCI_TESTDEV_BAR1_SIZE },
      ];
    },
    stateSize: PciTestdev.stateSize,
    create: (s, _ctx, state) => {
      const fn = new PciTestdev(state, placed(s).pci);
      return [fn.bar0, fn.bar1];
    },
  },
  'acpi-pm': {
    placements: (s) => [{ name: 'acpi-pm', bus: 'pio', base: s.base ?? ACPI_PM_BASE, length: ACPI_PM_SIZE }],
    stateSize: 0,
    create: (_s, ctx) => [new AcpiPm(ctx)],
  },
  vmgenid: {
    placements: () => [],
    stateSize: 0,
    create: () => [],
  },
  'fw-cfg': {
    placements: () => [{ name: 'fw_cfg (QEMU firmware configuration)', bus: 'pio', base: FW_CFG_BASE, length: FW_CFG_SIZE }],
    stateSize: FwCfg.stateSize,
    create: (s, ctx, state) => {
      if (s.content === undefined) throw new Error('fw-cfg has no content yet: the builder makes it');
      return [new FwCfg(ctx, state, s.content)];
    },
  },
  'virtio-rng': virtioFunction('virtio-rng'),
  'virtio-blk': virtioFunction('virtio-blk'),
  'virtio-net': virtioFunction('virtio-net'),
  'virtio-vsock': virtioFunction('virtio-vsock'),
  'pci-config-ports': {
    placements: () => [{ name: 'PCI config ports', bus: 'pio', base: CONFIG_PORTS_BASE, length: CONFIG_PORTS_SIZE }],
    stateSize: PciConfigPorts.stateSize,
    create: (s, _ctx, state) => [new PciConfigPorts(state, pciBusOf(s.functions))],
  },
  'pci-ecam': {
    placements: (s) => [{ name: 'PCI ECAM (bus 0)', bus: 'mmio', base: s.base, length: ECAM_BUS_SIZE }],
    stateSize: 0,
    create: (s) => [new Ecam(pciBusOf(s.functions))],
  },
};

/** A PCI device's spec once the builder has given it `pci`: its slot and BARs. */
function placed<S extends { kind: string; pci?: object }>(s: S) {
  if (s.pci === undefined) throw new Error(`${s.kind} has no PCI slot yet: the builder gives it one`);
  return { ...s, pci: s.pci };
}

/** Bus 0, `slot`, function 0, as lspci writes it. */
function pciAddress(slot: number): string {
  return `PCI 00:${slot.toString(16).padStart(2, '0')}.0`;
}

/** A virtio device: its BAR0 on the MMIO bus, once the builder has placed it. */
function virtioFunction(kind: VirtioKind): DeviceKind<VirtioSpec> {
  return {
    placements: (s) => {
      const { pci } = placed(s);
      return [{ name: `${kind} (${pciAddress(pci.slot)} BAR0)`, bus: 'mmio', base: pci.bar0, length: Bar0.SIZE }];
    },
    stateSize: VirtioPciDevice.stateSize({ queueSizes: virtioQueueSizes(kind) }),
    create: (s, _ctx, state) => [createVirtioFunction(placed(s), state).bar0],
  };
}

function kindOf<S extends DeviceSpec>(spec: S): DeviceKind<S> {
  return kinds[spec.kind] as unknown as DeviceKind<S>;
}

/** Every range the device answers on. */
export function placements(spec: DeviceSpec): DevicePlacement[] {
  return kindOf(spec).placements(spec);
}

/** The one range of a device that has one (a serial port, acpi-pm, a virtio function's BAR0). */
export function placement(spec: DeviceSpec): DevicePlacement {
  const [only, ...more] = placements(spec);
  if (more.length > 0) throw new Error(`${spec.kind} answers on ${more.length + 1} ranges, not one`);
  return only;
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
    this.state.lock();
    try {
      this.device.read(offset, data);
    } finally {
      this.state.unlock();
    }
  }
  write(offset: number, data: Uint8Array): void {
    this.state.lock();
    try {
      this.device.write(offset, data);
    } finally {
      this.state.unlock();
    }
  }
}

export function attachDevice({ spec, state: buffer }: MachineDevice, buses: { pio: Bus; mmio: Bus }, ctx: DeviceContext): void {
  const state = new DeviceState(buffer);
  const handlers = kindOf(spec).create(spec, ctx, state);
  placements(spec).forEach((p, i) => buses[p.bus].insert(p.base, p.length, p.name, new LockedDevice(handlers[i], state)));
}
