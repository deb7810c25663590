/**
 * A PCI function with a type-0 header: identity, command and status, 32-bit
 * memory and I/O BARs, a capability list and the INTx pin. Its config space
 * lives in shared state, so every vCPU thread (and a device's I/O thread)
 * sees one function; whoever calls in holds the state's lock.
 *
 * BARs sit where the VMM put them at build time. A BAR register still does
 * what sizing needs (write all-ones, read back the size mask), but a write
 * of any other address puts the assigned address back: the function does
 * not move. A guest sees this when it reads the BAR back after a write
 * (Linux logs "error updating" for such a BAR); inside the root bridge's
 * window, where the ACPI tables place every BAR, Linux keeps them. (The
 * tables describe the memory window only: Linux finds no bridge window
 * for an I/O BAR.)
 */
import type { DeviceState } from '../device-state.js';
import { BAR_COUNT, COMMAND_WRITABLE, Command, FIRST_CAPABILITY, PCI_CONFIG_SIZE, Reg, Status } from './config-space.js';

/** A function on the PCI bus, as the config mechanisms reach it. */
export interface PciFunction {
  readonly state: DeviceState;
  /** Reads config space from `offset` (0 to 4095); the caller holds the state's lock. */
  configRead(offset: number, data: Uint8Array): void;
  /** Writes config space at `offset`; the caller holds the state's lock. */
  configWrite(offset: number, data: Uint8Array): void;
}

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  revisionId: number;
  /** Class, subclass and programming interface, as 0xCCSSPP. */
  classCode: number;
  subsystemVendorId: number;
  subsystemId: number;
}

/** A BAR at a fixed address: 32-bit non-prefetchable memory, or with `io` a range of ports. */
export interface PciBar {
  index: number;
  address: number;
  /** A power of two, from 16 bytes for memory, 4 to 256 bytes for ports (PCI 3.0, 6.2.5.1); the address is aligned to it. */
  size: number;
  io?: boolean;
}

export interface PciCapability {
  id: number;
  /** The bytes after the ID and next pointer. */
  body: Uint8Array;
  /** Per byte of `body`, the bits a guest may change (default: none). */
  writable?: Uint8Array;
}

export interface PciHeader extends PciIdentity {
  bars: readonly PciBar[];
  capabilities: readonly PciCapability[];
  /** 0 for none, 1 for INTA#. */
  interruptPin: number;
  /** What firmware would leave in the interrupt line register: the pin's GSI. */
  interruptLine: number;
}

/** Shared state a PciDevice uses: config space, then a power-on flag. Subclasses put theirs after it. */
const POWERED = PCI_CONFIG_SIZE;
export const PCI_DEVICE_STATE_SIZE = PCI_CONFIG_SIZE + 8;

export class PciDevice implements PciFunction {
  /** Config-space offset of each capability, in the order given. */
  readonly capabilityOffsets: number[] = [];
  protected readonly config: DataView;
  private readonly writeMask = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly capabilityBytes: { offset: number; bytes: Uint8Array }[] = [];

  constructor(
    readonly state: DeviceState,
    private readonly header: PciHeader,
  ) {
    this.config = new DataView(state.buffer, state.bytes.byteOffset, PCI_CONFIG_SIZE);
    for (const bar of header.bars) checkBar(bar);
    this.layOutCapabilities(header.capabilities);
    // I/O decoding can be turned on only where there is something to decode.
    const command = COMMAND_WRITABLE | (header.bars.some((b) => b.io) ? Command.IO : 0);
    this.writeMask[Reg.COMMAND] = command & 0xff;
    this.writeMask[Reg.COMMAND + 1] = command >> 8;
    this.writeMask[Reg.CACHE_LINE_SIZE] = 0xff;
    this.writeMask[Reg.LATENCY_TIMER] = 0xff;
    this.writeMask[Reg.INTERRUPT_LINE] = 0xff;
  }

  private layOutCapabilities(capabilities: readonly PciCapability[]): void {
    let offset = FIRST_CAPABILITY;
    capabilities.forEach((cap, i) => {
      const bytes = new Uint8Array(2 + cap.body.length);
      bytes[0] = cap.id;
      bytes.set(cap.body, 2);
      this.capabilityOffsets.push(offset);
      this.capabilityBytes.push({ offset, bytes });
      if (cap.writable) this.writeMask.set(cap.writable, offset + 2);
      const next = offset + align4(bytes.length);
      if (next > PCI_CONFIG_SIZE) throw new Error('PCI capabilities do not fit in 256 bytes of config space');
      bytes[1] = i + 1 < capabilities.length ? next : 0;
      offset = next;
    });
  }

  /** Sets the function's registers to their power-on values, once per machine (every thread builds its own view). */
  protected powerOn(): void {
    this.state.locked(() => {
      if (this.state.bytes[POWERED]) return;
      this.reset();
      this.state.bytes[POWERED] = 1;
    });
  }

  /** Power-on values; subclasses add theirs. The lock is held. */
  protected reset(): void {
    const h = this.header;
    const c = this.config;
    new Uint8Array(c.buffer, c.byteOffset, PCI_CONFIG_SIZE).fill(0);
    c.setUint16(Reg.VENDOR_ID, h.vendorId, true);
    c.setUint16(Reg.DEVICE_ID, h.deviceId, true);
    c.setUint8(Reg.REVISION_ID, h.revisionId);
    c.setUint8(Reg.CLASS_CODE, h.classCode & 0xff);
    c.setUint16(Reg.CLASS_CODE + 1, h.classCode >> 8, true);
    c.setUint16(Reg.SUBSYSTEM_VENDOR_ID, h.subsystemVendorId, true);
    c.setUint16(Reg.SUBSYSTEM_ID, h.subsystemId, true);
    for (const bar of h.bars) c.setUint32(barRegister(bar.index), assigned(bar), true);
    c.setUint8(Reg.INTERRUPT_PIN, h.interruptPin);
    c.setUint8(Reg.INTERRUPT_LINE, h.interruptPin ? h.interruptLine : 0xff);
    if (this.capabilityBytes.length > 0) {
      c.setUint16(Reg.STATUS, Status.CAPABILITIES_LIST, true);
      c.setUint8(Reg.CAPABILITIES, FIRST_CAPABILITY);
      for (const { offset, bytes } of this.capabilityBytes) new Uint8Array(c.buffer, c.byteOffset + offset, bytes.length).set(bytes);
    }
  }

