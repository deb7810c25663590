import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciTestdev, pciTestdevIoeventfds } from '../../src/devices/debug/pci-testdev.js';
import { DeviceState } from '../../src/devices/device-state.js';
import { Command, Reg } from '../../src/devices/pci/config-space.js';

const WIRING = { slot: 3, bar0: 0xc100_0000, bar1: 0xc000 };
const NAMES = ['mmio-no-eventfd', 'mmio-wildcard-eventfd', 'mmio-datamatch-eventfd', 'portio-no-eventfd', 'portio-wildcard-eventfd', 'portio-datamatch-eventfd'];

/** A pci-testdev with config-space and BAR accesses as a driver makes them. */
function testdev() {
  const fn = new PciTestdev(new DeviceState(DeviceState.allocate(PciTestdev.stateSize)), WIRING);
  const bars = [fn.bar0, fn.bar1];
  const bytesOf = (value: number, size: number) => Uint8Array.from({ length: size }, (_, i) => Math.floor(value / 256 ** i) & 0xff);
  const valueOf = (data: Uint8Array) => data.reduceRight((v, b) => v * 256 + b, 0);
  const d = {
    configRead: (offset: number, size: number) => {
      const data = new Uint8Array(size);
      fn.configRead(offset, data);
      return valueOf(data);
    },
    configWrite: (offset: number, size: number, value: number) => fn.configWrite(offset, bytesOf(value, size)),
    read: (bar: number, offset: number, size = 1) => {
      const data = new Uint8Array(size);
      bars[bar].read(offset, data);
      return valueOf(data);
    },
    write: (bar: number, offset: number, value: number, size = 1) => bars[bar].write(offset, bytesOf(value, size)),
    /** What a driver reads of the selected test's header. */
    header: (bar = 0) => {
      let name = '';
      for (let at = 16, c; (c = d.read(bar, at)) !== 0; at++) name += String.fromCharCode(c);
      return { test: d.read(bar, 0), width: d.read(bar, 1), offset: d.read(bar, 4, 4), data: d.read(bar, 8), count: d.read(bar, 12, 4), name };
    },
    enable: () => d.configWrite(Reg.COMMAND, 2, Command.IO | Command.MEMORY),
  };
  return d;
}

test("the header: Red Hat's test device 1b36:0005, revision 0, class 0x00ff as QEMU writes PCI_CLASS_OTHERS, QEMU's subsystem, no interrupt pin", () => {
  const d = testdev();
  assert.equal(d.configRead(Reg.VENDOR_ID, 4), 0x0005_1b36);
  assert.equal(d.configRead(Reg.REVISION_ID, 4), 0x00ff_0000, 'revision 0, programming interface 0, subclass 0xff, class 0');
  assert.equal(d.configRead(Reg.SUBSYSTEM_VENDOR_ID, 4), 0x1100_1af4);
  assert.equal(d.configRead(Reg.HEADER_TYPE, 1), 0);
  assert.equal(d.configRead(Reg.STATUS, 2), 0, 'no capability list');
  assert.equal(d.configRead(Reg.INTERRUPT_PIN, 1), 0);
});

test('BAR0 is 4 KiB of memory, BAR1 256 I/O ports: each sizes, is put back where the VMM placed it, and answers only with its decoding on', () => {
  const d = testdev();
  assert.equal(d.configRead(Reg.BAR0, 4), WIRING.bar0, '32-bit non-prefetchable memory');
  assert.equal(d.configRead(Reg.BAR0 + 4, 4), WIRING.bar1 | 1, 'I/O space');
  d.configWrite(Reg.BAR0, 4, 0xffff_ffff);
  d.configWrite(Reg.BAR0 + 4, 4, 0xffff_ffff);
  assert.equal(d.configRead(Reg.BAR0, 4), 0xffff_f000);
  assert.equal(d.configRead(Reg.BAR0 + 4, 4), 0xffff_ff01);
  d.configWrite(Reg.BAR0, 4, WIRING.bar0);
  d.configWrite(Reg.BAR0 + 4, 4, 0x1234);
  assert.equal(d.configRead(Reg.BAR0 + 4, 4), WIRING.bar1 | 1, 'the function does not move');
  for (let bar = 2; bar < 6; bar++) {
    d.configWrite(Reg.BAR0 + 4 * bar, 4, 0xffff_ffff);
    assert.equal(d.configRead(Reg.BAR0 + 4 * bar, 4), 0, `BAR${bar} is not implemented`);
  }

  d.write(0, 0, 0);
  assert.equal(d.read(0, 1), 0xff, 'no decoding at power-on');
  d.configWrite(Reg.COMMAND, 2, 0xffff);
  assert.equal(d.configRead(Reg.COMMAND, 2) & (Command.IO | Command.MEMORY), Command.IO | Command.MEMORY, 'an I/O BAR makes IO decoding writable');
  d.configWrite(Reg.COMMAND, 2, Command.MEMORY);
  d.write(1, 0, 0);
  d.write(0, 0, 0);
  assert.deepEqual([d.read(0, 1), d.read(1, 1)], [1, 0xff], 'memory on, I/O off: only BAR0 took the selection of test 0');
  d.configWrite(Reg.COMMAND, 2, Command.IO);
  assert.deepEqual([d.read(0, 1), d.read(1, 1)], [0xff, 1]);
});

