/**
 * The PC's CMOS real-time clock (MC146818) and its 128 bytes of battery
 * RAM, behind an index port and a data port:
 *
 *   0x70  index (write; bit 7 is the NMI mask, which the clock ignores)
 *   0x71  the register the index selects
 *
 * The clock is the host's UTC time plus an offset the guest sets by
 * writing the time, in BCD or binary and 12- or 24-hour form as register B
 * says. It is never mid-update (register A's UIP reads 0) and raises no
 * interrupts: register C reads 0. RAM holds the memory sizes firmware and
 * bootloaders read, as QEMU sets them for SeaBIOS.
 */
import { planRam } from '../../memory/layout.js';
import type { BusDevice } from '../bus.js';
import type { DeviceState } from '../device-state.js';

export const RTC_BASE = 0x70;
export const RTC_SIZE = 2;
export const INDEX_PORT = 0;
export const DATA_PORT = 1;

export const Reg = {
  SECONDS: 0x00, SECONDS_ALARM: 0x01, MINUTES: 0x02, MINUTES_ALARM: 0x03, HOURS: 0x04, HOURS_ALARM: 0x05,
  WEEKDAY: 0x06, DAY: 0x07, MONTH: 0x08, YEAR: 0x09, A: 0x0a, B: 0x0b, C: 0x0c, D: 0x0d,
  BASE_MEMORY: 0x15, EXTENDED_MEMORY: 0x17, CHECKSUM: 0x2e, EXTENDED_MEMORY_2: 0x30, CENTURY: 0x32,
  MEMORY_ABOVE_16M: 0x34, MEMORY_ABOVE_4G: 0x5b,
} as const;

export const A_UIP = 0x80;
export const B_SET = 0x80; // updates frozen while the guest sets the time
export const B_BINARY = 0x04; // data mode: binary, else BCD
export const B_24_HOUR = 0x02;
export const D_VALID_RAM_AND_TIME = 0x80;
const HOUR_PM = 0x80;

/** 32.768 kHz time base, 1024 Hz periodic rate; 24-hour BCD; as firmware leaves them. */
const A_AT_BOOT = 0x26;
const B_AT_BOOT = B_24_HOUR;

const CMOS_SIZE = 128;
const INDEX_MASK = 0x7f;
const CHECKSUMMED = { from: 0x10, to: 0x2d } as const;
const KiB = 1024;
const MiB = 1024 * KiB;

/** Where each piece lives in the shared state; the CMOS bytes come first. */
const At = { INDEX: CMOS_SIZE, POWERED: CMOS_SIZE + 1, CLOCK_OFFSET: CMOS_SIZE + 8 } as const;

type ClockField = (t: Date) => number;
/** The registers that hold the time, and how each reads the time. */
const CLOCK_FIELDS = new Map<number, ClockField>([
  [Reg.SECONDS, (t) => t.getUTCSeconds()],
  [Reg.MINUTES, (t) => t.getUTCMinutes()],
  [Reg.HOURS, (t) => t.getUTCHours()],
  [Reg.WEEKDAY, (t) => t.getUTCDay() + 1], // 1 is Sunday
  [Reg.DAY, (t) => t.getUTCDate()],
  [Reg.MONTH, (t) => t.getUTCMonth() + 1],
  [Reg.YEAR, (t) => t.getUTCFullYear() % 100],
  [Reg.CENTURY, (t) => Math.floor(t.getUTCFullYear() / 100)],
]);

export interface CmosRtcOptions {
  /** Guest RAM, for the memory-size bytes (left 0 when not given). */
  ramBytes?: number;
  /** The host clock, in ms since the epoch (tests pass their own). */
  now?: () => number;
}

export class CmosRtc implements BusDevice {
  static readonly stateSize = At.CLOCK_OFFSET + 8;
  private readonly b: Uint8Array;
  private readonly now: () => number;

