import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceContext } from '../../src/devices/context.js';
import { DeviceState } from '../../src/devices/device-state.js';
import {
  FIFO_SIZE, IER_MSI, IER_RDI, IER_RLSI, IER_THRI, IIR_FIFOS_ENABLED, IIR_MSR, IIR_NONE, IIR_RDA, IIR_RLS, IIR_RX_TIMEOUT, IIR_THRE,
  INPUT_RING_SIZE, LCR_DLAB, LSR_DR, LSR_OE, LSR_TEMT, LSR_THRE, MCR_DTR, MCR_LOOP, MCR_OUT1, MCR_OUT2, MCR_RTS,
  MSR_CTS, MSR_DCD, MSR_DCTS, MSR_DDCD, MSR_DDSR, MSR_DSR, MSR_RI, MSR_TERI, Reg, SerialPort,
} from '../../src/devices/legacy/serial-port.js';
import type { VmStop } from '../../src/devices/vm-stop.js';

class RecordingContext implements DeviceContext {
  readonly vcpuId = 0;
  readonly output: number[] = [];
  readonly irqs: [number, boolean][] = [];
  readonly stops: VmStop[] = [];
  console(bytes: Uint8Array): void {
    this.output.push(...bytes);
  }
  irq(line: number, level: boolean): void {
    this.irqs.push([line, level]);
  }
  stop(outcome: VmStop): void {
    this.stops.push(outcome);
  }
}

/** A UART over fresh shared state, driven through its BusDevice interface one byte at a time. */
function uart(state = new DeviceState(DeviceState.allocate(SerialPort.stateSize))) {
  const ctx = new RecordingContext();
  const port = new SerialPort(ctx, state);
  return {
    ctx,
    port,
    state,
    inb(reg: number): number {
      const data = new Uint8Array(1);
      port.read(reg, data);
      return data[0];
    },
    outb(reg: number, value: number): void {
      port.write(reg, Uint8Array.of(value));
    },
    receive(text: string | Uint8Array): number {
      return state.locked(() => port.receive(typeof text === 'string' ? Buffer.from(text) : text));
    },
    /** The interrupt line as the last irq call left it. */
    get line(): boolean {
      return ctx.irqs.at(-1)?.[1] ?? false;
    },
  };
}

const UART_IER_ALL = IER_RDI | IER_THRI | IER_RLSI | IER_MSI;

test("Linux's 8250 autoconfig finds a 16550A", () => {
  const u = uart();
  // Existence test: IER holds what is written, and only its low four bits.
  u.outb(Reg.IER, 0);
  assert.equal(u.inb(Reg.IER) & 0x0f, 0);
  u.outb(Reg.IER, 0x0f);
  assert.equal(u.inb(Reg.IER) & 0x0f, 0x0f);
  u.outb(Reg.IER, 0);
  // Scratch register.
  for (const v of [0x55, 0xaa, 0x00]) {
    u.outb(Reg.SCR, v);
    assert.equal(u.inb(Reg.SCR), v);
  }
  // Loopback check: MCR = LOOP | OUT2 | RTS must show DCD and CTS.
  u.outb(Reg.MCR, MCR_LOOP | 0x0a);
  assert.equal(u.inb(Reg.MSR) & 0xf0, 0x90);
  u.outb(Reg.MCR, 0);
  // EFR is FCR on a 16550A; then FIFOs on and the IIR's top bits say which chip.
  u.outb(Reg.LCR, 0xbf);
  u.outb(Reg.IIR_FCR, 0);
  u.outb(Reg.LCR, 0);
  u.outb(Reg.IIR_FCR, 0x01);
  assert.equal(u.inb(Reg.IIR_FCR) >> 6, 3, '16550A: FIFOs enabled');
  // autoconfig_16550a: no EFR with DLAB set (the IIR reads non-zero there), no 64-byte FIFO bit, no UUE bit in IER.
  u.outb(Reg.LCR, 0x80);
  assert.notEqual(u.inb(Reg.IIR_FCR), 0);
  u.outb(Reg.LCR, 0);
  u.outb(Reg.IIR_FCR, 0x21);
  assert.equal(u.inb(Reg.IIR_FCR) & 0xe0, IIR_FIFOS_ENABLED);
  u.outb(Reg.IIR_FCR, 0x01);
  u.outb(Reg.IER, 0x40);
  assert.equal(u.inb(Reg.IER) & 0x40, 0);
  u.outb(Reg.IER, 0);
  // Clearing the FIFOs and reading the registers leaves nothing pending.
  u.outb(Reg.IIR_FCR, 0x07);
  u.outb(Reg.IIR_FCR, 0);
  assert.equal(u.inb(Reg.LSR), LSR_THRE | LSR_TEMT);
  assert.equal(u.inb(Reg.IIR_FCR), IIR_NONE);
  assert.equal(u.inb(Reg.MSR), MSR_CTS | MSR_DSR | MSR_DCD | MSR_DDSR, 'leaving loopback changed DSR');
  assert.equal(u.inb(Reg.MSR), MSR_CTS | MSR_DSR | MSR_DCD);
  assert.deepEqual(u.ctx.irqs, [[4, true], [4, false]], 'only the IER test (all four enabled, THR empty) pulsed the line');
  assert.deepEqual(u.ctx.output, []);
});

