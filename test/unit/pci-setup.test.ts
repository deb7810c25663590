import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceSpec } from '../../src/devices/registry.js';
import { placement, placements } from '../../src/devices/registry.js';
import type { IoEventFd } from '../../src/kvm/vm.js';
import { GiB, MMIO_HOLE_END, MMIO_HOLE_START, planRam } from '../../src/memory/layout.js';
import { defaultDevicesFor } from '../../src/vmm/config.js';
import { describeMemoryMap } from '../../src/vmm/memory-map.js';
import { setUpPci, type PciVm } from '../../src/vmm/pci-setup.js';

/** A VM that records the eventfds it was asked to wire. */
class FakeVm implements PciVm {
  readonly fd = 42;
  readonly irqfds: [number, number][] = [];
  readonly ioeventfds: IoEventFd[] = [];
  irqfd(fd: number, gsi: number): void {
    this.irqfds.push([fd, gsi]);
  }
  ioeventfd(e: IoEventFd): void {
    this.ioeventfds.push(e);
  }
  setGsiRouting(): void {}
}

test('each virtio device gets the next slot, a BAR in the window, a GSI per vector bound to an eventfd, and an ioeventfd per queue', (t) => {
  const vm = new FakeVm();
  const specs: DeviceSpec[] = [{ kind: 'serial' }, { kind: 'virtio-rng' }, { kind: 'debug-exit' }, { kind: 'virtio-rng' }];
  const pci = setUpPci(vm, specs);
  t.after(() => pci.close());
  const kinds = pci.devices.map((d) => d.spec.kind);
  assert.deepEqual(kinds, ['serial', 'virtio-rng', 'debug-exit', 'virtio-rng', 'pci-config-ports', 'pci-ecam']);

  const [first, second] = pci.devices.filter((d) => d.spec.kind === 'virtio-rng').map((d) => (d.spec as Extract<DeviceSpec, { kind: 'virtio-rng' }>).pci!);
  assert.deepEqual([first.slot, first.bar0, first.intxGsi], [1, 0xc100_0000, 17]);
  assert.deepEqual([second.slot, second.bar0, second.intxGsi], [2, 0xc100_4000, 18]);
  assert.deepEqual(first.vectors.map((v) => v.gsi), [24, 25], 'configuration vector, queue vector');
  assert.deepEqual(second.vectors.map((v) => v.gsi), [26, 27]);
  assert.equal(first.vmFd, 42);
  assert.equal(first.routes, second.routes, 'one routing table per machine');

  assert.deepEqual(vm.irqfds, [...first.vectors, ...second.vectors].map((v) => [v.eventfd, v.gsi]));
  assert.deepEqual(vm.ioeventfds, [
    { fd: first.queueEventfds[0], addr: 0xc100_2000, len: 2 },
    { fd: second.queueEventfds[0], addr: 0xc100_6000, len: 2 },
  ]);

  const ports = pci.devices.find((d) => d.spec.kind === 'pci-config-ports')!.spec as Extract<DeviceSpec, { kind: 'pci-config-ports' }>;
  assert.deepEqual(ports.functions.map((f) => f.spec.kind), ['pci-host-bridge', 'virtio-rng', 'virtio-rng']);
  assert.equal(ports.functions[1].state, pci.devices[1].state, 'the config mechanisms and the BAR share the function state');
  assert.deepEqual(placement(pci.devices[1].spec), { name: 'virtio-rng (PCI 00:01.0 BAR0)', bus: 'mmio', base: 0xc100_0000, length: 0x4000 });
  assert.deepEqual(placement(pci.devices[5].spec), { name: 'PCI ECAM (bus 0)', bus: 'mmio', base: 0xe000_0000, length: 0x10_0000 });
});

test('a machine without PCI devices gets no config mechanisms', () => {
  const pci = setUpPci(new FakeVm(), [{ kind: 'serial' }]);
  assert.deepEqual(pci.devices.map((d) => d.spec.kind), ['serial']);
});

test('the config mechanisms are the builder\'s to add', () => {
  assert.throws(() => setUpPci(new FakeVm(), [{ kind: 'pci-ecam', base: 0xe000_0000, functions: [] }]), /pci-ecam is added by the builder, not listed/);
});

test('pci-testdev gets a slot, its memory BAR in the window and its I/O BAR at 0xc000, and ioeventfds for its eventfd tests', (t) => {
  const vm = new FakeVm();
  const pci = setUpPci(vm, [{ kind: 'pci-testdev' }, { kind: 'virtio-rng' }]);
  t.after(() => pci.close());
  const testdev = pci.devices[0].spec as Extract<DeviceSpec, { kind: 'pci-testdev' }>;
  assert.deepEqual(testdev.pci, { slot: 1, bar0: 0xc100_0000, bar1: 0xc000 });
  const rng = pci.devices[1].spec as Extract<DeviceSpec, { kind: 'virtio-rng' }>;
  assert.deepEqual([rng.pci!.slot, rng.pci!.bar0], [2, 0xc100_4000], 'the next slot, the next BAR aligned to its size');
  assert.deepEqual(placements(testdev), [
    { name: 'pci-testdev (PCI 00:01.0 BAR0)', bus: 'mmio', base: 0xc100_0000, length: 0x1000 },
    { name: 'pci-testdev (PCI 00:01.0 BAR1)', bus: 'pio', base: 0xc000, length: 0x100 },
  ]);
  assert.deepEqual(vm.ioeventfds.slice(0, 4).map(({ fd: _, ...e }) => e), [
    { addr: 0xc100_0801, len: 0 },
    { addr: 0xc100_0802, len: 1, datamatch: 0xfan },
    { addr: 0xc084, len: 1, pio: true },
    { addr: 0xc085, len: 1, pio: true, datamatch: 0xfan },
  ]);
  assert.equal(new Set(vm.ioeventfds.map((e) => e.fd)).size, vm.ioeventfds.length, 'an eventfd each');
  const ports = pci.devices.find((d) => d.spec.kind === 'pci-config-ports')!.spec as Extract<DeviceSpec, { kind: 'pci-config-ports' }>;
  assert.deepEqual(ports.functions.map((f) => f.spec.kind), ['pci-host-bridge', 'pci-testdev', 'virtio-rng']);
  assert.equal(ports.functions[1].state, pci.devices[0].state);
});

test("the test devices' ranges overlap nothing else in the machine's map, and their MMIO is in the hole, outside RAM", (t) => {
  const specs: DeviceSpec[] = [...defaultDevicesFor({ kind: 'linux', kernel: new Uint8Array() }), { kind: 'pc-testdev' }, { kind: 'pci-testdev' }];
  const pci = setUpPci(new FakeVm(), specs);
  t.after(() => pci.close());
  const map = describeMemoryMap(planRam(3 * GiB), pci.devices.map((d) => d.spec)).filter((e) => e.what !== 'MMIO hole');
  for (const space of ['memory', 'port'] as const) {
    const entries = map.filter((e) => e.space === space);
    entries.slice(1).forEach((e, i) => assert.ok(entries[i].end <= e.start, `${entries[i].what} and ${e.what} overlap`));
  }
  const testMemory = map.filter((e) => e.space === 'memory' && /^pci?-testdev/.test(e.what));
  assert.deepEqual(testMemory.map((e) => e.what), ['pci-testdev (PCI 00:02.0 BAR0)', 'pc-testdev iomem']);
  for (const e of testMemory) assert.ok(e.start >= MMIO_HOLE_START && e.end <= MMIO_HOLE_END, e.what);
});
