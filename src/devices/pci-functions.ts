/**
 * The functions on the machine's PCI bus, described as data (each thread
 * builds its own objects over the shared state): the host bridge, and a
 * device per slot after it (virtio devices, QEMU's pci-testdev).
 */
import { signalEventfd } from '../kvm/libc.js';
import { PciTestdev, type PciTestdevWiring } from './debug/pci-testdev.js';
import { DeviceState } from './device-state.js';
import { HostBridge } from './pci/host-bridge.js';
import { KvmInterrupts } from './pci/kvm-interrupts.js';
import { HOST_BRIDGE_SLOT } from './pci/layout.js';
import { PciBus } from './pci/pci-bus.js';
import type { PciFunction } from './pci/pci-device.js';
import type { PciFunctionWiring } from './pci/wiring.js';
import { VirtioPciDevice } from './virtio/pci-transport.js';
import { virtioInfo, type VirtioSpec } from './virtio/virtio-devices.js';

/** A virtio device once the builder has prepared it and given it a slot, a BAR and its interrupts. */
export type PlacedVirtioSpec = VirtioSpec & { pci: PciFunctionWiring };

/** pci-testdev once the builder has given it a slot and its BARs. */
export type PlacedPciTestdevSpec = { kind: 'pci-testdev'; pci: PciTestdevWiring };

export type PciFunctionSpec = { kind: 'pci-host-bridge' } | PlacedVirtioSpec | PlacedPciTestdevSpec;

export interface PciFunctionEntry {
  spec: PciFunctionSpec;
  state: SharedArrayBuffer;
}

export function pciFunctionSlot(spec: PciFunctionSpec): number {
  return spec.kind === 'pci-host-bridge' ? HOST_BRIDGE_SLOT : spec.pci.slot;
}

export function pciFunctionStateSize(spec: PciFunctionSpec): number {
  switch (spec.kind) {
    case 'pci-host-bridge': return HostBridge.stateSize;
    case 'pci-testdev': return PciTestdev.stateSize;
    default: return VirtioPciDevice.stateSize(virtioInfo(spec));
  }
}

/** A virtio function whose interrupts go to KVM and whose notifications wake its I/O thread. */
export function createVirtioFunction(spec: PlacedVirtioSpec, state: DeviceState): VirtioPciDevice {
  const { pci } = spec;
  return new VirtioPciDevice(state, virtioInfo(spec), {
    bar0: pci.bar0,
    intxGsi: pci.intxGsi,
    interrupts: new KvmInterrupts(pci),
    kick: (queue) => signalEventfd(pci.queueEventfds[queue]),
    wakeIoThread: () => signalEventfd(pci.controlEventfd),
  });
}

function createPciFunction(spec: PciFunctionSpec, state: DeviceState): PciFunction {
  switch (spec.kind) {
    case 'pci-host-bridge': return new HostBridge(state);
    case 'pci-testdev': return new PciTestdev(state, spec.pci);
    default: return createVirtioFunction(spec, state);
  }
}

/** This thread's view of bus 0. */
export function pciBusOf(functions: readonly PciFunctionEntry[]): PciBus {
  return new PciBus(functions.map((f) => ({ slot: pciFunctionSlot(f.spec), fn: createPciFunction(f.spec, new DeviceState(f.state)) })));
}