test('the divisor latch: DLAB switches offsets 0 and 1 to DLL/DLM; power-on divisor is 12 (9600 baud)', () => {
  const u = uart();
  u.outb(Reg.LCR, LCR_DLAB | 0x03);
  assert.equal(u.inb(Reg.DATA), 12);
  assert.equal(u.inb(Reg.IER), 0);
  u.outb(Reg.DATA, 1);
  u.outb(Reg.IER, 0x02);
  assert.equal(u.inb(Reg.DATA), 1);
  assert.equal(u.inb(Reg.IER), 0x02);
  assert.deepEqual(u.ctx.output, [], 'divisor writes are not transmitted');
  u.outb(Reg.LCR, 0x03);
  assert.equal(u.inb(Reg.IER), 0, 'IER kept apart from DLM');
  assert.equal(u.inb(Reg.LCR), 0x03);
});

test('transmit: THR bytes go to the console, the transmitter always reads empty', () => {
  const u = uart();
  for (const c of Buffer.from('ok\n')) {
    assert.equal(u.inb(Reg.LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
    u.outb(Reg.DATA, c);
  }
  assert.equal(Buffer.from(u.ctx.output).toString(), 'ok\n');
});

test("the THRE interrupt, as Linux's THRE test and tx path expect", () => {
  const u = uart();
  u.outb(Reg.IIR_FCR, 0x01);
  u.outb(Reg.IER, IER_THRI);
  assert.deepEqual(u.ctx.irqs, [[4, true]], 'enabling THRI with THR empty raises IRQ 4');
  assert.equal(u.inb(Reg.IIR_FCR), IIR_FIFOS_ENABLED | IIR_THRE);
  assert.equal(u.inb(Reg.IIR_FCR), IIR_FIFOS_ENABLED | IIR_NONE, 'reading the IIR acknowledged it');
  assert.deepEqual(u.ctx.irqs, [[4, true], [4, false]]);
  // Disabled and enabled again: a real 16550 reasserts it.
  u.outb(Reg.IER, 0);
  u.outb(Reg.IER, IER_THRI);
  assert.equal(u.inb(Reg.IIR_FCR), IIR_FIFOS_ENABLED | IIR_THRE);
  assert.equal(u.line, false);
  // A THR write empties at once, so THRE is pending again.
  u.outb(Reg.DATA, 0x41);
  assert.equal(u.line, true);
  assert.equal(u.inb(Reg.IIR_FCR) & 0x0f, IIR_THRE);
  // Writing IER with THRI still set does not re-raise an acknowledged THRE.
  u.outb(Reg.IER, IER_THRI);
  assert.equal(u.inb(Reg.IIR_FCR) & 0x0f, IIR_NONE);
  assert.deepEqual(u.ctx.output, [0x41]);
});

test('the interrupt line is driven only when its level changes', () => {
  const u = uart();
  u.outb(Reg.IER, IER_THRI);
  for (let i = 0; i < 10; i++) u.outb(Reg.DATA, 0x30 + i);
  u.inb(Reg.LSR);
  assert.deepEqual(u.ctx.irqs, [[4, true]]);
  u.outb(Reg.IER, 0);
  assert.deepEqual(u.ctx.irqs, [[4, true], [4, false]]);
});

test('receive: host input sets LSR.DR and raises the receive interrupt; reading drains it', () => {
  const u = uart();
  u.outb(Reg.IIR_FCR, 0x01 | 0x80); // FIFOs on, trigger level 8
  u.outb(Reg.IER, IER_RDI);
  assert.equal(u.inb(Reg.LSR) & LSR_DR, 0);
  assert.equal(u.receive('hi'), 2);
  assert.deepEqual(u.ctx.irqs, [[4, true]]);
  assert.equal(u.inb(Reg.LSR) & LSR_DR, LSR_DR);
  assert.equal(u.inb(Reg.IIR_FCR), IIR_FIFOS_ENABLED | IIR_RX_TIMEOUT, 'below the trigger level: character timeout');
  u.receive('abcdef');
  assert.equal(u.inb(Reg.IIR_FCR), IIR_FIFOS_ENABLED | IIR_RDA, 'at the trigger level: data available');
  let got = '';
  while (u.inb(Reg.LSR) & LSR_DR) got += String.fromCharCode(u.inb(Reg.DATA));
  assert.equal(got, 'hiabcdef');
  assert.equal(u.inb(Reg.IIR_FCR), IIR_FIFOS_ENABLED | IIR_NONE);
  assert.deepEqual(u.ctx.irqs, [[4, true], [4, false]]);
});

test('receive without FIFOs: one byte at a time, reported as data available', () => {
  const u = uart();
  u.outb(Reg.IER, IER_RDI);
  u.receive('xy');
  assert.equal(u.inb(Reg.IIR_FCR), IIR_RDA);
  assert.equal(u.inb(Reg.DATA), 0x78);
  assert.equal(u.inb(Reg.IIR_FCR), IIR_RDA, 'the next byte moved up from the line');
  assert.equal(u.inb(Reg.DATA), 0x79);
  assert.equal(u.inb(Reg.LSR) & LSR_DR, 0);
  assert.equal(u.inb(Reg.LSR) & LSR_OE, 0, 'input waiting on the line is not an overrun');
});

test('the input ring holds a paste larger than the FIFO and loses nothing; a full ring takes no more', () => {
  const u = uart();
  u.outb(Reg.IIR_FCR, 0xc1);
  const paste = Uint8Array.from({ length: INPUT_RING_SIZE + 1000 }, (_, i) => (i * 7) & 0xff);
  const first = u.receive(paste);
  assert.equal(first, INPUT_RING_SIZE);
  assert.equal(u.receive(paste.subarray(first)), FIFO_SIZE, 'the FIFO took 16 from the ring: room for 16 more');
  const read: number[] = [];
  let offered = first + FIFO_SIZE;
  while (u.inb(Reg.LSR) & LSR_DR) {
    read.push(u.inb(Reg.DATA));
    if (offered < paste.length) offered += u.receive(paste.subarray(offered));
  }
  assert.equal(read.length, paste.length);
  assert.deepEqual(Uint8Array.from(read), paste);
  assert.equal(u.inb(Reg.LSR) & LSR_OE, 0);
});

test('clearing the receive FIFO drops what it held, not what waits on the line', () => {
  const u = uart();
  u.outb(Reg.IIR_FCR, 0x01);
  u.receive(Buffer.alloc(20, 0x61));
  u.outb(Reg.IIR_FCR, 0x01 | 0x02);
  let n = 0;
  while (u.inb(Reg.LSR) & LSR_DR) {
    u.inb(Reg.DATA);
    n++;
  }
  assert.equal(n, 20 - FIFO_SIZE);
});

test('IIR priorities: line status, then received data, then THR empty, then modem status', () => {
  const u = uart();
  u.outb(Reg.IIR_FCR, 0x01);
  u.outb(Reg.MCR, MCR_LOOP);
  assert.equal(u.inb(Reg.MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD, 'in loopback with no outputs on, CTS, DSR and DCD dropped');
  for (let i = 0; i <= FIFO_SIZE; i++) u.outb(Reg.DATA, i); // one more than the FIFO holds: overrun
  u.outb(Reg.MCR, MCR_LOOP | MCR_RTS); // CTS changes: a modem status change
  u.outb(Reg.IER, UART_IER_ALL);
  assert.equal(u.line, true);
  const iir = () => u.inb(Reg.IIR_FCR) & 0x0f;
  assert.equal(iir(), IIR_RLS);
  assert.equal(u.inb(Reg.LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
  assert.equal(iir(), IIR_RDA);
  for (let i = 0; i < FIFO_SIZE; i++) assert.equal(u.inb(Reg.DATA), i);
  assert.equal(iir(), IIR_THRE);
  assert.equal(iir(), IIR_MSR, 'the IIR read acknowledged THRE');
  assert.equal(u.inb(Reg.MSR) & 0x0f, MSR_DCTS);
  assert.equal(iir(), IIR_NONE);
  assert.equal(u.line, false);
});

test('loopback: THR feeds RBR, nothing is transmitted, MSR follows MCR, host input waits', () => {
  const u = uart();
  u.outb(Reg.IIR_FCR, 0x01);
  u.outb(Reg.MCR, MCR_LOOP);
  u.receive('host');
  assert.equal(u.inb(Reg.LSR) & LSR_DR, 0, 'the line is disconnected in loopback');
  u.outb(Reg.DATA, 0x5a);
  u.outb(Reg.DATA, 0xa5);
  assert.deepEqual(u.ctx.output, []);
  assert.equal(u.inb(Reg.DATA), 0x5a);
  assert.equal(u.inb(Reg.DATA), 0xa5);
  assert.equal(u.inb(Reg.LSR) & LSR_DR, 0);

  u.inb(Reg.MSR);
  u.outb(Reg.MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT1 | MCR_OUT2);
  assert.equal(u.inb(Reg.MSR), MSR_CTS | MSR_DSR | MSR_RI | MSR_DCD | MSR_DCTS | MSR_DDSR | MSR_DDCD);
  u.outb(Reg.MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT2);
  assert.equal(u.inb(Reg.MSR) & 0x0f, MSR_TERI, 'RI going inactive is a trailing edge');

  u.outb(Reg.MCR, 0);
  assert.equal(u.inb(Reg.MSR) & 0xf0, MSR_CTS | MSR_DSR | MSR_DCD);
  let got = '';
  while (u.inb(Reg.LSR) & LSR_DR) got += String.fromCharCode(u.inb(Reg.DATA));
  assert.equal(got, 'host', 'leaving loopback reconnects the line');
});

test('overrun: a byte arriving at a full FIFO is lost and sets LSR.OE until the LSR is read', () => {
  const u = uart();
  u.outb(Reg.IIR_FCR, 0x01);
  u.outb(Reg.MCR, MCR_LOOP);
  for (let i = 0; i < FIFO_SIZE + 2; i++) u.outb(Reg.DATA, 0x40 + i);
  const lsr = u.inb(Reg.LSR);
  assert.equal(lsr & LSR_OE, LSR_OE);
  assert.equal(u.inb(Reg.LSR) & LSR_OE, 0, 'reading the LSR cleared OE');
  const got = [];
  while (u.inb(Reg.LSR) & LSR_DR) got.push(u.inb(Reg.DATA));
  assert.deepEqual(got, Array.from({ length: FIFO_SIZE }, (_, i) => 0x40 + i));

  // Without FIFOs the receiver holds one byte.
  u.outb(Reg.IIR_FCR, 0);
  u.outb(Reg.DATA, 1);
  u.outb(Reg.DATA, 2);
  assert.equal(u.inb(Reg.LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
  assert.equal(u.inb(Reg.DATA), 1);
});

test('line status interrupt: raised by an overrun when enabled, cleared by reading the LSR', () => {
  const u = uart();
  u.outb(Reg.IER, IER_RLSI);
  u.outb(Reg.MCR, MCR_LOOP);
  u.outb(Reg.DATA, 1);
  assert.equal(u.line, false);
  u.outb(Reg.DATA, 2);
  assert.equal(u.line, true);
  assert.equal(u.inb(Reg.IIR_FCR), IIR_RLS);
  u.inb(Reg.LSR);
  assert.equal(u.line, false);
});

test('two views over one shared state are one UART (a vCPU thread and the main thread)', () => {
  const state = new DeviceState(DeviceState.allocate(SerialPort.stateSize));
  const vcpu = uart(state);
  const host = uart(state);
  vcpu.outb(Reg.IER, IER_RDI);
  vcpu.outb(Reg.LCR, LCR_DLAB);
  vcpu.outb(Reg.DATA, 3);
  vcpu.outb(Reg.LCR, 0x03);
  const again = uart(state);
  assert.equal(again.inb(Reg.LCR), 0x03);
  again.outb(Reg.LCR, LCR_DLAB);
  assert.equal(again.inb(Reg.DATA), 3, 'a later view does not power the UART on again');
  again.outb(Reg.LCR, 0x03);
  host.receive('k');
  assert.deepEqual(host.ctx.irqs, [[4, true]], 'the receiving thread raises the line');
  assert.equal(vcpu.inb(Reg.DATA), 0x6b);
  assert.deepEqual(vcpu.ctx.irqs, [[4, false]], 'the reading thread lowers it');
});

test('a wider access is consecutive byte registers', () => {
  const u = uart();
  u.port.write(Reg.LCR, Uint8Array.of(0x03, MCR_DTR | MCR_RTS));
  assert.equal(u.inb(Reg.LCR), 0x03);
  assert.equal(u.inb(Reg.MCR), MCR_DTR | MCR_RTS);
  const data = new Uint8Array(2);
  u.port.read(Reg.LSR, data);
  assert.deepEqual([...data], [LSR_THRE | LSR_TEMT, MSR_CTS | MSR_DSR | MSR_DCD]);
});

test('the line number comes from the device', () => {
  const ctx = new RecordingContext();
  const port = new SerialPort(ctx, new DeviceState(DeviceState.allocate(SerialPort.stateSize)), 3);
  port.write(Reg.IER, Uint8Array.of(IER_THRI));
  assert.deepEqual(ctx.irqs, [[3, true]]);
  assert.equal(IIR_MSR, 0);
});
