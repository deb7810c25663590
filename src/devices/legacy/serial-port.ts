/**
 * COM1 as a 16550A UART, as Linux's 8250 driver probes and drives it:
 * interrupts (receive data, transmitter empty, line status, modem status)
 * with the IIR's priorities, the 16-byte receive FIFO with its trigger
 * level, the divisor latch, the scratch register and loopback mode.
 *
 * The line is infinitely fast: a byte written to the transmit register goes
 * to the console at once, so the transmitter always reads empty, and host
 * input waits in a larger ring in the shared state (the "line") that fills
 * the receive FIFO as the guest reads it, so pasted text is not lost. With
 * no clock to time out on, bytes below the FIFO's trigger level report the
 * character-timeout interrupt straight away.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceContext } from '../context.js';
import type { DeviceState } from '../device-state.js';

export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;
export const SERIAL_PORT_SIZE = 8;
/** Host input the line holds while the guest's receive FIFO is full. */
export const INPUT_RING_SIZE = 4096;
export const FIFO_SIZE = 16;

/** Register offsets from the base (the first two are the divisor latch while LCR.DLAB is set). */
export const Reg = { DATA: 0, IER: 1, IIR_FCR: 2, LCR: 3, MCR: 4, LSR: 5, MSR: 6, SCR: 7 } as const;

export const IER_RDI = 0x01; // receive data available
export const IER_THRI = 0x02; // transmit holding register empty
export const IER_RLSI = 0x04; // receiver line status
export const IER_MSI = 0x08; // modem status
const IER_MASK = 0x0f;

export const IIR_NONE = 0x01;
export const IIR_MSR = 0x00;
export const IIR_THRE = 0x02;
export const IIR_RDA = 0x04;
export const IIR_RLS = 0x06;
export const IIR_RX_TIMEOUT = 0x0c;
export const IIR_FIFOS_ENABLED = 0xc0;

export const FCR_ENABLE = 0x01;
export const FCR_CLEAR_RX = 0x02;
const FCR_TRIGGER = 0xc0;
const TRIGGER_LEVELS = [1, 4, 8, 14];

export const LCR_DLAB = 0x80;

export const MCR_DTR = 0x01;
export const MCR_RTS = 0x02;
export const MCR_OUT1 = 0x04;
export const MCR_OUT2 = 0x08;
export const MCR_LOOP = 0x10;
const MCR_MASK = 0x1f;

export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;

export const MSR_DCTS = 0x01;
export const MSR_DDSR = 0x02;
export const MSR_TERI = 0x04;
export const MSR_DDCD = 0x08;
export const MSR_CTS = 0x10;
export const MSR_DSR = 0x20;
export const MSR_RI = 0x40;
export const MSR_DCD = 0x80;
/** Outside loopback a terminal is attached and ready. */
const MSR_HOST_ATTACHED = MSR_CTS | MSR_DSR | MSR_DCD;

/** 115200 / 12: 9600 baud, what firmware leaves; Linux divides by the divisor when it probes the baud rate. */
const DIVISOR_9600 = 12;

/** Where each piece lives in the shared state. */
const At = {
  IER: 0, LCR: 1, MCR: 2, LINE_ERRORS: 3, MSR_DELTAS: 4, SCR: 5, DLL: 6, DLM: 7, FCR: 8,
  THR_EMPTY_PENDING: 9, IRQ_LEVEL: 10, POWERED: 11, RX_FIFO: 12, INPUT: 12 + 4 + FIFO_SIZE,
} as const;
const RING_HEADER = 4;

/** A ring of bytes in shared state: head and count (16 bits each) at `at`, the bytes after them. */
class ByteRing {
  private readonly data: Uint8Array;

  constructor(
    private readonly state: DeviceState,
    private readonly at: number,
    readonly capacity: number,
  ) {
    this.data = state.bytes.subarray(at + RING_HEADER, at + RING_HEADER + capacity);
  }

  get count(): number {
    return this.state.view.getUint16(this.at + 2, true);
  }

  private get head(): number {
    return this.state.view.getUint16(this.at, true);
  }

  /** The caller checks there is room. */
  push(byte: number): void {
    const count = this.count;
    this.data[(this.head + count) % this.capacity] = byte;
    this.state.view.setUint16(this.at + 2, count + 1, true);
  }

