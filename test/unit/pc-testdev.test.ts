import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from '../../src/devices/bus.js';
import type { DeviceContext } from '../../src/devices/context.js';
import { attachDevice, machineDevice, placements } from '../../src/devices/registry.js';

/** pc-testdev on a machine's buses, with the interrupt lines it drove. */
function machine() {
  const buses = { pio: new Bus('pio'), mmio: new Bus('mmio') };
  const irqs: [number, boolean][] = [];
  const ctx: DeviceContext = { vcpuId: 0, console: () => {}, irq: (line, level) => irqs.push([line, level]), stop: () => {} };
  attachDevice(machineDevice({ kind: 'pc-testdev' }), buses, ctx);
  /** A guest access of `size` bytes, as the vCPU loop makes it; undefined where no device takes all of it. */
  const access = (bus: 'pio' | 'mmio', address: number, size: number, value?: number): number | undefined => {
    const entry = buses[bus].find(address, size);
    if (entry === undefined) return undefined;
    const data = new Uint8Array(size);
    if (value === undefined) {
      entry.device.read(address - entry.base, data);
      return data.reduceRight((v, b) => v * 256 + b, 0);
    }
    for (let i = 0; i < size; i++) data[i] = Math.floor(value / 256 ** i) & 0xff;
    entry.device.write(address - entry.base, data);
    return undefined;
  };
  return {
    irqs,
    inb: (port: number) => access('pio', port, 1), inw: (port: number) => access('pio', port, 2), inl: (port: number) => access('pio', port, 4),
    outb: (port: number, v: number) => access('pio', port, 1, v), outw: (port: number, v: number) => access('pio', port, 2, v),
    outl: (port: number, v: number) => access('pio', port, 4, v),
    read: (address: number, size: number) => access('mmio', address, size),
    write: (address: number, size: number, v: number) => access('mmio', address, size, v),
    answers: (bus: 'pio' | 'mmio', address: number, size: number) => buses[bus].find(address, size) !== undefined,
  };
}

test("QEMU's five regions: three 4-port registers at 0xe0, 24 IRQ-line ports at 0x2000, 64 KiB of iomem at 0xff000000", () => {
  assert.deepEqual(placements({ kind: 'pc-testdev' }), [
    { name: 'pc-testdev ioport', bus: 'pio', base: 0xe0, length: 4 },
    { name: 'pc-testdev flush-page', bus: 'pio', base: 0xe4, length: 4 },
    { name: 'pc-testdev ioport-byte', bus: 'pio', base: 0xe8, length: 4 },
    { name: 'pc-testdev irq-line', bus: 'pio', base: 0x2000, length: 24 },
    { name: 'pc-testdev iomem', bus: 'mmio', base: 0xff00_0000, length: 0x1_0000 },
  ]);
});

test('the ioport scratch register takes bytes, words and dwords at any offset inside it, and 0xe8 is a view of the same register', () => {
  const m = machine();
  assert.equal(m.inl(0xe0), 0);
  m.outl(0xe0, 0x1234_5678);
  assert.equal(m.inl(0xe0), 0x1234_5678);
  m.outb(0xe1, 0xab);
  assert.equal(m.inl(0xe0), 0x1234_ab78);
  m.outw(0xe2, 0xcdef);
  assert.equal(m.inl(0xe0), 0xcdef_ab78);
  assert.equal(m.inb(0xe3), 0xcd);
  assert.equal(m.inw(0xe1), 0xefab);
  assert.equal(m.inl(0xe8), 0xcdef_ab78, 'the byte view reads the same register');
  m.outb(0xeb, 0x99);
  m.outw(0xe8, 0x4321);
  assert.equal(m.inl(0xe0), 0x99ef_4321);
  assert.equal(m.answers('pio', 0xe2, 4), false, 'a dword at 0xe2 is not all inside the register');
});

test('the flush-page port takes the write of an address and does nothing; it reads 0', () => {
  const m = machine();
  m.outl(0xe0, 0x1122_3344);
  m.outl(0xe4, 0x0010_0000);
  assert.equal(m.inl(0xe4), 0);
  assert.equal(m.inb(0xe5), 0);
  assert.equal(m.inl(0xe0), 0x1122_3344);
  assert.deepEqual(m.irqs, []);
});

test('a byte written to 0x2000 + n raises ISA IRQ n when it is not 0 and lowers it when it is; wider writes and lines 16-23 do nothing', () => {
  const m = machine();
  m.outb(0x2005, 1);
  m.outb(0x2005, 0);
  m.outb(0x200e, 0x80);
  m.outb(0x200f, 0);
  m.outw(0x2003, 0x0101);
  m.outl(0x2008, 1);
  m.outb(0x2010, 1);
  m.outb(0x2017, 1);
  assert.deepEqual(m.irqs, [[5, true], [5, false], [14, true], [15, false]]);
  assert.equal(m.inb(0x2005), 0);
  assert.equal(m.inw(0x2000), 0);
  assert.equal(m.answers('pio', 0x2018, 1), false);
});

test('iomem reads back what was written, at any width and offset; it starts as zeros', () => {
  const m = machine();
  const base = 0xff00_0000;
  assert.equal(m.read(base + 0x100, 4), 0);
  m.write(base, 4, 0xdead_beef);
  m.write(base + 5, 1, 0x5a);
  m.write(base + 0xfffe, 2, 0x1357);
  m.write(base + 0x8000, 8, 2 ** 40 + 7);
  assert.equal(m.read(base, 4), 0xdead_beef);
  assert.equal(m.read(base, 8), 0x5a00_dead_beef);
  assert.equal(m.read(base + 1, 2), 0xadbe);
  assert.equal(m.read(base + 0xfffe, 2), 0x1357);
  assert.equal(m.read(base + 0x8000, 8), 2 ** 40 + 7);
  assert.equal(m.answers('mmio', base + 0xfffe, 4), false, 'the window ends at 0xff00ffff');
});
