/**
 * Puts the machine's PCI devices on bus 0 at build time, as Firecracker and
 * Cloud Hypervisor do: the host bridge in slot 0, each device in the next
 * slot with its BAR at a fixed address in the PCI memory window, an MSI-X
 * vector per queue plus one for configuration changes (each an eventfd
 * bound to its own GSI with KVM_IRQFD), and an eventfd per queue that KVM
 * signals when the guest writes the queue's notify address (KVM_IOEVENTFD).
 * Then it adds the config mechanisms (ports 0xCF8-0xCFF and ECAM) over the
 * bus, and owns the eventfds, the files devices opened (disk images) and
 * the devices' I/O threads. QEMU's pci-testdev gets a slot too, its memory
 * BAR in the same window, its I/O BAR in the port window, and the KVM
 * ioeventfds QEMU gives its eventfd tests.
 */
import { hex } from '../devices/bus.js';
import { DeviceState } from '../devices/device-state.js';
import { PCI_TESTDEV_BAR0_SIZE, PCI_TESTDEV_BAR1_SIZE, pciTestdevIoeventfds } from '../devices/debug/pci-testdev.js';
import { pciFunctionStateSize, type PciFunctionEntry, type PlacedPciTestdevSpec, type PlacedVirtioSpec } from '../devices/pci-functions.js';
import { FIRST_MSI_GSI, GsiRoutes, MAX_MSI_ROUTES } from '../devices/pci/gsi-routes.js';
import {
  HOST_BRIDGE_SLOT, intxGsi, PCI_IO_WINDOW_BASE, PCI_IO_WINDOW_END,
} from '../devices/pci/layout.js';
import { SLOTS } from '../devices/pci/pci-bus.js';
import type { PciFunctionWiring } from '../devices/pci/wiring.js';
import { machineDevice, type DeviceSpec, type MachineDevice } from '../devices/registry.js';
import { ioControl, VirtioIoThread } from '../devices/virtio/io-thread.js';
import { Bar0, NOTIFY_OFF_MULTIPLIER } from '../devices/virtio/pci-transport.js';
import { isVirtioSpec, prepareVirtioSpec, virtioQueueSizes } from '../devices/virtio/virtio-devices.js';
import { close, eventfd } from '../kvm/libc.js';
import type { VmFd } from '../kvm/vm.js';
import { PCI_ECAM_BASE, PCI_MMIO_WINDOW_BASE, PCI_MMIO_WINDOW_END } from '../memory/layout.js';
import type { RamAddresses } from '../memory/mapping.js';

/** The guest notifies with a 16-bit write of the queue index (Linux: iowrite16). */
const NOTIFY_WRITE_SIZE = 2;

export class PciDevices {
  private readonly threads: VirtioIoThread[] = [];
  /** stop() was called: a start() still under way starts no more threads. */
  private stopping = false;

  constructor(
    /** Every device of the machine, the PCI ones wired and the config mechanisms added. */
    readonly devices: MachineDevice[],
    /** The MSI routes the guest programmed (GsiRoutes' shared state): part of a snapshot. */
    readonly routes: GsiRoutes,
    private readonly virtio: { spec: PlacedVirtioSpec; state: SharedArrayBuffer }[],
    /** What close() undoes, in order: eventfds and files to close, socket files to remove. */
    private readonly owned: (() => void)[],
  ) {}

  /** Starts an I/O thread per virtio device; `restored`, over the state a snapshot put back. */
  async start(ram: RamAddresses, report: (message: string) => void, restored: boolean): Promise<void> {
    for (const { spec, state } of this.virtio) {
      if (this.stopping) return;
      const wakeFd = eventfd();
      this.owned.push(() => close(wakeFd));
      const thread = new VirtioIoThread({ spec, state, ram, wakeFd, control: ioControl(), restored });
      this.threads.push(thread);
      await thread.start(report);
    }
  }

  /** Resolves once no I/O thread (nor the host kernel for it) touches a queue or guest memory. */
  async pause(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.pause()));
  }

  resume(): void {
    this.threads.forEach((t) => t.resume());
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.threads.map((t) => t.stop()));
    this.threads.length = 0;
  }

  /** Closes the eventfds and the devices' files; after the VM fd, which holds KVM's side of the eventfds. */
  close(): void {
    for (const undo of this.owned.splice(0)) undo();
  }
}

/** What wiring asks of the VM. */
export type PciVm = Pick<VmFd, 'fd' | 'irqfd' | 'ioeventfd' | 'setGsiRouting'>;