  constructor(
    private readonly state: DeviceState,
    options: CmosRtcOptions = {},
  ) {
    this.b = state.bytes;
    this.now = options.now ?? Date.now;
    // Every thread builds its own view; the first one fills the CMOS.
    state.locked(() => {
      if (this.b[At.POWERED]) return;
      this.b[Reg.A] = A_AT_BOOT;
      this.b[Reg.B] = B_AT_BOOT;
      if (options.ramBytes !== undefined) writeMemorySizes(this.b, options.ramBytes);
      this.b[At.POWERED] = 1;
    });
  }

  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = offset + i === DATA_PORT ? this.readRegister(this.b[At.INDEX]) : 0xff;
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      if (offset + i === INDEX_PORT) this.b[At.INDEX] = data[i] & INDEX_MASK;
      else this.writeRegister(this.b[At.INDEX], data[i]);
    }
  }

  private get offsetMs(): number {
    return this.state.view.getFloat64(At.CLOCK_OFFSET, true);
  }

  private set offsetMs(ms: number) {
    this.state.view.setFloat64(At.CLOCK_OFFSET, ms, true);
  }

  private guestNow(): number {
    return this.now() + this.offsetMs;
  }

  private readRegister(reg: number): number {
    const b = this.b;
    const field = CLOCK_FIELDS.get(reg);
    if (field) return b[Reg.B] & B_SET ? b[reg] : encodeField(reg, field(new Date(this.guestNow())), b[Reg.B]);
    switch (reg) {
      case Reg.A: return b[Reg.A] & ~A_UIP;
      case Reg.C: return 0;
      case Reg.D: return D_VALID_RAM_AND_TIME;
      default: return b[reg];
    }
  }

  private writeRegister(reg: number, value: number): void {
    const b = this.b;
    if (CLOCK_FIELDS.has(reg)) {
      if (b[Reg.B] & B_SET) {
        b[reg] = value;
        return;
      }
      // Outside a SET window one field changes and the clock runs on from the new time.
      const now = this.guestNow();
      this.latch(now, b[Reg.B]);
      b[reg] = value;
      this.commit(b[Reg.B], now % 1000);
      return;
    }
    switch (reg) {
      case Reg.A: b[Reg.A] = value & ~A_UIP; return;
      case Reg.B: return this.writeB(value);
      case Reg.C:
      case Reg.D:
        return; // read-only
      default: b[reg] = value;
    }
  }

  /** Setting SET freezes the time into the registers for the guest to rewrite; clearing it starts the clock from them. */
  private writeB(value: number): void {
    const before = this.b[Reg.B];
    if (value & B_SET && !(before & B_SET)) this.latch(this.guestNow(), before);
    if (before & B_SET && !(value & B_SET)) this.commit(before, 0);
    this.b[Reg.B] = value;
  }

  /** Copies the time into the clock registers, in the format `b` describes. */
  private latch(ms: number, b: number): void {
    const t = new Date(ms);
    for (const [reg, field] of CLOCK_FIELDS) this.b[reg] = encodeField(reg, field(t), b);
  }

  /** Runs the clock from the time in the registers; the weekday follows from the date, and out-of-range fields carry over. */
  private commit(b: number, fractionMs: number): void {
    const get = (reg: number) => decodeField(reg, this.b[reg], b);
    const year = get(Reg.CENTURY) * 100 + get(Reg.YEAR);
    const ms = Date.UTC(year, get(Reg.MONTH) - 1, get(Reg.DAY), get(Reg.HOURS), get(Reg.MINUTES), get(Reg.SECONDS));
    this.offsetMs = ms + fractionMs - this.now();
  }
}

function toBcd(n: number): number {
  return (Math.floor(n / 10) << 4) | n % 10;
}

function fromBcd(n: number): number {
  return (n >> 4) * 10 + (n & 0x0f);
}

/** A clock value as the register holds it: BCD or binary, and hours in 12-hour form with a PM bit unless 24-hour. */
function encodeField(reg: number, value: number, b: number): number {
  const encode = b & B_BINARY ? (n: number) => n : toBcd;
  if (reg !== Reg.HOURS || b & B_24_HOUR) return encode(value);
  return encode(value % 12 || 12) | (value >= 12 ? HOUR_PM : 0);
}

function decodeField(reg: number, raw: number, b: number): number {
  const decode = b & B_BINARY ? (n: number) => n : fromBcd;
  if (reg !== Reg.HOURS || b & B_24_HOUR) return decode(raw);
  return (decode(raw & ~HOUR_PM) % 12) + (raw & HOUR_PM ? 12 : 0);
}

/** The memory-size bytes, as QEMU fills them for SeaBIOS, and the checksum over 0x10-0x2d. */
function writeMemorySizes(cmos: Uint8Array, ramBytes: number): void {
  const [low, ...high] = planRam(ramBytes);
  const put16 = (at: number, n: number) => {
    cmos[at] = n & 0xff;
    cmos[at + 1] = (n >> 8) & 0xff;
  };
  put16(Reg.BASE_MEMORY, 640); // KiB of conventional memory
  const extendedKiB = Math.min(Math.max(low.size - MiB, 0) / KiB, 0xffff);
  put16(Reg.EXTENDED_MEMORY, extendedKiB);
  put16(Reg.EXTENDED_MEMORY_2, extendedKiB);
  put16(Reg.MEMORY_ABOVE_16M, Math.min(Math.max(low.size - 16 * MiB, 0) / (64 * KiB), 0xffff));
  const above4G = high.reduce((n, r) => n + r.size, 0) / (64 * KiB);
  cmos[Reg.MEMORY_ABOVE_4G] = above4G & 0xff;
  cmos[Reg.MEMORY_ABOVE_4G + 1] = (above4G >> 8) & 0xff;
  cmos[Reg.MEMORY_ABOVE_4G + 2] = (above4G >> 16) & 0xff;
  let sum = 0;
  for (let i = CHECKSUMMED.from; i <= CHECKSUMMED.to; i++) sum += cmos[i];
  cmos[Reg.CHECKSUM] = (sum >> 8) & 0xff; // big-endian, unlike the sizes
  cmos[Reg.CHECKSUM + 1] = sum & 0xff;
}
