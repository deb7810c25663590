/**
 * The PS/2 keyboard controller (i8042) with nothing plugged into it: what
 * Linux's i8042 driver needs to find the controller, test it, find no
 * keyboard and no mouse quickly, and reset the machine through it.
 *
 *   0x60  data: the output buffer (read), a command's parameter or a byte for the keyboard (write)
 *   0x64  status (read), command (write)
 *
 * Bytes sent to a device that is not there come back as 0xfe with the
 * status register's timeout bit, as on a real controller, so the guest's
 * PS/2 commands fail at once instead of waiting for an answer. The output
 * buffer interrupts on IRQ 1 (controller and keyboard bytes) or IRQ 12
 * (mouse bytes) when the command byte enables that interrupt.
 */
import { ExitStatus } from '../vm-stop.js';
import type { BusDevice } from '../bus.js';
import type { DeviceContext } from '../context.js';
import type { DeviceState } from '../device-state.js';

/** Ports 0x60 to 0x64; 0x61 is the in-kernel PIT's speaker port and never gets here, 0x62 and 0x63 are unused. */
export const I8042_BASE = 0x60;
export const I8042_SIZE = 5;
export const DATA_PORT = 0;
export const COMMAND_PORT = 4;

export const KEYBOARD_IRQ = 1;
export const MOUSE_IRQ = 12;

export const STATUS_OUTPUT_FULL = 0x01;
export const STATUS_SYSTEM = 0x04;
export const STATUS_COMMAND = 0x08; // the last write was to the command port
export const STATUS_UNLOCKED = 0x10; // the keyboard is not inhibited by a keylock
export const STATUS_MOUSE_DATA = 0x20;
export const STATUS_TIMEOUT = 0x40;

/** Bits of the command byte (controller RAM byte 0). */
export const CTR_KEYBOARD_INT = 0x01;
export const CTR_MOUSE_INT = 0x02;
export const CTR_SYSTEM = 0x04;
export const CTR_KEYBOARD_DISABLED = 0x10;
export const CTR_MOUSE_DISABLED = 0x20;
export const CTR_TRANSLATE = 0x40;
/** As firmware leaves it: keyboard interrupt on, mouse port off, scancode translation on. */
const CTR_AT_BOOT = CTR_KEYBOARD_INT | CTR_SYSTEM | CTR_MOUSE_DISABLED | CTR_TRANSLATE;

export const Command = {
  READ_RAM: 0x20, // 0x20-0x3f: RAM byte n (0 is the command byte)
  WRITE_RAM: 0x60, // 0x60-0x7f
  DISABLE_MOUSE: 0xa7,
  ENABLE_MOUSE: 0xa8,
  TEST_MOUSE_PORT: 0xa9,
  SELF_TEST: 0xaa,
  TEST_KEYBOARD_PORT: 0xab,
  DISABLE_KEYBOARD: 0xad,
  ENABLE_KEYBOARD: 0xae,
  READ_OUTPUT_PORT: 0xd0,
  WRITE_OUTPUT_PORT: 0xd1,
  WRITE_KEYBOARD_OUTPUT: 0xd2,
  WRITE_MOUSE_OUTPUT: 0xd3,
  WRITE_MOUSE: 0xd4,
  PULSE_OUTPUT_PORT: 0xf0, // 0xf0-0xff: pulse low the output port bits 0-3 whose command bit is 0
  RESET: 0xfe,
} as const;

export const SELF_TEST_PASSED = 0x55;
export const PORT_TEST_PASSED = 0x00;
/** What the controller reports for a byte sent to an absent device. */
export const NO_DEVICE = 0xfe;

/** Output port: bit 0 is the CPU's reset line (active low), bit 1 the A20 gate. */
export const OUTPUT_PORT_RESET_LINE = 0x01;
const OUTPUT_PORT_A20 = 0x02;

const RAM_SIZE = 32;
const RAM_INDEX = 0x1f;

/** Where each piece lives in the shared state; the controller's RAM comes first. */
const At = { OUTPUT: RAM_SIZE, STATUS: RAM_SIZE + 1, AWAITING: RAM_SIZE + 2, OUTPUT_PORT: RAM_SIZE + 3, KEYBOARD_IRQ: RAM_SIZE + 4, MOUSE_IRQ: RAM_SIZE + 5, POWERED: RAM_SIZE + 6 } as const;
const CTR = 0;
/** The status bits kept in state; the others are computed. */
const KEPT_STATUS = STATUS_OUTPUT_FULL | STATUS_COMMAND | STATUS_MOUSE_DATA | STATUS_TIMEOUT;

type Source = 'controller' | 'keyboard' | 'mouse';

export class I8042 implements BusDevice {
  static readonly stateSize = At.POWERED + 1;
  private readonly b: Uint8Array;