test("QEMU's table: a write to offset 0 of a BAR selects test n of that BAR's three; either BAR reads its header", () => {
  const d = testdev();
  d.enable();
  assert.deepEqual(d.header(), { test: 0, width: 0, offset: 0, data: 0, count: 0, name: '' }, 'no test selected: all reads 0');
  const seen = [];
  for (const bar of [0, 1]) {
    for (let n = 0; n < 3; n++) {
      d.write(bar, 0, n);
      seen.push(d.header(1 - bar));
    }
  }
  assert.deepEqual(seen, NAMES.map((name, i) => ({
    test: i, width: 1, offset: (i < 3 ? 0x800 : 0x80) + i, data: name.includes('wildcard') ? 0xce : 0xfa, count: 0, name,
  })));
  assert.equal(d.read(0, 16 + NAMES[5].length), 0, 'the NUL');
  assert.equal(d.read(0, 0x40, 4), 0, 'past the header');
  d.write(1, 0, 3);
  assert.equal(d.read(0, 1), 0, 'test 3 of a BAR is none');
});

test('a byte at the doorbell is counted when it is the data, any byte for the wildcard tests; selecting a test zeroes its count', () => {
  const d = testdev();
  d.enable();
  const rings = (bar: number, n: number, bytes: number[]) => {
    d.write(bar, 0, n);
    const { offset, data } = d.header();
    for (const b of bytes) d.write(bar, offset, b === -1 ? data : b);
    return d.header().count;
  };
  // -1 is the test's own data byte.
  assert.equal(rings(0, 0, [-1, -1, 0x00, -1]), 3, 'mmio-no-eventfd');
  assert.equal(rings(0, 1, [-1, 0x00, 0x12]), 3, 'mmio-wildcard-eventfd, for the writes no ioeventfd took');
  assert.equal(rings(0, 2, [-1, 0xfb]), 1, 'mmio-datamatch-eventfd');
  assert.equal(rings(1, 0, [-1, 0xce]), 1, 'portio-no-eventfd');
  assert.equal(rings(1, 2, [-1, -1]), 2, 'portio-datamatch-eventfd');
  d.write(1, 0, 2);
  assert.equal(d.header().count, 0, 'selected again, counted from 0');

  d.write(0, 0, 2);
  d.write(0, 0x801, 0xfa00, 2);
  assert.equal(d.header().count, 1, 'a word from the byte before the doorbell: its high byte rings it');
  d.write(0, 0x803, 0xfa);
  d.write(0, 0x800, 0xfa);
  assert.equal(d.header().count, 1, "another test's doorbell");
  d.write(1, 0, 0);
  d.write(0, 0x83, 0xfa);
  assert.equal(d.header().count, 1, 'the doorbell offset through the other BAR rings it too, as in QEMU');
});

test("the eventfd tests' doorbells get QEMU's KVM ioeventfds: any width for the memory wildcard one, a byte for the rest, datamatch 0xfa", () => {
  assert.deepEqual(pciTestdevIoeventfds(WIRING), [
    { addr: 0xc100_0801, len: 0 },
    { addr: 0xc100_0802, len: 1, datamatch: 0xfan },
    { addr: 0xc084, len: 1, pio: true },
    { addr: 0xc085, len: 1, pio: true, datamatch: 0xfan },
  ]);
});
