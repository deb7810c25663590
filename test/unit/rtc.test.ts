import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceState } from '../../src/devices/device-state.js';
import { B_24_HOUR, B_BINARY, B_SET, CmosRtc, DATA_PORT, INDEX_PORT, Reg } from '../../src/devices/legacy/cmos-rtc.js';
import { GiB, MiB } from '../../src/memory/layout.js';

function rtc(options: { now?: () => number; ramBytes?: number } = {}, state = new DeviceState(DeviceState.allocate(CmosRtc.stateSize))) {
  const dev = new CmosRtc(state, options);
  const get = (reg: number) => {
    dev.write(INDEX_PORT, Uint8Array.of(reg));
    const data = new Uint8Array(1);
    dev.read(DATA_PORT, data);
    return data[0];
  };
  const set = (reg: number, value: number) => {
    dev.write(INDEX_PORT, Uint8Array.of(reg));
    dev.write(DATA_PORT, Uint8Array.of(value));
  };
  return { dev, state, get, set };
}

const TIME_REGS = [Reg.SECONDS, Reg.MINUTES, Reg.HOURS, Reg.WEEKDAY, Reg.DAY, Reg.MONTH, Reg.YEAR, Reg.CENTURY];
/** Thursday 29 February 2024, 13:05:09.250 UTC. */
const LEAP_DAY = Date.UTC(2024, 1, 29, 13, 5, 9, 250);

test('power-on registers: A (no update in progress), B (24-hour BCD), C, D (valid)', () => {
  const r = rtc();
  assert.equal(r.get(Reg.A), 0x26);
  assert.equal(r.get(Reg.B), B_24_HOUR);
  assert.equal(r.get(Reg.C), 0);
  assert.equal(r.get(Reg.D), 0x80);
});

test('the time in BCD, 24-hour', () => {
  const r = rtc({ now: () => LEAP_DAY });
  assert.deepEqual(TIME_REGS.map(r.get), [0x09, 0x05, 0x13, 5, 0x29, 0x02, 0x24, 0x20]);
});

test('the time in binary, 24-hour', () => {
  const r = rtc({ now: () => LEAP_DAY });
  r.set(Reg.B, B_24_HOUR | B_BINARY);
  assert.deepEqual(TIME_REGS.map(r.get), [9, 5, 13, 5, 29, 2, 24, 20]);
});

test('12-hour mode: hours 1-12 with bit 7 for PM', () => {
  let now = LEAP_DAY;
  const r = rtc({ now: () => now });
  r.set(Reg.B, 0);
  assert.equal(r.get(Reg.HOURS), 0x81, '1 PM in BCD');
  r.set(Reg.B, B_BINARY);
  assert.equal(r.get(Reg.HOURS), 0x81, '1 PM in binary');
  now = Date.UTC(2024, 0, 1, 0, 30);
  assert.equal(r.get(Reg.HOURS), 12, 'half past midnight is 12 AM');
  now = Date.UTC(2024, 0, 1, 12, 30);
  assert.equal(r.get(Reg.HOURS), 0x80 | 12, 'half past noon is 12 PM');
  r.set(Reg.B, 0);
  now = Date.UTC(2024, 0, 1, 23, 0);
  assert.equal(r.get(Reg.HOURS), 0x91, '11 PM in BCD');
});

test('the clock follows the host clock', () => {
  let now = LEAP_DAY;
  const r = rtc({ now: () => now });
  now += 61_000;
  assert.deepEqual([r.get(Reg.SECONDS), r.get(Reg.MINUTES)], [0x10, 0x06]);
});

test("the real host time (UTC), read the way Linux reads it: until the seconds don't change", () => {
  const r = rtc();
  r.set(Reg.B, B_24_HOUR | B_BINARY);
  for (;;) {
    const before = new Date();
    const [sec, min, hour, , day, month, year, century] = TIME_REGS.map(r.get);
    const after = new Date();
    if (before.getUTCSeconds() !== after.getUTCSeconds() || sec !== r.get(Reg.SECONDS)) continue; // crossed a second
    assert.deepEqual(
      [century * 100 + year, month, day, hour, min, sec],
      [after.getUTCFullYear(), after.getUTCMonth() + 1, after.getUTCDate(), after.getUTCHours(), after.getUTCMinutes(), after.getUTCSeconds()],
    );
    return;
  }
});

