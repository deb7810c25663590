import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as aml from '../../src/acpi/aml.js';
import { dsdtAml } from '../../src/acpi/dsdt.js';
import { ioPorts, irq, memory32Fixed, resourceTemplate } from '../../src/acpi/resource-template.js';

/** Bytes of an ASCII name, for writing expected encodings. */
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

function assertBytes(actual: Uint8Array, expected: number[]): void {
  assert.deepEqual([...actual], expected);
}

test('PkgLength: one byte up to 63, then 2, 3 and 4 bytes, counting itself', () => {
  assertBytes(aml.pkgLength(0), [0x01]);
  assertBytes(aml.pkgLength(62), [0x3f]);
  // 63 + 2 = 65 = 0x41: lead byte 0x40 | 0x1, then 0x41 >> 4.
  assertBytes(aml.pkgLength(63), [0x41, 0x04]);
  assertBytes(aml.pkgLength(100), [0x46, 0x06]);
  assertBytes(aml.pkgLength(0xffd), [0x4f, 0xff]); // 0xfff, the most two bytes hold
  // 4094 + 3 = 0x1001.
  assertBytes(aml.pkgLength(4094), [0x81, 0x00, 0x01]);
  // 0xffffd + 4 = 0x100001.
  assertBytes(aml.pkgLength(0xffffd), [0xc1, 0x00, 0x00, 0x01]);
  assert.throws(() => aml.pkgLength(0x0fff_fffc), /longer than/);
});