/** Places and wires the PCI devices among `specs`; the others just get their state. */
export function setUpPci(vm: PciVm, specs: readonly DeviceSpec[]): PciDevices {
  const owned: (() => void)[] = [];
  try {
    return wire(vm, specs, owned);
  } catch (e) {
    for (const undo of owned) undo();
    throw e;
  }
}

function wire(vm: PciVm, specs: readonly DeviceSpec[], owned: (() => void)[]): PciDevices {
  const own = (fd: number) => owned.push(() => close(fd));
  const routes = GsiRoutes.allocate();
  const devices: MachineDevice[] = [];
  const virtio: { spec: PlacedVirtioSpec; state: SharedArrayBuffer }[] = [];
  const functions: PciFunctionEntry[] = [];
  let slot = HOST_BRIDGE_SLOT + 1;
  const memoryBar = barWindow('memory', PCI_MMIO_WINDOW_BASE, PCI_MMIO_WINDOW_END);
  const ioBar = barWindow('I/O', PCI_IO_WINDOW_BASE, PCI_IO_WINDOW_END);
  let nextGsi = FIRST_MSI_GSI;
  const newEventfd = () => {
    const fd = eventfd();
    own(fd);
    return fd;
  };

  for (const spec of specs) {
    if (spec.kind === 'pci-config-ports' || spec.kind === 'pci-ecam') throw new Error(`${spec.kind} is added by the builder, not listed`);
    if (spec.kind !== 'pci-testdev' && !isVirtioSpec(spec)) {
      devices.push(machineDevice(spec));
      continue;
    }
    if (slot >= SLOTS) throw new Error(`more PCI devices than bus 0 has slots (${SLOTS - 1})`);
    if (spec.kind === 'pci-testdev') {
      const placed: PlacedPciTestdevSpec = { ...spec, pci: { slot: slot++, bar0: memoryBar(PCI_TESTDEV_BAR0_SIZE), bar1: ioBar(PCI_TESTDEV_BAR1_SIZE) } };
      for (const doorbell of pciTestdevIoeventfds(placed.pci)) vm.ioeventfd({ fd: newEventfd(), ...doorbell });
      const device = machineDevice(placed);
      devices.push(device);
      functions.push({ spec: placed, state: device.state });
      continue;
    }
    const bar0 = memoryBar(Bar0.SIZE);
    const prepared = prepareVirtioSpec(spec, own, (undo) => owned.push(undo));
    const queues = virtioQueueSizes(spec.kind).length;
    if (nextGsi + queues + 1 > FIRST_MSI_GSI + MAX_MSI_ROUTES) throw new Error(`more MSI-X vectors than the ${MAX_MSI_ROUTES} GSIs kept for them`);
    const pci: PciFunctionWiring = {
      slot, bar0, intxGsi: intxGsi(slot, 0),
      vectors: Array.from({ length: queues + 1 }, () => ({ gsi: nextGsi++, eventfd: newEventfd() })),
      queueEventfds: Array.from({ length: queues }, newEventfd),
      controlEventfd: newEventfd(),
      vmFd: vm.fd, routes,
    };
    for (const v of pci.vectors) vm.irqfd(v.eventfd, v.gsi);
    pci.queueEventfds.forEach((fd, q) => vm.ioeventfd({ fd, addr: bar0 + Bar0.NOTIFY + NOTIFY_OFF_MULTIPLIER * q, len: NOTIFY_WRITE_SIZE }));
    const placed: PlacedVirtioSpec = { ...prepared, pci };
    const device = machineDevice(placed);
    devices.push(device);
    virtio.push({ spec: placed, state: device.state });
    functions.push({ spec: placed, state: device.state });
    slot++;
  }

  if (functions.length > 0) {
    const hostBridge = { kind: 'pci-host-bridge' as const };
    functions.unshift({ spec: hostBridge, state: DeviceState.allocate(pciFunctionStateSize(hostBridge)) });
    devices.push(machineDevice({ kind: 'pci-config-ports', functions }), machineDevice({ kind: 'pci-ecam', base: PCI_ECAM_BASE, functions }));
  }
  return new PciDevices(devices, new GsiRoutes(routes, vm), virtio, owned);
}

/** Hands out BAR addresses in a window, each aligned to its size, in the order asked for. */
function barWindow(space: string, base: number, end: number): (size: number) => number {
  let next = base;
  return (size) => {
    const address = Math.ceil(next / size) * size;
    if (address + size > end) throw new Error(`the PCI ${space} window ${hex(base)}-${hex(end - 1)} is full`);
    next = address + size;
    return address;
  };
}