test('the index port masks the NMI-disable bit and reads as nothing', () => {
  const r = rtc({ now: () => LEAP_DAY });
  r.dev.write(INDEX_PORT, Uint8Array.of(0x80 | Reg.MINUTES));
  const data = new Uint8Array(1);
  r.dev.read(DATA_PORT, data);
  assert.equal(data[0], 0x05);
  r.dev.read(INDEX_PORT, data);
  assert.equal(data[0], 0xff);
});

test('setting the time as Linux does (SET, the fields, then clear SET) starts the clock from it', () => {
  let now = LEAP_DAY;
  const r = rtc({ now: () => now });
  r.set(Reg.B, B_24_HOUR | B_SET);
  now += 5000;
  assert.equal(r.get(Reg.SECONDS), 0x09, 'frozen while SET');
  const fields: [number, number][] = [[Reg.SECONDS, 0x58], [Reg.MINUTES, 0x59], [Reg.HOURS, 0x23], [Reg.DAY, 0x31], [Reg.MONTH, 0x12], [Reg.YEAR, 0x99], [Reg.CENTURY, 0x19]];
  for (const [reg, v] of fields) r.set(reg, v);
  r.set(Reg.B, B_24_HOUR);
  now += 3000;
  // 1999-12-31 23:59:58 plus 3 s is 2000-01-01 00:00:01, a Saturday.
  assert.deepEqual(TIME_REGS.map(r.get), [0x01, 0x00, 0x00, 7, 0x01, 0x01, 0x00, 0x20]);
});

test('writing one field outside SET moves the clock and keeps it running', () => {
  let now = LEAP_DAY;
  const r = rtc({ now: () => now });
  r.set(Reg.B, B_24_HOUR | B_BINARY);
  r.set(Reg.HOURS, 20);
  assert.deepEqual([r.get(Reg.HOURS), r.get(Reg.MINUTES), r.get(Reg.SECONDS)], [20, 5, 9]);
  now += 1000;
  assert.equal(r.get(Reg.SECONDS), 10);
});

test('every thread sees one clock: the guest time offset is in the shared state', () => {
  let now = LEAP_DAY;
  const a = rtc({ now: () => now });
  a.set(Reg.YEAR, 0x30);
  const b = rtc({ now: () => now }, a.state);
  now += 1000;
  assert.deepEqual([b.get(Reg.YEAR), b.get(Reg.SECONDS)], [0x30, 0x10]);
});

test('CMOS RAM keeps bytes; C and D are read-only', () => {
  const r = rtc();
  r.set(0x40, 0x5a);
  r.set(0x7f, 0xa5);
  assert.equal(r.get(0x40), 0x5a);
  assert.equal(r.get(0x7f), 0xa5);
  r.set(Reg.C, 0xff);
  r.set(Reg.D, 0);
  assert.equal(r.get(Reg.C), 0);
  assert.equal(r.get(Reg.D), 0x80);
});

test('memory sizes, as SeaBIOS reads them', () => {
  const word = (r: ReturnType<typeof rtc>, at: number) => r.get(at) | (r.get(at + 1) << 8);
  const small = rtc({ ramBytes: 128 * MiB });
  assert.equal(word(small, Reg.BASE_MEMORY), 640);
  assert.equal(word(small, Reg.EXTENDED_MEMORY), 0xffff, '127 MiB in KiB does not fit: capped');
  assert.equal(word(small, Reg.MEMORY_ABOVE_16M), (112 * MiB) / 65536);
  assert.equal(small.get(Reg.MEMORY_ABOVE_4G) | small.get(Reg.MEMORY_ABOVE_4G + 1) | small.get(Reg.MEMORY_ABOVE_4G + 2), 0);

  const large = rtc({ ramBytes: 8 * GiB });
  assert.equal(word(large, Reg.MEMORY_ABOVE_16M), (3 * GiB - 16 * MiB) / 65536, 'up to the MMIO hole');
  const above4G = large.get(Reg.MEMORY_ABOVE_4G) | (large.get(Reg.MEMORY_ABOVE_4G + 1) << 8) | (large.get(Reg.MEMORY_ABOVE_4G + 2) << 16);
  assert.equal(above4G, (5 * GiB) / 65536);

  let sum = 0;
  for (let i = 0x10; i <= 0x2d; i++) sum += small.get(i);
  assert.equal((small.get(Reg.CHECKSUM) << 8) | small.get(Reg.CHECKSUM + 1), sum);
});