test('integers take the shortest encoding', () => {
  assertBytes(aml.integer(0), [0x00]); // ZeroOp
  assertBytes(aml.integer(1), [0x01]); // OneOp
  assertBytes(aml.integer(5), [0x0a, 0x05]);
  assertBytes(aml.integer(0x3f8), [0x0b, 0xf8, 0x03]);
  assertBytes(aml.integer(0xfec0_0000), [0x0c, 0x00, 0x00, 0xc0, 0xfe]);
  assertBytes(aml.integer(2 ** 32), [0x0e, 0, 0, 0, 0, 1, 0, 0, 0]);
  assertBytes(aml.integer(0xffff_ffff_ffff_ffffn), [0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => aml.integer(-1));
});

test('strings end in NUL', () => {
  assertBytes(aml.string('TSVMM'), [0x0d, ...ascii('TSVMM'), 0x00]);
  assert.throws(() => aml.string('a\0b'));
});

test('EISAID("PNP0501") is 0x0105D041', () => {
  assert.equal(aml.eisaIdValue('PNP0501'), 0x0105d041);
  assert.equal(aml.eisaIdValue('PNP0A08'), 0x080ad041);
  assertBytes(aml.eisaId('PNP0501'), [0x0c, 0x41, 0xd0, 0x05, 0x01]);
  assert.throws(() => aml.eisaId('pnp0501'));
});

test('name strings: segments padded with _, root and parent prefixes, dual and multi names', () => {
  assertBytes(aml.nameString('_S5'), ascii('_S5_'));
  assertBytes(aml.nameString('\\_SB'), [0x5c, ...ascii('_SB_')]);
  assertBytes(aml.nameString('^COM1'), [0x5e, ...ascii('COM1')]);
  assertBytes(aml.nameString('\\_SB.PCI0'), [0x5c, 0x2e, ...ascii('_SB_PCI0')]);
  assertBytes(aml.nameString('\\_SB.PCI0.S08'), [0x5c, 0x2f, 3, ...ascii('_SB_PCI0S08_')]);
  assertBytes(aml.nameString('\\'), [0x5c, 0x00]);
  assert.throws(() => aml.nameString('com1'), /not an ACPI name segment/);
  assert.throws(() => aml.nameString('TOOLONG'), /not an ACPI name segment/);
});

test('Name, Package, Buffer, Method and Return opcodes', () => {
  // NameOp 0x08, name, value.
  assertBytes(aml.name('_UID', aml.integer(0)), [0x08, ...ascii('_UID'), 0x00]);
  // PackageOp 0x12, PkgLength 5, 2 elements.
  assertBytes(aml.pkg([aml.integer(5), aml.integer(0)]), [0x12, 0x05, 0x02, 0x0a, 0x05, 0x00]);
  // BufferOp 0x11, PkgLength 6, size 3.
  assertBytes(aml.buffer(Uint8Array.of(1, 2, 3)), [0x11, 0x06, 0x0a, 0x03, 1, 2, 3]);
  // MethodOp 0x14, PkgLength 9, name, flags (0 args, not serialized), Return (0x0f).
  assertBytes(aml.method('_STA', {}, [aml.returnValue(aml.integer(0x0f))]), [0x14, 0x09, ...ascii('_STA'), 0x00, 0xa4, 0x0a, 0x0f]);
  assert.equal(aml.method('_OSC', { args: 4, serialized: true }, [])[6], 0x0c);
  assert.throws(() => aml.method('_OSC', { args: 8 }, []));
});

test('a package of more than 255 elements is a VarPackage', () => {
  const encoded = aml.pkg(Array.from({ length: 300 }, () => aml.integer(0)));
  // VarPackageOp, 2-byte PkgLength (3 + 300 zeros + 2), count as a WordConst.
  assertBytes(encoded.subarray(0, 6), [0x13, 0x41, 0x13, 0x0b, 0x2c, 0x01]);
  assert.equal(encoded.length, 1 + 2 + 3 + 300);
});

test('Scope and Device wrap their terms in a PkgLength', () => {
  // DeviceOp is 0x5B 0x82.
  assertBytes(aml.device('DEV0', []), [0x5b, 0x82, 0x05, ...ascii('DEV0')]);
  assertBytes(aml.scope('\\_SB', []), [0x10, 0x06, 0x5c, ...ascii('_SB_')]);
  // Name (4) and a 72-byte buffer: 76 bytes, 78 = 0x4e with the two-byte PkgLength.
  const big = aml.device('BIG0', [aml.buffer(new Uint8Array(67))]);
  assertBytes(big.subarray(0, 4), [0x5b, 0x82, 0x4e, 0x04]);
  assert.equal(big.length, 2 + 0x4e);
});

test('resource descriptors: IO, IRQ, Memory32Fixed, and the End Tag', () => {
  assertBytes(ioPorts(0x3f8, 8), [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08]);
  assertBytes(irq([4], { trigger: 'edge', polarity: 'high' }), [0x23, 0x10, 0x00, 0x01]);
  assertBytes(irq([5, 11], { trigger: 'level', polarity: 'low', shared: true }), [0x23, 0x20, 0x08, 0x18]);
  assertBytes(memory32Fixed(0xfec0_0000, 0x1000), [0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00]);
  assertBytes(memory32Fixed(0xfed0_0000, 0x400, false).subarray(3, 4), [0x00]);
  assertBytes(resourceTemplate([]), [0x11, 0x05, 0x0a, 0x02, 0x79, 0x00]);
  assert.throws(() => irq([16], { trigger: 'edge', polarity: 'high' }), /not an ISA interrupt/);
  assert.throws(() => ioPorts(0xfffc, 8), /do not fit/);
});

test('the DSDT holds \\_S5 and COM1, byte for byte as iasl compiles the same ASL', () => {
  const body = dsdtAml({ serialPorts: [{ base: 0x3f8, irq: 4 }], i8042: false, cmosRtc: false, pmBase: 0x600 });
  const expected = [
    // Name (_S5, Package (4) { 5, Zero, Zero, Zero })
    0x08, ...ascii('_S5_'), 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00,
    // Scope (\_SB) {
    0x10, 0x4e, 0x05, ...ascii('_SB_'),
    //   Device (COM1) {
    0x5b, 0x82, 0x2c, ...ascii('COM1'),
    //     Name (_HID, EisaId ("PNP0501"))
    0x08, ...ascii('_HID'), 0x0c, 0x41, 0xd0, 0x05, 0x01,
    //     Name (_UID, Zero)
    0x08, ...ascii('_UID'), 0x00,
    //     Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 1, 8) IRQ (Edge, ActiveHigh, Exclusive) {4} })
    0x08, ...ascii('_CRS'), 0x11, 0x11, 0x0a, 0x0e,
    0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
    0x23, 0x10, 0x00, 0x01,
    0x79, 0x00,
    //   Device (PMRS) { Name (_HID, EisaId ("PNP0C02")) Name (_UID, Zero) Name (_CRS, ResourceTemplate () { IO (Decode16, 0x600, 0x600, 1, 4) }) }
    0x5b, 0x82, 0x28, ...ascii('PMRS'),
    0x08, ...ascii('_HID'), 0x0c, 0x41, 0xd0, 0x0c, 0x02,
    0x08, ...ascii('_UID'), 0x00,
    0x08, ...ascii('_CRS'), 0x11, 0x0d, 0x0a, 0x0a,
    0x47, 0x01, 0x00, 0x06, 0x00, 0x06, 0x01, 0x04,
    0x79, 0x00,
  ];
  assertBytes(body, expected);
});

test('the DSDT has one device per serial port, numbered from COM1', () => {
  const body = dsdtAml({ serialPorts: [{ base: 0x3f8, irq: 4 }, { base: 0x2f8, irq: 3 }], i8042: false, cmosRtc: false, pmBase: 0x600 });
  const text = Buffer.from(body).toString('latin1');
  assert.ok(text.includes('COM1') && text.includes('COM2'));
  // COM2's _UID is One, its IRQ mask 1 << 3.
  assert.ok(text.includes('COM2\x08_HID'));
  assert.ok(Buffer.from(body).includes(Buffer.from([0x08, ...ascii('_UID'), 0x01])));
  assert.ok(Buffer.from(body).includes(Buffer.from([0x23, 0x08, 0x00, 0x01])));
});

test('the DSDT describes the keyboard controller and the CMOS RTC when the machine has them', () => {
  const devices = { serialPorts: [], pmBase: 0x600 };
  const without = Buffer.from(dsdtAml({ ...devices, i8042: false, cmosRtc: false }));
  const body = Buffer.from(dsdtAml({ ...devices, i8042: true, cmosRtc: true }));
  const keyboard = Buffer.from([
    // Device (KBD) { Name (_HID, EisaId ("PNP0303"))
    0x5b, 0x82, 0x2e, ...ascii('KBD_'), 0x08, ...ascii('_HID'), 0x0c, 0x41, 0xd0, 0x03, 0x03,
    // Name (_CRS, ResourceTemplate () { IO (Decode16, 0x60, 0x60, 1, 1) IO (Decode16, 0x64, 0x64, 1, 1) IRQ (Edge, ActiveHigh, Exclusive) {1} }) }
    0x08, ...ascii('_CRS'), 0x11, 0x19, 0x0a, 0x16,
    0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,
    0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01,
    0x23, 0x02, 0x00, 0x01,
    0x79, 0x00,
  ]);
  const rtc = Buffer.from([
    // Device (RTC) { Name (_HID, EisaId ("PNP0B00")) Name (_CRS, ResourceTemplate () { IO (Decode16, 0x70, 0x70, 1, 2) }) }
    0x5b, 0x82, 0x22, ...ascii('RTC_'), 0x08, ...ascii('_HID'), 0x0c, 0x41, 0xd0, 0x0b, 0x00,
    0x08, ...ascii('_CRS'), 0x11, 0x0d, 0x0a, 0x0a,
    0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02,
    0x79, 0x00,
  ]);
  assert.ok(body.includes(keyboard));
  assert.ok(body.includes(rtc));
  // One more byte: the \_SB scope's PkgLength grows from one byte to two.
  assert.equal(body.length, without.length + keyboard.length + rtc.length + 1);
  assert.ok(!without.includes(Buffer.from('KBD_')) && !without.includes(Buffer.from('RTC_')));
});

test('the VM generation ID: VGEN with the IDs Linux and Windows match and ADDR, a GED whose _EVT notifies it', () => {
  const devices = { serialPorts: [], pmBase: 0x600, i8042: false, cmosRtc: false };
  const body = Buffer.from(dsdtAml({ ...devices, vmGenId: { address: 0xef000, gsi: 5 } }));
  assert.ok(!Buffer.from(dsdtAml(devices)).includes('VGEN'), 'only when the machine has it');
  const has = (bytes: number[], what: string) => assert.ok(body.includes(Buffer.from(bytes)), what);
  has([0x08, ...ascii('_HID'), 0x0d, ...ascii('VMGENCTR'), 0x00], 'Name (_HID, "VMGENCTR")');
  has([0x08, ...ascii('_CID'), 0x0d, ...ascii('VM_Gen_Counter'), 0x00], 'Name (_CID, "VM_Gen_Counter")');
  // Name (ADDR, Package (2) { 0x000EF000, Zero })
  has([0x08, ...ascii('ADDR'), 0x12, 0x08, 0x02, 0x0c, 0x00, 0xf0, 0x0e, 0x00, 0x00], 'ADDR');
  has([0x08, ...ascii('_HID'), 0x0d, ...ascii('ACPI0013'), 0x00], 'Name (_HID, "ACPI0013")');
  // Name (_CRS, ResourceTemplate () { IRQ (Edge, ActiveHigh, Exclusive) {5} })
  has([0x08, ...ascii('_CRS'), 0x11, 0x09, 0x0a, 0x06, 0x23, 0x20, 0x00, 0x01, 0x79, 0x00], 'the GED\'s interrupt');
  // Method (_EVT, 1, NotSerialized) { Notify (\_SB.VGEN, 0x80) }
  has([0x14, 0x13, ...ascii('_EVT'), 0x01, 0x86, 0x5c, 0x2e, ...ascii('_SB_'), ...ascii('VGEN'), 0x0a, 0x80], '_EVT');
});
