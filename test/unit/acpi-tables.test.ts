import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acpiDevicesOf, writeAcpiTables, type AcpiOptions } from '../../src/acpi/acpi-tables.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';

const COM1 = { base: 0x3f8, irq: 4 };
const BIOS_AREA = 0xe0000;

/** 1 MiB of guest RAM from address 0, like the low memory of a PC. */
function lowMemory(): GuestMemory {
  return new GuestMemory([{ gpa: 0, bytes: new Uint8Array(0x10_0000) }]);
}

function write(options: Partial<AcpiOptions> & { cpus: number }) {
  const memory = lowMemory();
  const layout = writeAcpiTables(memory, { devices: { serialPorts: [COM1] }, ...options });
  return { memory, layout };
}

function sum(bytes: Uint8Array): number {
  return bytes.reduce((s, b) => (s + b) & 0xff, 0);
}

function ascii(memory: GuestMemory, address: number, length: number): string {
  return Buffer.from(memory.read(address, length)).toString('latin1');
}

interface ParsedTable {
  signature: string;
  length: number;
  revision: number;
  bytes: Uint8Array;
  view: DataView;
}

/** Reads a table back the way an OS does: header first, then `length` bytes, checksummed. */
function readTable(memory: GuestMemory, address: number): ParsedTable {
  const length = memory.readU32(address + 4);
  const bytes = memory.read(address, length);
  assert.equal(sum(bytes), 0, `checksum of the table at 0x${address.toString(16)}`);
  assert.equal(ascii(memory, address + 10, 6), 'TSVMM ');
  return {
    signature: ascii(memory, address, 4),
    length,
    revision: bytes[8],
    bytes,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
}

/** Follows RSDP -> XSDT -> each table, as Linux does. */
function tablesFromRsdp(memory: GuestMemory, rsdp: number): Map<string, ParsedTable & { address: number }> {
  const xsdtAddress = Number(memory.readU64(rsdp + 24));
  const xsdt = readTable(memory, xsdtAddress);
  assert.equal(xsdt.signature, 'XSDT');
  const found = new Map<string, ParsedTable & { address: number }>();
  for (let offset = 36; offset < xsdt.length; offset += 8) {
    const address = Number(xsdt.view.getBigUint64(offset, true));
    const table = readTable(memory, address);
    found.set(table.signature, { ...table, address });
  }
  return found;
}

test('the RSDP is at 0xe0000, revision 2, with both checksums and the XSDT address', () => {
  const { memory, layout } = write({ cpus: 1 });
  assert.equal(layout.rsdp, BIOS_AREA);
  assert.equal(ascii(memory, BIOS_AREA, 8), 'RSD PTR ');
  assert.equal(sum(memory.read(BIOS_AREA, 20)), 0, 'ACPI 1.0 checksum over the first 20 bytes');
  assert.equal(sum(memory.read(BIOS_AREA, 36)), 0, 'extended checksum over all 36 bytes');
  assert.equal(ascii(memory, BIOS_AREA + 9, 6), 'TSVMM ');
  assert.equal(memory.readU8(BIOS_AREA + 15), 2);
  assert.equal(memory.readU32(BIOS_AREA + 16), 0, 'no RSDT');
  assert.equal(memory.readU32(BIOS_AREA + 20), 36);
  const xsdt = layout.tables.find((t) => t.signature === 'XSDT')!;
  assert.equal(memory.readU64(BIOS_AREA + 24), BigInt(xsdt.address));
});

test('the XSDT lists the FADT and the MADT, and every table reports where it is', () => {
  const { memory, layout } = write({ cpus: 2 });
  const tables = tablesFromRsdp(memory, layout.rsdp);
  assert.deepEqual([...tables.keys()], ['FACP', 'APIC']);
  assert.deepEqual(layout.tables.map((t) => t.signature), ['DSDT', 'FACP', 'APIC', 'XSDT']);
  for (const t of layout.tables) {
    const parsed = readTable(memory, t.address);
    assert.equal(parsed.signature, t.signature);
    assert.equal(parsed.length, t.length);
    assert.equal(ascii(memory, t.address + 16, 8), `TSVM${t.signature}`, 'OEM table ID');
    assert.ok(t.address >= layout.rsdp + 36 && t.address + t.length <= layout.end);
  }
  const xsdt = readTable(memory, layout.tables[3].address);
  assert.equal(xsdt.revision, 1);
  assert.equal(xsdt.length, 36 + 2 * 8);
});

test('the FADT is revision 6.5, hardware-reduced, with reset and sleep registers on the acpi-pm ports', () => {
  const { memory, layout } = write({ cpus: 1 });
  const fadt = tablesFromRsdp(memory, layout.rsdp).get('FACP')!;
  const v = fadt.view;
  assert.equal(fadt.length, 276);
  assert.equal(fadt.revision, 6);
  assert.equal(v.getUint8(131), 5, 'minor revision');

  const flags = v.getUint32(112, true);
  assert.equal(flags & (1 << 20), 1 << 20, 'HW_REDUCED_ACPI');
  assert.equal(flags & (1 << 10), 1 << 10, 'RESET_REG_SUP');
  assert.equal(flags & 0x30, 0x30, 'no fixed power or sleep button');

  // No FACS, no 32-bit DSDT pointer, no PM1 blocks or PM timer.
  assert.equal(v.getUint32(36, true), 0);
  assert.equal(v.getUint32(40, true), 0);
  assert.equal(v.getBigUint64(132, true), 0n);
  for (let offset = 56; offset < 92; offset += 4) assert.equal(v.getUint32(offset, true), 0);
  assert.equal(v.getUint16(46, true), 9, 'SCI_INT: no override may be taken for the SCI');

  const dsdt = layout.tables.find((t) => t.signature === 'DSDT')!;
  assert.equal(v.getBigUint64(140, true), BigInt(dsdt.address), 'X_DSDT');

  const gas = (offset: number) => ({
    space: v.getUint8(offset), width: v.getUint8(offset + 1), bitOffset: v.getUint8(offset + 2),
    access: v.getUint8(offset + 3), address: v.getBigUint64(offset + 4, true),
  });
  const ioByte = (port: number) => ({ space: 1, width: 8, bitOffset: 0, access: 1, address: BigInt(port) });
  assert.deepEqual(gas(116), ioByte(0x602), 'RESET_REG');
  assert.equal(v.getUint8(128), 1, 'RESET_VALUE');
  assert.deepEqual(gas(244), ioByte(0x600), 'SLEEP_CONTROL_REG');
  assert.deepEqual(gas(256), ioByte(0x601), 'SLEEP_STATUS_REG');
  assert.equal(Buffer.from(fadt.bytes.subarray(268, 276)).toString('latin1'), 'TSVMM\0\0\0', 'hypervisor vendor identity');

  const bootArch = v.getUint16(109, true);
  assert.equal(bootArch & 0x1, 0x1, 'legacy devices: the COM port');
  assert.equal(bootArch & 0x2, 0, 'no 8042');
  assert.equal(bootArch & 0x24, 0x24, 'no VGA, no CMOS RTC');
});

test("the FADT's boot flags say whether there is a keyboard controller and a CMOS RTC", () => {
  const { memory, layout } = write({ cpus: 1, devices: { serialPorts: [], i8042: true, cmosRtc: true } });
  const bootArch = tablesFromRsdp(memory, layout.rsdp).get('FACP')!.view.getUint16(109, true);
  // LEGACY_DEVICES (the keyboard controller), 8042, VGA_NOT_PRESENT; CMOS_RTC_NOT_PRESENT clear.
  assert.equal(bootArch, 0x1 | 0x2 | 0x4);
});

test('the devices to describe can be read from a machine device list', () => {
  assert.deepEqual(
    acpiDevicesOf([{ kind: 'serial' }, { kind: 'serial', base: 0x2f8, irq: 3 }, { kind: 'i8042' }, { kind: 'rtc' }, { kind: 'debug-exit' }, { kind: 'acpi-pm' }]),
    { serialPorts: [COM1, { base: 0x2f8, irq: 3 }], i8042: true, cmosRtc: true, pmBase: 0x600 },
  );
  assert.deepEqual(acpiDevicesOf([{ kind: 'acpi-pm', base: 0x700 }]), { serialPorts: [], i8042: false, cmosRtc: false, pmBase: 0x700 });
  assert.throws(() => acpiDevicesOf([{ kind: 'serial' }]), /needs the acpi-pm device/);
});

test('the FADT follows the acpi-pm device when it moves', () => {
  const { memory, layout } = write({ cpus: 1, devices: { serialPorts: [], pmBase: 0x700 } });
  const v = tablesFromRsdp(memory, layout.rsdp).get('FACP')!.view;
  assert.equal(v.getBigUint64(120, true), 0x702n);
  assert.equal(v.getBigUint64(248, true), 0x700n);
  assert.equal(v.getBigUint64(260, true), 0x701n);
  assert.equal(v.getUint16(109, true) & 0x1, 0, 'no legacy devices without COM ports');
});

interface MadtEntry {
  type: number;
  bytes: Uint8Array;
}

function madtEntries(madt: ParsedTable): MadtEntry[] {
  const entries: MadtEntry[] = [];
  for (let offset = 44; offset < madt.length; ) {
    const length = madt.bytes[offset + 1];
    assert.ok(length >= 2, 'entry length');
    entries.push({ type: madt.bytes[offset], bytes: madt.bytes.subarray(offset, offset + length) });
    offset += length;
  }
  return entries;
}

const u32 = (b: Uint8Array, offset: number) => new DataView(b.buffer, b.byteOffset).getUint32(offset, true);
const u16 = (b: Uint8Array, offset: number) => new DataView(b.buffer, b.byteOffset).getUint16(offset, true);

for (const cpus of [1, 4]) {
  test(`the MADT of ${cpus} vCPU(s): local APICs, the I/O APIC, LINT1 NMI`, () => {
    const { memory, layout } = write({ cpus });
    const madt = tablesFromRsdp(memory, layout.rsdp).get('APIC')!;
    assert.equal(madt.revision, 6);
    assert.equal(madt.view.getUint32(36, true), 0xfee0_0000, 'local APIC address');
    assert.equal(madt.view.getUint32(40, true), 1, 'PCAT_COMPAT');
    const entries = madtEntries(madt);

    const lapics = entries.filter((e) => e.type === 0);
    assert.equal(lapics.length, cpus);
    lapics.forEach((e, i) => {
      assert.equal(e.bytes.length, 8);
      assert.equal(e.bytes[2], i, 'ACPI processor UID');
      assert.equal(e.bytes[3], i, 'APIC ID');
      assert.equal(u32(e.bytes, 4), 1, 'enabled');
    });

    const ioApics = entries.filter((e) => e.type === 1);
    assert.equal(ioApics.length, 1);
    assert.equal(ioApics[0].bytes.length, 12);
    assert.equal(ioApics[0].bytes[2], cpus, 'I/O APIC ID after the local APICs');
    assert.equal(u32(ioApics[0].bytes, 4), 0xfec0_0000);
    assert.equal(u32(ioApics[0].bytes, 8), 0, 'GSI base');

    // The PIT is on input 0 under KVM's default routing, and hardware-reduced ACPI has no SCI.
    assert.equal(entries.filter((e) => e.type === 2).length, 0, 'no interrupt source override');

    const nmis = entries.filter((e) => e.type === 4);
    assert.equal(nmis.length, 1);
    assert.equal(nmis[0].bytes.length, 6);
    assert.equal(nmis[0].bytes[2], 0xff, 'all processors');
    assert.equal(u16(nmis[0].bytes, 3), 0x5, 'edge, active high');
    assert.equal(nmis[0].bytes[5], 1, 'LINT1');

    assert.equal(madt.length, 44 + 8 * cpus + 12 + 6);
  });
}

test('with the PIT on GSI 2, as on a PC, the MADT overrides IRQ0', () => {
  const { memory, layout } = write({ cpus: 2, devices: { serialPorts: [COM1], pitGsi: 2 } });
  const madt = tablesFromRsdp(memory, layout.rsdp).get('APIC')!;
  const overrides = madtEntries(madt).filter((e) => e.type === 2);
  // ISA bus, IRQ 0, GSI 2, flags 0 (conforming: the ISA bus's edge, active high).
  assert.deepEqual(overrides.map((e) => [...e.bytes]), [[2, 10, 0, 0, 2, 0, 0, 0, 0, 0]]);
  assert.equal(madt.length, 44 + 8 * 2 + 12 + 10 + 6);
});

test('the DSDT is revision 2 and holds \\_S5 with SLP_TYP 5 and the COM1 device', () => {
  const { memory, layout } = write({ cpus: 1 });
  const dsdt = readTable(memory, layout.tables[0].address);
  assert.equal(dsdt.signature, 'DSDT');
  assert.equal(dsdt.revision, 2);
  const aml = Buffer.from(dsdt.bytes.subarray(36));
  // Name (_S5, Package (4) { 5, 0, 0, 0 }) comes first, at the root, then Scope (\_SB).
  assert.deepEqual([...aml.subarray(0, 14)], [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00, 0x10]);
  assert.ok(aml.includes(Buffer.from('COM1\x08_HID\x0c\x41\xd0\x05\x01', 'latin1')));
});

test('tables can go elsewhere; placements that cannot work are refused', () => {
  const { memory, layout } = write({ cpus: 2, rsdpAddress: 0xf0000, tablesAddress: 0x9_0000 });
  assert.equal(layout.rsdp, 0xf0000);
  assert.equal(layout.tables[0].address, 0x9_0000);
  assert.equal(layout.end, 0xf0000 + 36);
  assert.equal(tablesFromRsdp(memory, 0xf0000).size, 2);

  assert.throws(() => write({ cpus: 1, rsdpAddress: 0xe0008 }), /not 16-byte aligned/);
  assert.throws(() => write({ cpus: 1, rsdpAddress: 0xe0100, tablesAddress: 0xe0000 }), /overlap the RSDP/);
  assert.throws(() => write({ cpus: 0 }), /1 to 255 vCPUs/);
  assert.throws(() => write({ cpus: 256 }), /1 to 255 vCPUs/);
});
