import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory, GuestMemoryError } from '../../src/memory/guest-memory.js';
import { GiB, KiB, MiB, MMIO_HOLE_END, MMIO_HOLE_START, parseSize, planRam } from '../../src/memory/layout.js';

const REGION = 64 * KiB;

/** Small regions either side of the MMIO hole, placed as planRam would place RAM. */
function memoryAroundHole(): GuestMemory {
  return new GuestMemory([
    { gpa: MMIO_HOLE_END, bytes: new Uint8Array(REGION) },
    { gpa: MMIO_HOLE_START - REGION, bytes: new Uint8Array(REGION) },
  ]);
}

function assertOutside(action: () => unknown): void {
  assert.throws(action, (error: unknown) => error instanceof GuestMemoryError);
}

test('reads and writes inside a region', () => {
  const memory = memoryAroundHole();
  memory.writeU64(MMIO_HOLE_END, 0x1122_3344_5566_7788n);
  assert.equal(memory.readU32(MMIO_HOLE_END), 0x5566_7788);
  assert.equal(memory.readU8(MMIO_HOLE_END + 7), 0x11);
  memory.writeU32(MMIO_HOLE_START - 4, 0xdead_beef);
  assert.equal(memory.readU32(MMIO_HOLE_START - 4), 0xdead_beef);
  assert.equal(memory.size, 2 * REGION);
});

test('regions are sorted by address; overlapping regions are refused', () => {
  assert.deepEqual(
    memoryAroundHole().regions.map((r) => r.gpa),
    [MMIO_HOLE_START - REGION, MMIO_HOLE_END],
  );
  assert.throws(
    () =>
      new GuestMemory([
        { gpa: 0, bytes: new Uint8Array(8 * KiB) },
        { gpa: 4 * KiB, bytes: new Uint8Array(8 * KiB) },
      ]),
    /overlap/,
  );
});

test('an access straddling a region end throws', () => {
  const memory = memoryAroundHole();
  const end = MMIO_HOLE_END + REGION;
  assert.equal(memory.readU32(end - 4), 0);
  assertOutside(() => memory.readU64(end - 4));
  assertOutside(() => memory.view(end - 1, 2));
  assertOutside(() => memory.write(end - 2, new Uint8Array(3)));
  assertOutside(() => memory.readU8(end));
  assert.equal(memory.contains(end - 4, 4), true);
  assert.equal(memory.contains(end - 4, 5), false);
});

test('negative, NaN, infinite and fractional addresses or lengths throw', () => {
  const memory = memoryAroundHole();
  const base = MMIO_HOLE_END;
  assertOutside(() => memory.readU8(-1));
  assertOutside(() => memory.view(base, -1));
  assertOutside(() => memory.readU32(NaN));
  assertOutside(() => memory.view(base, NaN));
  assertOutside(() => memory.readU8(Infinity));
  assertOutside(() => memory.view(base, Infinity));
  assertOutside(() => memory.readU8(base + 0.5));
  assertOutside(() => memory.fill(base, 1.5));
});

test('huge lengths and addresses throw instead of wrapping', () => {
  const memory = memoryAroundHole();
  assertOutside(() => memory.view(MMIO_HOLE_END, Number.MAX_SAFE_INTEGER));
  assertOutside(() => memory.view(MMIO_HOLE_END, 2 ** 64));
  assertOutside(() => memory.readU8(2 ** 53));
  assertOutside(() => memory.fill(MMIO_HOLE_END, 2 * REGION));
});

test('the MMIO hole between regions is not RAM', () => {
  const memory = memoryAroundHole();
  assertOutside(() => memory.readU8(MMIO_HOLE_START));
  assertOutside(() => memory.readU32(MMIO_HOLE_END - 4));
  // Both ends are RAM, but one access may not span the hole.
  assertOutside(() => memory.view(MMIO_HOLE_START - 4, MMIO_HOLE_END - MMIO_HOLE_START + 8));
  assertOutside(() => memory.readU64(MMIO_HOLE_START - 4));
});

test('the error names the rejected range', () => {
  const memory = memoryAroundHole();
  assert.throws(
    () => memory.view(MMIO_HOLE_START, 16),
    (error: unknown) =>
      error instanceof GuestMemoryError &&
      error.gpa === MMIO_HOLE_START &&
      error.length === 16 &&
      error.name === 'GuestMemoryError' &&
      /0xc0000000\+16/.test(error.message),
  );
});

test('views are live; read returns a copy', () => {
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(4 * KiB) }]);
  memory.view(0x10, 4).set([1, 2, 3, 4]);
  const copy = memory.read(0x10, 4);
  memory.writeU8(0x10, 9);
  assert.deepEqual([...copy], [1, 2, 3, 4]);
  assert.equal(memory.readU8(0x10), 9);
});

test('C strings: round trip, and an unterminated string throws', () => {
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(4 * KiB) }]);
  assert.equal(memory.writeCString(0x100, 'console=ttyS0'), 14);
  assert.equal(memory.readCString(0x100), 'console=ttyS0');
  memory.fill(0, 4 * KiB, 0x41);
  assertOutside(() => memory.readCString(0, 16));
  assertOutside(() => memory.readCString(4 * KiB - 8));
});

test('planRam: below the hole, RAM is one range from 0', () => {
  assert.deepEqual(planRam(512 * MiB), [{ gpa: 0, size: 512 * MiB, fileOffset: 0 }]);
  assert.deepEqual(planRam(3 * GiB), [{ gpa: 0, size: 3 * GiB, fileOffset: 0 }]);
});

test('planRam: above 3 GiB, the rest of RAM moves above the hole', () => {
  assert.deepEqual(planRam(3 * GiB + 4 * KiB), [
    { gpa: 0, size: 3 * GiB, fileOffset: 0 },
    { gpa: 4 * GiB, size: 4 * KiB, fileOffset: 3 * GiB },
  ]);
  // Above the hole, RAM comes in ranges of at most 2 GiB (a typed array must stay under 4 GiB).
  assert.deepEqual(planRam(8 * GiB), [
    { gpa: 0, size: 3 * GiB, fileOffset: 0 },
    { gpa: 4 * GiB, size: 2 * GiB, fileOffset: 3 * GiB },
    { gpa: 6 * GiB, size: 2 * GiB, fileOffset: 5 * GiB },
    { gpa: 8 * GiB, size: 1 * GiB, fileOffset: 7 * GiB },
  ]);
});

test('planRam: rejects sizes that are not positive multiples of 4 KiB', () => {
  for (const bad of [0, -4096, 4095, 1.5 * KiB, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => planRam(bad), /multiple of 4 KiB/, String(bad));
  }
});

test('parseSize: numbers with optional binary units', () => {
  const cases: [string, number][] = [
    ['65536', 65536],
    ['64K', 64 * KiB],
    ['512M', 512 * MiB],
    ['2G', 2 * GiB],
    ['1T', 1024 * GiB],
    ['2g', 2 * GiB],
    ['1GiB', GiB],
    ['4KB', 4 * KiB],
    ['16 M', 16 * MiB],
    [' 1G ', GiB],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

test('parseSize: rejects what is not a size', () => {
  for (const bad of ['', 'G', 'abc', '1.5G', '-1M', '10X', '1 G B', '0x100', '1e3']) {
    assert.throws(() => parseSize(bad), /is not a size/, bad);
  }
  for (const tooLarge of ['9999999T', '9007199254740993']) {
    assert.throws(() => parseSize(tooLarge), /too large/, tooLarge);
  }
});