  configRead(offset: number, data: Uint8Array): void {
    forEachDword(offset, data.length, (dword, shift, at, count) => {
      const value = dword < PCI_CONFIG_SIZE ? this.readDword(dword) : 0;
      for (let k = 0; k < count; k++) data[at + k] = (value >>> (8 * (shift + k))) & 0xff;
    });
  }

  configWrite(offset: number, data: Uint8Array): void {
    forEachDword(offset, data.length, (dword, shift, at, count) => {
      if (dword >= PCI_CONFIG_SIZE) return;
      let value = 0;
      let enables = 0;
      for (let k = 0; k < count; k++) {
        value |= data[at + k] << (8 * (shift + k));
        enables |= 0xff << (8 * (shift + k));
      }
      this.writeDword(dword, value >>> 0, enables >>> 0);
    });
  }

  /** A config dword as the guest reads it; subclasses answer for registers with side effects. */
  protected readDword(offset: number): number {
    return this.config.getUint32(offset, true);
  }

  /** Writes the enabled bytes of a config dword, as far as the write mask lets them. */
  protected writeDword(offset: number, value: number, enables: number): void {
    const old = this.config.getUint32(offset, true);
    const bar = this.barAtRegister(offset);
    if (bar) {
      this.config.setUint32(offset, barValue(bar, (old & ~enables) | (value & enables)), true);
      return;
    }
    const mask = this.writeMaskOf(offset) & enables;
    if (mask === 0) return;
    const now = ((old & ~mask) | (value & mask)) >>> 0;
    this.config.setUint32(offset, now, true);
    this.configWritten(offset, old, now);
  }

  /** After a guest changed config dword `offset` from `old` to `now`. */
  protected configWritten(_offset: number, _old: number, _now: number): void {}

  private writeMaskOf(offset: number): number {
    const m = this.writeMask;
    return (m[offset] | (m[offset + 1] << 8) | (m[offset + 2] << 16) | (m[offset + 3] << 24)) >>> 0;
  }

  private barAtRegister(offset: number): PciBar | undefined {
    return this.header.bars.find((b) => barRegister(b.index) === offset);
  }

  get command(): number {
    return this.config.getUint16(Reg.COMMAND, true);
  }

  /** Whether BAR `index` answers at its address: memory (or I/O) decoding is on and the BAR is not being sized. */
  barDecodes(index: number): boolean {
    const bar = this.header.bars.find((b) => b.index === index);
    if (bar === undefined) return false;
    return (this.command & (bar.io ? Command.IO : Command.MEMORY)) !== 0 && this.config.getUint32(barRegister(index), true) === assigned(bar);
  }

  /** Reflects the function's INTx state in the status register. */
  protected setInterruptStatus(asserted: boolean): void {
    const status = this.config.getUint16(Reg.STATUS, true);
    this.config.setUint16(Reg.STATUS, asserted ? status | Status.INTERRUPT : status & ~Status.INTERRUPT, true);
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function barRegister(index: number): number {
  return Reg.BAR0 + 4 * index;
}

function checkBar(bar: PciBar): void {
  const { index, address, size } = bar;
  const [space, smallest, largest, end] = bar.io ? ['I/O', 4, 256, 2 ** 16] : ['memory', 16, 2 ** 31, 2 ** 32];
  if (!Number.isInteger(index) || index < 0 || index >= BAR_COUNT) throw new Error(`BAR${index} does not exist (0-5)`);
  if (size < smallest || (size & (size - 1)) !== 0 || size > largest) throw new Error(`${space} BAR${index} size ${size} is not a power of two from ${smallest} to ${largest} bytes`);
  if (address % size !== 0 || address <= 0 || address + size > end) {
    throw new Error(`${space} BAR${index} at 0x${address.toString(16)} is not below 0x${end.toString(16)} and aligned to its size 0x${size.toString(16)}`);
  }
}

/** Bit 0 of a BAR register: 1 for I/O space, 0 for (32-bit, non-prefetchable) memory. */
const IO_SPACE = 1;

/** The BAR register at its assigned address: the address and the space bit. */
function assigned(bar: PciBar): number {
  return (bar.address | (bar.io ? IO_SPACE : 0)) >>> 0;
}

/** What a BAR register holds after the guest writes `written`: the size mask (and space bit) while sizing, else its fixed address. */
function barValue(bar: PciBar, written: number): number {
  const sizeMask = ~(bar.size - 1) >>> 0;
  return ((written & sizeMask) >>> 0) === sizeMask ? (sizeMask | (bar.io ? IO_SPACE : 0)) >>> 0 : assigned(bar);
}

/** Splits an access into its parts within aligned dwords: (dword offset, byte shift in it, index in the data, byte count). */
function forEachDword(offset: number, length: number, fn: (dword: number, shift: number, at: number, count: number) => void): void {
  for (let at = 0; at < length; ) {
    const address = offset + at;
    const shift = address & 3;
    const count = Math.min(4 - shift, length - at);
    fn(address - shift, shift, at, count);
    at += count;
  }
}