  constructor(
    private readonly ctx: DeviceContext,
    state: DeviceState,
  ) {
    this.b = state.bytes;
    // Every thread builds its own view; the first one powers the controller on.
    state.locked(() => {
      if (this.b[At.POWERED]) return;
      this.b[CTR] = CTR_AT_BOOT;
      this.b[At.OUTPUT_PORT] = OUTPUT_PORT_RESET_LINE | OUTPUT_PORT_A20;
      this.b[At.POWERED] = 1;
    });
  }

  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.readPort(offset + i);
    this.updateIrqs();
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.writePort(offset + i, data[i]);
    this.updateIrqs();
  }

  private readPort(port: number): number {
    const b = this.b;
    if (port === COMMAND_PORT) return (b[At.STATUS] & KEPT_STATUS) | (b[CTR] & CTR_SYSTEM ? STATUS_SYSTEM : 0) | STATUS_UNLOCKED;
    if (port !== DATA_PORT) return 0xff;
    b[At.STATUS] &= ~(STATUS_OUTPUT_FULL | STATUS_MOUSE_DATA | STATUS_TIMEOUT);
    return b[At.OUTPUT];
  }

  private writePort(port: number, value: number): void {
    if (port === COMMAND_PORT) {
      this.b[At.STATUS] |= STATUS_COMMAND;
      this.command(value);
    } else if (port === DATA_PORT) {
      this.b[At.STATUS] &= ~STATUS_COMMAND;
      this.parameter(value);
    }
  }

  private command(cmd: number): void {
    const b = this.b;
    b[At.AWAITING] = 0;
    const ramCommand = cmd & ~RAM_INDEX;
    if (ramCommand === Command.READ_RAM) return this.output(b[cmd & RAM_INDEX], 'controller');
    if (ramCommand === Command.WRITE_RAM) {
      b[At.AWAITING] = cmd;
      return;
    }
    if (cmd >= Command.PULSE_OUTPUT_PORT) {
      if (!(cmd & OUTPUT_PORT_RESET_LINE)) this.reset();
      return;
    }
    switch (cmd) {
      case Command.DISABLE_MOUSE: b[CTR] |= CTR_MOUSE_DISABLED; return;
      case Command.ENABLE_MOUSE: b[CTR] &= ~CTR_MOUSE_DISABLED; return;
      case Command.DISABLE_KEYBOARD: b[CTR] |= CTR_KEYBOARD_DISABLED; return;
      case Command.ENABLE_KEYBOARD: b[CTR] &= ~CTR_KEYBOARD_DISABLED; return;
      case Command.TEST_MOUSE_PORT:
      case Command.TEST_KEYBOARD_PORT:
        return this.output(PORT_TEST_PASSED, 'controller');
      case Command.SELF_TEST:
        b[CTR] |= CTR_SYSTEM;
        return this.output(SELF_TEST_PASSED, 'controller');
      case Command.READ_OUTPUT_PORT: return this.output(b[At.OUTPUT_PORT], 'controller');
      case Command.WRITE_OUTPUT_PORT:
      case Command.WRITE_KEYBOARD_OUTPUT:
      case Command.WRITE_MOUSE_OUTPUT:
      case Command.WRITE_MOUSE:
        b[At.AWAITING] = cmd;
        return;
      default: // other commands are not implemented: ignored
    }
  }

  /** A byte on the data port: the parameter of the command awaiting one, else a byte for the keyboard. */
  private parameter(value: number): void {
    const b = this.b;
    const cmd = b[At.AWAITING];
    b[At.AWAITING] = 0;
    switch (cmd) {
      case 0: return this.output(NO_DEVICE, 'keyboard', true);
      case Command.WRITE_OUTPUT_PORT:
        b[At.OUTPUT_PORT] = value;
        if (!(value & OUTPUT_PORT_RESET_LINE)) this.reset();
        return;
      case Command.WRITE_KEYBOARD_OUTPUT: return this.output(value, 'keyboard');
      case Command.WRITE_MOUSE_OUTPUT: return this.output(value, 'mouse');
      case Command.WRITE_MOUSE: return this.output(NO_DEVICE, 'mouse', true);
      default: b[cmd & RAM_INDEX] = value; // WRITE_RAM
    }
  }

  private output(value: number, source: Source, timeout = false): void {
    const b = this.b;
    b[At.OUTPUT] = value;
    b[At.STATUS] = (b[At.STATUS] & STATUS_COMMAND) | STATUS_OUTPUT_FULL | (source === 'mouse' ? STATUS_MOUSE_DATA : 0) | (timeout ? STATUS_TIMEOUT : 0);
  }

  private reset(): void {
    this.ctx.stop({ kind: 'reset', exitCode: ExitStatus.OK, message: 'the guest reset the machine through the keyboard controller' });
  }

  /** IRQ 1 follows a full output buffer holding a non-mouse byte, IRQ 12 one holding a mouse byte, each if the command byte enables it. */
  private updateIrqs(): void {
    const b = this.b;
    const full = (b[At.STATUS] & STATUS_OUTPUT_FULL) !== 0;
    const mouse = (b[At.STATUS] & STATUS_MOUSE_DATA) !== 0;
    this.driveIrq(KEYBOARD_IRQ, At.KEYBOARD_IRQ, full && !mouse && (b[CTR] & CTR_KEYBOARD_INT) !== 0);
    this.driveIrq(MOUSE_IRQ, At.MOUSE_IRQ, full && mouse && (b[CTR] & CTR_MOUSE_INT) !== 0);
  }

  /** Only when the level changes: each change is an ioctl. */
  private driveIrq(line: number, at: number, level: boolean): void {
    if (Number(level) === this.b[at]) return;
    this.b[at] = Number(level);
    this.ctx.irq(line, level);
  }
}