  /** The caller checks there is a byte. */
  shift(): number {
    const head = this.head;
    this.state.view.setUint16(this.at, (head + 1) % this.capacity, true);
    this.state.view.setUint16(this.at + 2, this.count - 1, true);
    return this.data[head];
  }

  clear(): void {
    this.state.view.setUint32(this.at, 0, true);
  }
}

export class SerialPort implements BusDevice {
  static readonly stateSize = At.INPUT + RING_HEADER + INPUT_RING_SIZE;
  private readonly b: Uint8Array;
  private readonly rx: ByteRing;
  private readonly input: ByteRing;

  constructor(
    private readonly ctx: DeviceContext,
    state: DeviceState,
    private readonly irqLine = COM1_IRQ,
  ) {
    this.b = state.bytes;
    this.rx = new ByteRing(state, At.RX_FIFO, FIFO_SIZE);
    this.input = new ByteRing(state, At.INPUT, INPUT_RING_SIZE);
    // Every thread builds its own view; the first one powers the UART on.
    state.locked(() => {
      if (this.b[At.POWERED]) return;
      this.b[At.DLL] = DIVISOR_9600;
      this.b[At.POWERED] = 1;
    });
  }

  read(offset: number, data: Uint8Array): void {
    // A wider access is bytes at consecutive ports, as the ISA bus splits it.
    for (let i = 0; i < data.length; i++) data[i] = this.readRegister(offset + i);
    this.updateIrq();
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.writeRegister(offset + i, data[i]);
    this.updateIrq();
  }

  /**
   * Host input arriving on the line (call with the state's lock held).
   * Returns how many bytes the line took; offer the rest again once the guest has read some.
   */
  receive(bytes: Uint8Array): number {
    const taken = Math.min(bytes.length, this.input.capacity - this.input.count);
    for (let i = 0; i < taken; i++) this.input.push(bytes[i]);
    this.refill();
    this.updateIrq();
    return taken;
  }

  private get dlab(): boolean {
    return (this.b[At.LCR] & LCR_DLAB) !== 0;
  }

  private get fifosEnabled(): boolean {
    return (this.b[At.FCR] & FCR_ENABLE) !== 0;
  }

  private get loopback(): boolean {
    return (this.b[At.MCR] & MCR_LOOP) !== 0;
  }

  /** Without FIFOs the receiver holds a single byte. */
  private get rxCapacity(): number {
    return this.fifosEnabled ? FIFO_SIZE : 1;
  }

  private get triggerLevel(): number {
    return this.fifosEnabled ? TRIGGER_LEVELS[this.b[At.FCR] >> 6] : 1;
  }

  private readRegister(reg: number): number {
    const b = this.b;
    switch (reg) {
      case Reg.DATA: return this.dlab ? b[At.DLL] : this.readReceiver();
      case Reg.IER: return this.dlab ? b[At.DLM] : b[At.IER];
      case Reg.IIR_FCR: return this.readIir();
      case Reg.LCR: return b[At.LCR];
      case Reg.MCR: return b[At.MCR];
      case Reg.LSR: return this.readLsr();
      case Reg.MSR: return this.readMsr();
      default: return b[At.SCR];
    }
  }

  private writeRegister(reg: number, value: number): void {
    const b = this.b;
    switch (reg) {
      case Reg.DATA:
        if (this.dlab) b[At.DLL] = value;
        else this.transmit(value);
        return;
      case Reg.IER:
        if (this.dlab) b[At.DLM] = value;
        else this.writeIer(value & IER_MASK);
        return;
      case Reg.IIR_FCR: return this.writeFcr(value);
      case Reg.LCR: b[At.LCR] = value; return;
      case Reg.MCR: return this.writeMcr(value & MCR_MASK);
      case Reg.LSR:
      case Reg.MSR:
        return; // read-only (writes are a factory test mode)
      default: b[At.SCR] = value;
    }
  }

  private readReceiver(): number {
    if (this.rx.count === 0) return 0;
    const byte = this.rx.shift();
    this.refill();
    return byte;
  }

  /** Reading the IIR acknowledges a transmitter-empty interrupt when that is what it reports. */
  private readIir(): number {
    const id = this.pendingInterrupt();
    if (id === IIR_THRE) this.b[At.THR_EMPTY_PENDING] = 0;
    return id | (this.fifosEnabled ? IIR_FIFOS_ENABLED : 0);
  }

