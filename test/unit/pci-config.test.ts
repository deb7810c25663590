import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceState } from '../../src/devices/device-state.js';
import { CapabilityId, Command, Reg } from '../../src/devices/pci/config-space.js';
import { PciConfigPorts } from '../../src/devices/pci/config-ports.js';
import { Ecam } from '../../src/devices/pci/ecam.js';
import { FIRST_MSI_GSI, GsiRoutes, irqchipRoutes } from '../../src/devices/pci/gsi-routes.js';
import { HostBridge } from '../../src/devices/pci/host-bridge.js';
import { KvmInterrupts } from '../../src/devices/pci/kvm-interrupts.js';
import { PciBus } from '../../src/devices/pci/pci-bus.js';
import type { PciFunctionWiring } from '../../src/devices/pci/wiring.js';
import { CfgType } from '../../src/devices/virtio/capabilities.js';
import { Bar0, NOTIFY_OFF_MULTIPLIER, VirtioPciDevice } from '../../src/devices/virtio/pci-transport.js';
import { RNG_INFO, VirtioRng } from '../../src/devices/virtio/rng.js';
import { close, drainEventfd, eventfd } from '../../src/kvm/libc.js';
import { KVM_IRQ_ROUTING_MSI, type IrqRoute } from '../../src/kvm/vm.js';
import { guardedMemory, TEST_BAR0, TEST_INTX_GSI, VirtioDriver } from '../helpers/virtio-driver.js';

function rngDriver(): VirtioDriver {
  return new VirtioDriver(guardedMemory(0, 0x10000).memory, new VirtioRng());
}

