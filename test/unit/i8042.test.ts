import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceContext } from '../../src/devices/context.js';
import { DeviceState } from '../../src/devices/device-state.js';
import {
  Command, COMMAND_PORT, CTR_KEYBOARD_DISABLED, CTR_KEYBOARD_INT, CTR_MOUSE_DISABLED, CTR_MOUSE_INT, CTR_SYSTEM, CTR_TRANSLATE,
  DATA_PORT, I8042, KEYBOARD_IRQ, MOUSE_IRQ, NO_DEVICE, PORT_TEST_PASSED, SELF_TEST_PASSED, STATUS_COMMAND, STATUS_MOUSE_DATA,
  STATUS_OUTPUT_FULL, STATUS_SYSTEM, STATUS_TIMEOUT, STATUS_UNLOCKED,
} from '../../src/devices/legacy/i8042.js';
import type { VmStop } from '../../src/devices/vm-stop.js';

class RecordingContext implements DeviceContext {
  readonly vcpuId = 0;
  readonly irqs: [number, boolean][] = [];
  readonly stops: VmStop[] = [];
  console(): void {
    throw new Error('the keyboard controller has no console output');
  }
  irq(line: number, level: boolean): void {
    this.irqs.push([line, level]);
  }
  stop(outcome: VmStop): void {
    this.stops.push(outcome);
  }
}

function controller() {
  const ctx = new RecordingContext();
  const dev = new I8042(ctx, new DeviceState(DeviceState.allocate(I8042.stateSize)));
  const inb = (port: number) => {
    const data = new Uint8Array(1);
    dev.read(port, data);
    return data[0];
  };
  const outb = (port: number, value: number) => dev.write(port, Uint8Array.of(value));
  return {
    ctx,
    status: () => inb(COMMAND_PORT),
    data: () => inb(DATA_PORT),
    command: (cmd: number, ...params: number[]) => {
      outb(COMMAND_PORT, cmd);
      for (const p of params) outb(DATA_PORT, p);
    },
    send: (byte: number) => outb(DATA_PORT, byte),
    /** As Linux's i8042_command reads a reply: the output buffer must be full. */
    reply(): number {
      assert.equal(this.status() & STATUS_OUTPUT_FULL, STATUS_OUTPUT_FULL, 'a reply is waiting');
      return this.data();
    },
  };
}

test("Linux's probe: empty output buffer, self test, port tests, a stable command byte", () => {
  const c = controller();
  assert.equal(c.status(), STATUS_SYSTEM | STATUS_UNLOCKED, 'nothing to flush, keylock open');
  c.command(Command.SELF_TEST);
  assert.equal(c.reply(), SELF_TEST_PASSED);
  assert.equal(c.status() & STATUS_OUTPUT_FULL, 0);
  c.command(Command.TEST_KEYBOARD_PORT);
  assert.equal(c.reply(), PORT_TEST_PASSED);
  c.command(Command.TEST_MOUSE_PORT);
  assert.equal(c.reply(), PORT_TEST_PASSED);
  c.command(Command.READ_RAM);
  const ctr = c.reply();
  assert.equal(ctr, CTR_KEYBOARD_INT | CTR_SYSTEM | CTR_MOUSE_DISABLED | CTR_TRANSLATE);
  c.command(Command.READ_RAM);
  assert.equal(c.reply(), ctr);
  // i8042_controller_init: keyboard off and its interrupt masked, written back.
  c.command(Command.WRITE_RAM, (ctr | CTR_KEYBOARD_DISABLED) & ~CTR_KEYBOARD_INT);
  c.command(Command.READ_RAM);
  assert.equal(c.reply(), (ctr | CTR_KEYBOARD_DISABLED) & ~CTR_KEYBOARD_INT);
  assert.deepEqual(c.ctx.stops, []);
});

test('the status register: command/data bit, system flag from the command byte', () => {
  const c = controller();
  c.command(Command.DISABLE_KEYBOARD);
  assert.equal(c.status() & STATUS_COMMAND, STATUS_COMMAND);
  c.command(Command.WRITE_RAM, 0);
  assert.equal(c.status(), STATUS_UNLOCKED, 'last write was data; system flag cleared with the command byte');
  c.command(Command.SELF_TEST);
  assert.equal(c.reply(), SELF_TEST_PASSED);
  assert.equal(c.status() & STATUS_SYSTEM, STATUS_SYSTEM, 'a passed self test sets the system flag');
});

test('other controller RAM bytes read back what was written', () => {
  const c = controller();
  c.command(Command.WRITE_RAM + 5, 0xa5);
  c.command(Command.READ_RAM + 5);
  assert.equal(c.reply(), 0xa5);
});