  /** Reading the LSR clears the errors it reports. */
  private readLsr(): number {
    const value = (this.rx.count > 0 ? LSR_DR : 0) | this.b[At.LINE_ERRORS] | LSR_THRE | LSR_TEMT;
    this.b[At.LINE_ERRORS] = 0;
    return value;
  }

  /** Reading the MSR clears its change bits. */
  private readMsr(): number {
    const value = modemStatus(this.b[At.MCR]) | this.b[At.MSR_DELTAS];
    this.b[At.MSR_DELTAS] = 0;
    return value;
  }

  /** The byte leaves at once, so the holding register is empty again and says so. */
  private transmit(value: number): void {
    if (this.loopback) this.loopBack(value);
    else this.ctx.console(Uint8Array.of(value));
    this.b[At.THR_EMPTY_PENDING] = 1;
  }

  private loopBack(value: number): void {
    if (this.rx.count < this.rxCapacity) this.rx.push(value);
    else this.b[At.LINE_ERRORS] |= LSR_OE;
  }

  /** Enabling the transmitter-empty interrupt while the holding register is empty raises it. */
  private writeIer(value: number): void {
    if (value & IER_THRI && !(this.b[At.IER] & IER_THRI)) this.b[At.THR_EMPTY_PENDING] = 1;
    this.b[At.IER] = value;
  }

  private writeFcr(value: number): void {
    const b = this.b;
    if ((value ^ b[At.FCR]) & FCR_ENABLE) this.rx.clear(); // switching the FIFOs on or off empties them
    if (!(value & FCR_ENABLE)) {
      b[At.FCR] = 0; // the other bits only take with the enable bit
      return;
    }
    if (value & FCR_CLEAR_RX) this.rx.clear();
    b[At.FCR] = value & (FCR_ENABLE | FCR_TRIGGER);
    this.refill();
  }

  private writeMcr(value: number): void {
    const before = modemStatus(this.b[At.MCR]);
    const after = modemStatus(value);
    const changed = before ^ after;
    const trailingRing = before & MSR_RI && !(after & MSR_RI) ? MSR_TERI : 0;
    this.b[At.MSR_DELTAS] |= ((changed >> 4) & (MSR_DCTS | MSR_DDSR | MSR_DDCD)) | trailingRing;
    this.b[At.MCR] = value;
    this.refill(); // leaving loopback reconnects the line
  }

  /** Moves host input from the line into the receiver while it has room (in loopback the line is disconnected). */
  private refill(): void {
    if (this.loopback) return;
    while (this.rx.count < this.rxCapacity && this.input.count > 0) this.rx.push(this.input.shift());
  }

  /** The highest-priority enabled interrupt, as the IIR reports it. */
  private pendingInterrupt(): number {
    const b = this.b;
    const ier = b[At.IER];
    if (ier & IER_RLSI && b[At.LINE_ERRORS]) return IIR_RLS;
    if (ier & IER_RDI && this.rx.count > 0) return this.rx.count >= this.triggerLevel ? IIR_RDA : IIR_RX_TIMEOUT;
    if (ier & IER_THRI && b[At.THR_EMPTY_PENDING]) return IIR_THRE;
    if (ier & IER_MSI && b[At.MSR_DELTAS]) return IIR_MSR;
    return IIR_NONE;
  }

  /** Drives the interrupt line, only when its level changes (each change is an ioctl). */
  private updateIrq(): void {
    const level = this.pendingInterrupt() !== IIR_NONE ? 1 : 0;
    if (level === this.b[At.IRQ_LEVEL]) return;
    this.b[At.IRQ_LEVEL] = level;
    this.ctx.irq(this.irqLine, level === 1);
  }
}

/** The modem inputs: in loopback they are the modem outputs wired back (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD). */
function modemStatus(mcr: number): number {
  if (!(mcr & MCR_LOOP)) return MSR_HOST_ATTACHED;
  return (mcr & MCR_RTS ? MSR_CTS : 0) | (mcr & MCR_DTR ? MSR_DSR : 0) | (mcr & MCR_OUT1 ? MSR_RI : 0) | (mcr & MCR_OUT2 ? MSR_DCD : 0);
}