test('the header: virtio vendor, modern device ID 0x1044, revision 1, class "other", INTA# on its GSI', () => {
  const d = rngDriver();
  assert.equal(d.configRead(Reg.VENDOR_ID, 2), 0x1af4);
  assert.equal(d.configRead(Reg.DEVICE_ID, 2), 0x1044);
  assert.equal(d.configRead(Reg.REVISION_ID, 1), 1);
  assert.equal(d.configRead(Reg.REVISION_ID, 4) >>> 8, 0xff0000, 'class code');
  assert.equal(d.configRead(Reg.HEADER_TYPE, 1), 0);
  assert.equal(d.configRead(Reg.SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
  assert.equal(d.configRead(Reg.INTERRUPT_PIN, 1), 1);
  assert.equal(d.configRead(Reg.INTERRUPT_LINE, 1), TEST_INTX_GSI);
  assert.equal(d.configRead(Reg.STATUS, 2) & 0x10, 0x10, 'capability list present');
});

test('read-only registers ignore writes; command, cache line size and interrupt line take them', () => {
  const d = rngDriver();
  d.configWrite(Reg.VENDOR_ID, 4, 0x12345678);
  assert.equal(d.configRead(Reg.VENDOR_ID, 4), 0x10441af4);
  d.configWrite(Reg.COMMAND, 2, 0xffff);
  assert.equal(d.configRead(Reg.COMMAND, 2), Command.MEMORY | Command.BUS_MASTER | Command.PARITY | Command.SERR | Command.INTX_DISABLE);
  d.configWrite(Reg.CACHE_LINE_SIZE, 1, 0x10);
  d.configWrite(Reg.INTERRUPT_LINE, 1, 0x0b);
  d.configWrite(Reg.INTERRUPT_PIN, 1, 0x04);
  assert.equal(d.configRead(Reg.CACHE_LINE_SIZE, 1), 0x10);
  assert.equal(d.configRead(Reg.INTERRUPT_LINE, 2), 0x010b, 'line written, pin unchanged');
});

test('BAR sizing: all-ones reads back the size mask, then the address is restored', () => {
  const d = rngDriver();
  assert.equal(d.configRead(Reg.BAR0, 4), TEST_BAR0, '32-bit non-prefetchable memory BAR at its address');
  d.configWrite(Reg.BAR0, 4, 0xffff_ffff);
  assert.equal(d.configRead(Reg.BAR0, 4), (~(Bar0.SIZE - 1)) >>> 0);
  assert.equal(d.configRead(Reg.BAR0, 4) & 0xf, 0, 'memory, 32-bit, not prefetchable');
  d.configWrite(Reg.BAR0, 4, TEST_BAR0);
  assert.equal(d.configRead(Reg.BAR0, 4), TEST_BAR0);
  for (let bar = 1; bar < 6; bar++) {
    d.configWrite(Reg.BAR0 + 4 * bar, 4, 0xffff_ffff);
    assert.equal(d.configRead(Reg.BAR0 + 4 * bar, 4), 0, `BAR${bar} is not implemented`);
  }
  d.configWrite(0x30, 4, 0xffff_ffff);
  assert.equal(d.configRead(0x30, 4), 0, 'no expansion ROM');
});

test('a BAR does not move: another address reads back as the assigned one', () => {
  const d = rngDriver();
  d.configWrite(Reg.BAR0, 4, 0xd000_0000);
  assert.equal(d.configRead(Reg.BAR0, 4), TEST_BAR0);
});

test('BAR0 decodes only with memory decoding on and while it is not being sized', () => {
  const d = rngDriver();
  assert.equal(d.fn.barDecodes(0), false, 'decoding is off at power-on');
  d.enablePci();
  assert.equal(d.fn.barDecodes(0), true);
  d.configWrite(Reg.BAR0, 4, 0xffff_ffff);
  assert.equal(d.fn.barDecodes(0), false);
  d.configWrite(Reg.BAR0, 4, TEST_BAR0);
  assert.equal(d.fn.barDecodes(0), true);
});

test('the capability list: MSI-X, then common, notify, ISR and PCI configuration access, all in BAR0', () => {
  const d = rngDriver();
  const caps = d.capabilities();
  assert.deepEqual(caps.map((c) => [c.id, c.cfgType]), [
    [CapabilityId.MSIX, undefined],
    [CapabilityId.VENDOR_SPECIFIC, CfgType.COMMON],
    [CapabilityId.VENDOR_SPECIFIC, CfgType.NOTIFY],
    [CapabilityId.VENDOR_SPECIFIC, CfgType.ISR],
    [CapabilityId.VENDOR_SPECIFIC, CfgType.PCI],
  ]);
  for (const c of caps) {
    assert.equal(c.offset % 4, 0);
    assert.ok(c.offset >= 0x40 && c.offset < 0x100);
  }
  const byType = (t: number) => caps.find((c) => c.cfgType === t)!;
  assert.deepEqual([byType(CfgType.COMMON).bar, byType(CfgType.COMMON).barOffset, byType(CfgType.COMMON).length], [0, 0, 0x40]);
  assert.deepEqual([byType(CfgType.NOTIFY).barOffset, byType(CfgType.NOTIFY).length], [Bar0.NOTIFY, NOTIFY_OFF_MULTIPLIER]);
  assert.equal(d.configRead(byType(CfgType.NOTIFY).offset + 2, 1), 20, 'cap_len of the notify capability');
  assert.equal(d.configRead(byType(CfgType.NOTIFY).offset + 16, 4), NOTIFY_OFF_MULTIPLIER);
  assert.deepEqual([byType(CfgType.ISR).barOffset, byType(CfgType.ISR).length], [Bar0.ISR, 4]);
  const msix = caps[0];
  assert.equal(d.configRead(msix.offset + 2, 2), 1, 'two vectors (table size - 1)');
  assert.equal(d.configRead(msix.offset + 4, 4), Bar0.MSIX_TABLE, 'table in BAR0');
  assert.equal(d.configRead(msix.offset + 8, 4), Bar0.MSIX_PBA, 'PBA in BAR0');
});

test('the PCI configuration access capability reaches BAR0 through config space', () => {
  const d = rngDriver();
  const cap = d.virtioCapability(CfgType.PCI);
  d.configWrite(cap.offset + 4, 1, 0); // bar
  d.configWrite(cap.offset + 8, 4, 0x12); // offset: num_queues
  d.configWrite(cap.offset + 12, 4, 2); // length
  assert.equal(d.configRead(cap.offset + 16, 4), 1, 'num_queues, even with memory decoding off');
  d.configWrite(cap.offset + 8, 4, 0x14); // device_status
  d.configWrite(cap.offset + 12, 4, 1);
  d.configWrite(cap.offset + 16, 4, 1); // ACKNOWLEDGE
  assert.equal(d.fn.state.locked(() => d.fn.transport.status), 1);
  d.configWrite(cap.offset + 8, 4, 0x13); // misaligned for a 2-byte window: ignored
  d.configWrite(cap.offset + 12, 4, 2);
  assert.equal(d.configRead(cap.offset + 16, 4), 0);
});

/** A VmFd that records what it was asked. */
class FakeVm {
  readonly routings: IrqRoute[][] = [];
  readonly lines: [number, boolean][] = [];
  setGsiRouting(routes: IrqRoute[]): void {
    this.routings.push(routes.map((r) => ({ ...r, u: [...r.u] })));
  }
  irqLine(irq: number, level: boolean): void {
    this.lines.push([irq, level]);
  }
}

function kvmWiredRng() {
  const vm = new FakeVm();
  const wiring: PciFunctionWiring = {
    slot: 1, bar0: TEST_BAR0, intxGsi: TEST_INTX_GSI,
    vectors: [{ gsi: FIRST_MSI_GSI, eventfd: eventfd() }, { gsi: FIRST_MSI_GSI + 1, eventfd: eventfd() }],
    queueEventfds: [], controlEventfd: -1, vmFd: -1, routes: GsiRoutes.allocate(),
  };
  const fn = new VirtioPciDevice(new DeviceState(DeviceState.allocate(VirtioPciDevice.stateSize(RNG_INFO))), RNG_INFO, {
    bar0: TEST_BAR0, intxGsi: TEST_INTX_GSI, interrupts: new KvmInterrupts(wiring, vm), kick: () => {}, wakeIoThread: () => {},
  });
  const config = (offset: number, size: number, value: number) => {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (value >>> (8 * i)) & 0xff;
    fn.state.locked(() => fn.configWrite(offset, data));
  };
  const mmio = (offset: number, value: number) => fn.state.locked(() => fn.bar0.write(offset, new Uint8Array(new Uint32Array([value]).buffer)));
  config(Reg.COMMAND, 2, Command.MEMORY | Command.BUS_MASTER);
  const entry = (v: number) => Bar0.MSIX_TABLE + 16 * v;
  return {
    vm, wiring, fn, config, mmio, entry,
    closeEventfds: () => wiring.vectors.forEach((v) => close(v.eventfd)),
  };
}

test('MSI-X: programming and unmasking a vector installs its route; KVM gets the whole table each time', (t) => {
  const r = kvmWiredRng();
  t.after(r.closeEventfds);
  const msixControl = 0x40 + 2;
  r.mmio(r.entry(1), 0xfee0_1000);
  r.mmio(r.entry(1) + 4, 0);
  r.mmio(r.entry(1) + 8, 0x4041);
  assert.equal(r.vm.routings.length, 0, 'still masked, MSI-X still off');
  r.mmio(r.entry(1) + 12, 0);
  assert.equal(r.vm.routings.length, 0, 'MSI-X still off');
  r.config(msixControl, 2, 0x8000);
  assert.equal(r.vm.routings.length, 1);
  const defaults = irqchipRoutes();
  assert.equal(defaults.length, 24 + 16, 'every GSI to the I/O APIC, 0-15 also to the PICs');
  assert.deepEqual(r.vm.routings[0], [...defaults, { gsi: FIRST_MSI_GSI + 1, type: KVM_IRQ_ROUTING_MSI, u: [0xfee0_1000, 0, 0x4041] }]);

  r.mmio(r.entry(0), 0xfee0_0000);
  r.mmio(r.entry(0) + 8, 0x4040);
  r.mmio(r.entry(0) + 12, 0);
  assert.equal(r.vm.routings.length, 2);
  assert.deepEqual(r.vm.routings[1].slice(defaults.length), [
    { gsi: FIRST_MSI_GSI, type: KVM_IRQ_ROUTING_MSI, u: [0xfee0_0000, 0, 0x4040] },
    { gsi: FIRST_MSI_GSI + 1, type: KVM_IRQ_ROUTING_MSI, u: [0xfee0_1000, 0, 0x4041] },
  ]);
  r.mmio(r.entry(0) + 12, 0);
  assert.equal(r.vm.routings.length, 2, 'unchanged message: no ioctl');
});

test('MSI-X: a masked vector sets its pending bit; unmasking sends it through the eventfd', (t) => {
  const r = kvmWiredRng();
  t.after(r.closeEventfds);
  r.mmio(r.entry(1), 0xfee0_0000);
  r.mmio(r.entry(1) + 8, 0x41);
  r.config(0x42, 2, 0x8000);
  r.fn.state.locked(() => r.fn.interruptQueue(0)); // queue 0 has NO_VECTOR: nothing
  r.fn.state.locked(() => r.fn.transport.setQueue(0, { vector: 1 }));
  r.fn.state.locked(() => r.fn.interruptQueue(0));
  assert.equal(drainEventfd(r.wiring.vectors[1].eventfd), 0n, 'masked: not sent');
  const pba = new Uint8Array(8);
  r.fn.state.locked(() => r.fn.bar0.read(Bar0.MSIX_PBA, pba));
  assert.equal(pba[0], 0b10);
  r.mmio(r.entry(1) + 12, 0);
  assert.equal(drainEventfd(r.wiring.vectors[1].eventfd), 1n, 'sent on unmask');
  r.fn.state.locked(() => r.fn.interruptQueue(0));
  assert.equal(drainEventfd(r.wiring.vectors[1].eventfd), 1n, 'sent at once while unmasked');
  r.config(0x42, 2, 0xc000); // function mask
  r.fn.state.locked(() => r.fn.interruptQueue(0));
  assert.equal(drainEventfd(r.wiring.vectors[1].eventfd), 0n);
  r.config(0x42, 2, 0x8000);
  assert.equal(drainEventfd(r.wiring.vectors[1].eventfd), 1n, 'sent when the function is unmasked');
  assert.deepEqual(r.vm.lines, [], 'no INTx while MSI-X is on');
});

test('INTx goes through KVM_IRQ_LINE on the slot GSI when MSI-X is off', () => {
  const r = kvmWiredRng();
  r.closeEventfds();
  r.fn.state.locked(() => r.fn.interruptConfig());
  assert.deepEqual(r.vm.lines, [[TEST_INTX_GSI, true]]);
  const isr = new Uint8Array(1);
  r.fn.state.locked(() => r.fn.bar0.read(Bar0.ISR, isr));
  assert.equal(isr[0], 2, 'configuration change');
  assert.deepEqual(r.vm.lines, [[TEST_INTX_GSI, true], [TEST_INTX_GSI, false]]);
});

function bus0() {
  const bridge = new HostBridge(new DeviceState(DeviceState.allocate(HostBridge.stateSize)));
  const rng = rngDriver().fn;
  return new PciBus([{ slot: 0, fn: bridge }, { slot: 1, fn: rng }]);
}

test('configuration mechanism #1: CONFIG_ADDRESS at 0xCF8, then CONFIG_DATA at 0xCFC-0xCFF', () => {
  const ports = new PciConfigPorts(new DeviceState(DeviceState.allocate(PciConfigPorts.stateSize)), bus0());
  const out32 = (offset: number, value: number) => ports.write(offset, new Uint8Array(new Uint32Array([value]).buffer));
  const inN = (offset: number, size: number) => {
    const data = new Uint8Array(size);
    ports.read(offset, data);
    return data.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);
  };
  const address = (slot: number, reg: number, fn = 0, bus = 0) => (0x8000_0000 | (bus << 16) | (slot << 11) | (fn << 8) | reg) >>> 0;
  out32(0, address(0, 0));
  assert.equal(inN(0, 4), address(0, 0), 'CONFIG_ADDRESS reads back');
  assert.equal(inN(4, 4), 0x0008_1b36, 'host bridge');
  out32(0, address(0, 8));
  assert.equal(inN(7, 1), 0x06, 'class: bridge');
  assert.equal(inN(6, 2), 0x0600, 'host bridge subclass');
  out32(0, address(1, 0));
  assert.equal(inN(4, 4), 0x1044_1af4, 'virtio-rng in slot 1');
  assert.equal(inN(6, 2), 0x1044);
  out32(0, address(2, 0));
  assert.equal(inN(4, 4), 0xffff_ffff, 'empty slot');
  out32(0, address(1, 0, 1));
  assert.equal(inN(4, 4), 0xffff_ffff, 'function 1');
  out32(0, address(0, 0, 0, 1));
  assert.equal(inN(4, 4), 0xffff_ffff, 'bus 1');
  out32(0, address(1, 0) & 0x7fff_ffff);
  assert.equal(inN(4, 4), 0xffff_ffff, 'enable bit clear');
  ports.write(1, Uint8Array.of(0x06)); // 0xCF9: not the address register
  assert.equal(inN(0, 4), address(1, 0) & 0x7fff_ffff);
  out32(0, address(1, 0x3c));
  ports.write(4, Uint8Array.of(0x0a));
  assert.equal(inN(4, 2), 0x010a, 'interrupt line written through the data port');
});

test("ECAM: each function's 4 KiB at bus << 20 | device << 15 | function << 12", () => {
  const ecam = new Ecam(bus0());
  const read = (offset: number, size: number) => {
    const data = new Uint8Array(size);
    ecam.read(offset, data);
    return data.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);
  };
  assert.equal(read(0, 4), 0x0008_1b36);
  assert.equal(read(1 << 15, 4), 0x1044_1af4);
  assert.equal(read((1 << 15) + 0x100, 4), 0, 'no extended capabilities');
  assert.equal(read((1 << 15) | (3 << 12), 4), 0xffff_ffff, 'function 3');
  assert.equal(read(5 << 15, 2), 0xffff);
  ecam.write((1 << 15) + Reg.COMMAND, Uint8Array.of(Command.MEMORY));
  assert.equal(read((1 << 15) + Reg.COMMAND, 2), Command.MEMORY);
});
