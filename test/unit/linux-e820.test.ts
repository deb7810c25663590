import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e820Map, E820_ACPI, E820_MAX_ENTRIES, E820_RAM, E820_RESERVED, type E820Entry } from '../../src/boot/linux/e820.js';
import { LinuxLoadError } from '../../src/boot/linux/errors.js';
import { GiB, MiB, planRam } from '../../src/memory/layout.js';

const entry = (addr: number, end: number, type: number): E820Entry => ({ addr, size: end - addr, type });

test('the map of RAM below the MMIO hole: low RAM, the BIOS area reserved, RAM from 1 MiB', () => {
  assert.deepEqual(e820Map(planRam(256 * MiB)), [
    entry(0, 0x9fc00, E820_RAM),
    entry(0x9fc00, 0x100000, E820_RESERVED),
    entry(0x100000, 256 * MiB, E820_RAM),
  ]);
});

test('RAM above 4 GiB is listed, the MMIO hole is not', () => {
  assert.deepEqual(e820Map(planRam(4 * GiB)), [
    entry(0, 0x9fc00, E820_RAM),
    entry(0x9fc00, 0x100000, E820_RESERVED),
    entry(0x100000, 3 * GiB, E820_RAM),
    entry(4 * GiB, 5 * GiB, E820_RAM),
  ]);
});

test('reserved ranges are cut out of RAM, laid over the BIOS area, or added in the hole', () => {
  const map = e820Map(planRam(4 * GiB), [
    { start: 0xe0000, end: 0xf0000, type: E820_ACPI }, // inside the reserved BIOS area
    { start: 3 * GiB - 64 * 1024, end: 3 * GiB, type: E820_ACPI }, // the top of low RAM
    { start: 0xe0000000, end: 0xf0000000, type: E820_RESERVED }, // e.g. PCI MMCONFIG in the hole
    { start: 4 * GiB + MiB, end: 4 * GiB + 2 * MiB, type: E820_RESERVED }, // the middle of high RAM
  ]);
  assert.deepEqual(map, [
    entry(0, 0x9fc00, E820_RAM),
    entry(0x9fc00, 0xe0000, E820_RESERVED),
    entry(0xe0000, 0xf0000, E820_ACPI),
    entry(0xf0000, 0x100000, E820_RESERVED),
    entry(0x100000, 3 * GiB - 64 * 1024, E820_RAM),
    entry(3 * GiB - 64 * 1024, 3 * GiB, E820_ACPI),
    entry(0xe0000000, 0xf0000000, E820_RESERVED),
    entry(4 * GiB, 4 * GiB + MiB, E820_RAM),
    entry(4 * GiB + MiB, 4 * GiB + 2 * MiB, E820_RESERVED),
    entry(4 * GiB + 2 * MiB, 5 * GiB, E820_RAM),
  ]);
});

test('a reserved range touching the BIOS area merges with it', () => {
  const map = e820Map(planRam(64 * MiB), [{ start: 0x100000, end: 0x110000, type: E820_RESERVED }]);
  assert.deepEqual(map.slice(1, 3), [entry(0x9fc00, 0x110000, E820_RESERVED), entry(0x110000, 64 * MiB, E820_RAM)]);
});

test('maps that cannot be made are refused', () => {
  const refuses = (fn: () => unknown, message: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof LinuxLoadError && message.test(e.message));
  refuses(() => e820Map([{ gpa: 1 * MiB, size: 64 * MiB, fileOffset: 0 }]), /starting at address 0/);
  refuses(() => e820Map(planRam(1 * MiB)), /more than 1 MiB/);
  refuses(() => e820Map(planRam(64 * MiB), [{ start: 0x200000, end: 0x200000, type: E820_RESERVED }]), /empty or invalid/);
  refuses(() => e820Map(planRam(64 * MiB), [{ start: 0x200000, end: 0x300000, type: E820_RAM }]), /RAM type/);
  const many = Array.from({ length: E820_MAX_ENTRIES }, (_, i) => ({ start: 2 * MiB + i * 8192, end: 2 * MiB + i * 8192 + 4096, type: E820_RESERVED }));
  refuses(() => e820Map(planRam(64 * MiB), many), /more than the 128/);
});
