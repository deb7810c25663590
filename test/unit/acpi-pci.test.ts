import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acpiDevicesOf, writeAcpiTables } from '../../src/acpi/acpi-tables.js';
import { dsdtAml } from '../../src/acpi/dsdt.js';
import { GsiRoutes } from '../../src/devices/pci/gsi-routes.js';
import type { DeviceSpec } from '../../src/devices/registry.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';

const ECAM = { base: 0xe000_0000, size: 0x10_0000 };
const WINDOW = { base: 0xc100_0000, size: 0x1f00_0000 };

test('the PCI root bridge and the ECAM reservation, byte for byte as iasl compiles the same ASL', () => {
  const body = Buffer.from(dsdtAml({
    serialPorts: [], i8042: false, cmosRtc: false, pmBase: 0x600,
    pci: { ecam: ECAM, window: WINDOW, routes: [{ slot: 1, pin: 0, gsi: 17 }] },
  }));
  // Device (PCI0) { _HID PNP0A08, _CID PNP0A03, _SEG 0, _BBN 0, _UID 0,
  //   _CRS { WordBusNumber 0-0, IO (Decode16, 0xCF8, 0xCF8, 1, 8),
  //          DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0, 0xC1000000, 0xDFFFFFFF, 0, 0x1F000000) },
  //   _PRT { Package { 0x0001FFFF, Zero, Zero, 0x11 } } }
  // Device (ECAM) { _HID PNP0C02, _UID One, _CRS { Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000) } }
  const iasl = Buffer.from(
    '5b824d0750434930085f4849440c41d00a08085f4349440c41d00a03085f53454700085f42424e00085f55494400' +
      '085f43525311370a34880d00020c00000000000000000001004701f80cf80c0108871700000c0100000000000000c1ffffffdf000000000000001f7900' +
      '085f505254120e01120b040cffff010000000a11' +
      '5b822c4543414d085f4849440c41d00c02085f55494401085f43525311110a0e86090001000000e0000010007900',
    'hex',
  );
  const at = body.indexOf(Buffer.from('PCI0', 'latin1')) - 4;
  assert.ok(at > 0);
  assert.deepEqual(body.subarray(at), iasl);
});

/** The device list the builder makes for a machine with an rng in slot 1. */
function pciSpecs(): DeviceSpec[] {
  const state = new SharedArrayBuffer(8);
  const wiring = { slot: 1, bar0: WINDOW.base, intxGsi: 17, vectors: [], queueEventfds: [], controlEventfd: -1, vmFd: -1, routes: GsiRoutes.allocate() };
  const functions = [
    { spec: { kind: 'pci-host-bridge' as const }, state },
    { spec: { kind: 'virtio-rng' as const, pci: wiring }, state },
  ];
  return [
    { kind: 'serial' }, { kind: 'acpi-pm' },
    { kind: 'virtio-rng', pci: wiring },
    { kind: 'pci-config-ports', functions },
    { kind: 'pci-ecam', base: ECAM.base, functions },
  ];
}

test('a machine with PCI devices gets the root bridge, with INTA#-INTD# of each device slot routed, and an MCFG', () => {
  const devices = acpiDevicesOf(pciSpecs());
  assert.deepEqual(devices.pci?.ecam, ECAM);
  assert.deepEqual(devices.pci?.window, WINDOW);
  assert.deepEqual(devices.pci?.routes, [
    { slot: 1, pin: 0, gsi: 17 }, { slot: 1, pin: 1, gsi: 18 }, { slot: 1, pin: 2, gsi: 19 }, { slot: 1, pin: 3, gsi: 20 },
  ]);

  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(0x10_0000) }]);
  const layout = writeAcpiTables(memory, { cpus: 1, devices });
  assert.deepEqual(layout.tables.map((t) => t.signature), ['DSDT', 'FACP', 'APIC', 'MCFG', 'XSDT']);
  const xsdt = layout.tables.find((t) => t.signature === 'XSDT')!;
  const mcfg = layout.tables.find((t) => t.signature === 'MCFG')!;
  const listed = Array.from({ length: (xsdt.length - 36) / 8 }, (_, i) => Number(memory.readU64(xsdt.address + 36 + 8 * i)));
  assert.ok(listed.includes(mcfg.address), 'the XSDT lists the MCFG');
  assert.equal(mcfg.length, 60);
  assert.equal(memory.readU8(mcfg.address + 8), 1, 'revision');
  assert.equal(memory.read(mcfg.address, mcfg.length).reduce((s, b) => (s + b) & 0xff, 0), 0, 'checksum');
  assert.equal(memory.readU64(mcfg.address + 44), BigInt(ECAM.base));
  assert.equal(memory.readU16(mcfg.address + 52), 0, 'segment 0');
  assert.deepEqual([memory.readU8(mcfg.address + 54), memory.readU8(mcfg.address + 55)], [0, 0], 'bus 0 only');
});

test('a machine without PCI devices has no root bridge and no MCFG', () => {
  const devices = acpiDevicesOf([{ kind: 'serial' }, { kind: 'acpi-pm' }]);
  assert.equal(devices.pci, undefined);
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(0x10_0000) }]);
  const layout = writeAcpiTables(memory, { cpus: 1, devices });
  assert.deepEqual(layout.tables.map((t) => t.signature), ['DSDT', 'FACP', 'APIC', 'XSDT']);
});
