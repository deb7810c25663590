/**
 * The power-management registers of a hardware-reduced ACPI platform
 * (ACPI 6.5, 4.8.3.6 and 4.8.3.7), which the FADT points the guest at:
 * writing S5 to the sleep control register powers the VM off, writing the
 * reset value to the reset register resets it.
 *
 * Byte-wide I/O ports from 0x600, the block Cloud Hypervisor also uses for
 * this: clear of the legacy PC devices below 0x400, and claimed in the DSDT
 * as motherboard resources so the guest puts nothing else there.
 *
 *   0x600  SLEEP_CONTROL_REG  write: SLP_TYP (bits 2-4) | SLP_EN (bit 5)
 *   0x601  SLEEP_STATUS_REG   read: 0 (WAK_STS never set: the VM never wakes from S5)
 *   0x602  RESET_REG          write RESET_VALUE to reset
 *   0x603  reserved           reads 0
 */
import { ExitStatus } from '../vm-stop.js';
import type { BusDevice } from '../bus.js';
import type { DeviceContext } from '../context.js';

export const ACPI_PM_BASE = 0x600;
export const ACPI_PM_SIZE = 4;

/** Register offsets from the device's base. */
export const SLEEP_CONTROL = 0;
export const SLEEP_STATUS = 1;
export const RESET = 2;

/** What the guest writes to RESET (the FADT's RESET_VALUE). */
export const RESET_VALUE = 0x01;
/** The SLP_TYP of S5 (soft off); the DSDT's \_S5 package hands it to the guest. */
export const SLP_TYP_S5 = 5;
const SLP_TYP_SHIFT = 2;
const SLP_TYP_MASK = 0x7;
const SLP_EN = 0x20;

export class AcpiPm implements BusDevice {
  constructor(private readonly ctx: DeviceContext) {}

  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  write(offset: number, data: Uint8Array): void {
    data.forEach((value, i) => this.writeRegister(offset + i, value));
  }

  private writeRegister(register: number, value: number): void {
    if (register === SLEEP_CONTROL && (value & SLP_EN) !== 0) {
      this.sleep((value >> SLP_TYP_SHIFT) & SLP_TYP_MASK);
    } else if (register === RESET && value === RESET_VALUE) {
      this.ctx.stop({ kind: 'reset', exitCode: ExitStatus.OK, message: 'the guest asked for a reset' });
    }
    // Writes to SLEEP_STATUS clear WAK_STS, which is never set.
  }

  private sleep(slpTyp: number): void {
    if (slpTyp === SLP_TYP_S5) {
      this.ctx.stop({ kind: 'shutdown', exitCode: ExitStatus.OK, message: 'the guest powered off' });
    } else {
      // Only \_S5 is declared, so a guest that asks for another state ignored the DSDT.
      this.ctx.stop({
        kind: 'guest-error', exitCode: ExitStatus.GUEST_ERROR,
        message: `the guest asked for sleep type ${slpTyp}; tsvmm offers only S5 (type ${SLP_TYP_S5}, power off)`,
      });
    }
  }
}