test('disabling and enabling the ports sets and clears the command byte bits', () => {
  const c = controller();
  const ctr = () => {
    c.command(Command.READ_RAM);
    return c.reply();
  };
  c.command(Command.DISABLE_KEYBOARD);
  assert.equal(ctr() & CTR_KEYBOARD_DISABLED, CTR_KEYBOARD_DISABLED);
  c.command(Command.ENABLE_KEYBOARD);
  assert.equal(ctr() & CTR_KEYBOARD_DISABLED, 0);
  c.command(Command.ENABLE_MOUSE);
  assert.equal(ctr() & CTR_MOUSE_DISABLED, 0);
  c.command(Command.DISABLE_MOUSE);
  assert.equal(ctr() & CTR_MOUSE_DISABLED, CTR_MOUSE_DISABLED);
});

test('no keyboard: a byte for it comes back as 0xfe with the timeout bit, on IRQ 1', () => {
  const c = controller();
  c.send(0xff); // keyboard reset
  assert.equal(c.status() & (STATUS_OUTPUT_FULL | STATUS_TIMEOUT | STATUS_MOUSE_DATA), STATUS_OUTPUT_FULL | STATUS_TIMEOUT);
  assert.deepEqual(c.ctx.irqs, [[KEYBOARD_IRQ, true]]);
  assert.equal(c.data(), NO_DEVICE);
  assert.equal(c.status() & (STATUS_OUTPUT_FULL | STATUS_TIMEOUT), 0);
  assert.deepEqual(c.ctx.irqs, [[KEYBOARD_IRQ, true], [KEYBOARD_IRQ, false]]);
});

test('no mouse: the aux loopback works (Linux checks the port with it), a byte for the mouse times out on IRQ 12', () => {
  const c = controller();
  c.command(Command.WRITE_MOUSE_OUTPUT, 0x5a);
  assert.equal(c.status() & STATUS_MOUSE_DATA, STATUS_MOUSE_DATA);
  assert.equal(c.reply(), 0x5a);
  assert.deepEqual(c.ctx.irqs, [], 'the mouse interrupt is off in the command byte');

  c.command(Command.READ_RAM);
  c.command(Command.WRITE_RAM, (c.reply() | CTR_MOUSE_INT) & ~CTR_MOUSE_DISABLED);
  c.command(Command.WRITE_MOUSE, 0xf2); // get ID
  assert.equal(c.status() & (STATUS_OUTPUT_FULL | STATUS_MOUSE_DATA | STATUS_TIMEOUT), STATUS_OUTPUT_FULL | STATUS_MOUSE_DATA | STATUS_TIMEOUT);
  const mouseIrqs = () => c.ctx.irqs.filter(([line]) => line === MOUSE_IRQ);
  assert.deepEqual(mouseIrqs(), [[MOUSE_IRQ, true]]);
  assert.equal(c.data(), NO_DEVICE);
  assert.deepEqual(mouseIrqs(), [[MOUSE_IRQ, true], [MOUSE_IRQ, false]]);
  assert.deepEqual(c.ctx.irqs.at(-1), [MOUSE_IRQ, false], 'a mouse byte never raised IRQ 1');
});

test('controller replies interrupt on IRQ 1 when the keyboard interrupt is on', () => {
  const c = controller();
  c.command(Command.SELF_TEST);
  assert.deepEqual(c.ctx.irqs, [[KEYBOARD_IRQ, true]]);
  c.data();
  c.command(Command.WRITE_KEYBOARD_OUTPUT, 0x1c);
  assert.equal(c.status() & STATUS_MOUSE_DATA, 0);
  assert.equal(c.data(), 0x1c);
  assert.deepEqual(c.ctx.irqs, [[KEYBOARD_IRQ, true], [KEYBOARD_IRQ, false], [KEYBOARD_IRQ, true], [KEYBOARD_IRQ, false]]);
});

test('pulse reset line (0xfe) resets the machine; 0xff pulses nothing', () => {
  const c = controller();
  c.command(0xff);
  assert.deepEqual(c.ctx.stops, []);
  c.command(Command.RESET);
  assert.deepEqual(c.ctx.stops, [{ kind: 'reset', exitCode: 0, message: 'the guest reset the machine through the keyboard controller' }]);
});

test('the output port reads back; writing it with the reset bit clear resets', () => {
  const c = controller();
  c.command(Command.READ_OUTPUT_PORT);
  assert.equal(c.reply(), 0x03, 'reset line high, A20 on');
  c.command(Command.WRITE_OUTPUT_PORT, 0x01); // A20 off
  c.command(Command.READ_OUTPUT_PORT);
  assert.equal(c.reply(), 0x01);
  assert.equal(c.ctx.stops.length, 0);
  c.command(Command.WRITE_OUTPUT_PORT, 0x02);
  assert.equal(c.ctx.stops.length, 1);
  assert.equal(c.ctx.stops[0].kind, 'reset');
});

test('a new command cancels one still waiting for its parameter', () => {
  const c = controller();
  c.command(Command.WRITE_OUTPUT_PORT);
  c.command(Command.READ_RAM);
  assert.notEqual(c.reply(), 0);
  c.send(0x00); // goes to the (absent) keyboard, not the output port
  assert.deepEqual(c.ctx.stops, []);
  assert.equal(c.data(), NO_DEVICE);
});
