/**
 * The FADT ("FACP", ACPI 6.5, 5.2.9) of a hardware-reduced ACPI platform:
 * no PM1 event/control blocks, no PM timer, no GPEs, no SCI, no FACS.
 * Power-off and reset go through the acpi-pm device's sleep control and
 * reset registers instead, and the table points at the DSDT.
 */
import { RESET, RESET_VALUE, SLEEP_CONTROL, SLEEP_STATUS } from '../devices/legacy/acpi-pm.js';
import { putIoPortAddress } from './generic-address.js';
import { putAscii, systemTable, TABLE_HEADER_SIZE } from './table.js';

export const FADT_REVISION = 6;
export const FADT_MINOR_REVISION = 5;
export const FADT_SIZE = 276;

/** Offsets of the fields we fill, from the start of the table. */
export const FadtOffset = {
  PREFERRED_PM_PROFILE: 45,
  SCI_INT: 46,
  IAPC_BOOT_ARCH: 109,
  FLAGS: 112,
  RESET_REG: 116,
  RESET_VALUE: 128,
  MINOR_REVISION: 131,
  X_DSDT: 140,
  SLEEP_CONTROL_REG: 244,
  SLEEP_STATUS_REG: 256,
  HYPERVISOR_VENDOR_IDENTITY: 268,
} as const;

export const FadtFlag = {
  WBINVD: 1 << 0,
  /** No fixed-feature power button: set when there is none. */
  PWR_BUTTON: 1 << 4,
  /** No fixed-feature sleep button: set when there is none. */
  SLP_BUTTON: 1 << 5,
  RESET_REG_SUP: 1 << 10,
  HW_REDUCED_ACPI: 1 << 20,
} as const;

export const BootArchFlag = {
  /** User-visible ISA/LPC devices: COM ports, the keyboard controller. */
  LEGACY_DEVICES: 1 << 0,
  /** A keyboard controller at 0x60/0x64. */
  I8042: 1 << 1,
  VGA_NOT_PRESENT: 1 << 2,
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;

/** A VM fits none of the form factors the profile names; "unspecified" claims none. */
const PM_PROFILE_UNSPECIFIED = 0;

/**
 * The SCI interrupt. A hardware-reduced platform has no SCI and the OS ignores
 * this field, but Linux still compares every MADT interrupt source override
 * with it: left at 0, an override of IRQ0 (the PIT) would be taken for the
 * SCI's and made level-triggered, active-low. 9 is the SCI's IRQ on a PC.
 */
const SCI_IRQ = 9;

export const HYPERVISOR_VENDOR = 'TSVMM';

export interface FadtOptions {
  dsdtAddress: number;
  /** Port base of the acpi-pm device. */
  pmBase: number;
  /** Whether there are user-visible legacy (ISA) devices, such as COM ports. */
  legacyDevices: boolean;
  /** A PS/2 keyboard controller at 0x60/0x64. */
  i8042: boolean;
  /** A CMOS RTC at 0x70; without one Linux must not touch those ports. */
  cmosRtc: boolean;
}

export function fadt(options: FadtOptions): Uint8Array {
  const table = new Uint8Array(FADT_SIZE);
  const view = new DataView(table.buffer);
  // FIRMWARE_CTRL, X_FIRMWARE_CTRL = 0: a hardware-reduced platform may omit the FACS.
  view.setUint8(FadtOffset.PREFERRED_PM_PROFILE, PM_PROFILE_UNSPECIFIED);
  view.setUint16(FadtOffset.SCI_INT, SCI_IRQ, true);
  const bootArch =
    BootArchFlag.VGA_NOT_PRESENT |
    (options.legacyDevices ? BootArchFlag.LEGACY_DEVICES : 0) |
    (options.i8042 ? BootArchFlag.I8042 : 0) |
    (options.cmosRtc ? 0 : BootArchFlag.CMOS_RTC_NOT_PRESENT);
  view.setUint16(FadtOffset.IAPC_BOOT_ARCH, bootArch, true);
  view.setUint32(
    FadtOffset.FLAGS,
    FadtFlag.WBINVD | FadtFlag.PWR_BUTTON | FadtFlag.SLP_BUTTON | FadtFlag.RESET_REG_SUP | FadtFlag.HW_REDUCED_ACPI,
    true,
  );
  putIoPortAddress(view, FadtOffset.RESET_REG, options.pmBase + RESET);
  view.setUint8(FadtOffset.RESET_VALUE, RESET_VALUE);
  view.setUint8(FadtOffset.MINOR_REVISION, FADT_MINOR_REVISION);
  // DSDT (32-bit, offset 40) stays 0: X_DSDT supersedes it.
  view.setBigUint64(FadtOffset.X_DSDT, BigInt(options.dsdtAddress), true);
  putIoPortAddress(view, FadtOffset.SLEEP_CONTROL_REG, options.pmBase + SLEEP_CONTROL);
  putIoPortAddress(view, FadtOffset.SLEEP_STATUS_REG, options.pmBase + SLEEP_STATUS);
  putAscii(table, FadtOffset.HYPERVISOR_VENDOR_IDENTITY, HYPERVISOR_VENDOR);
  return systemTable('FACP', FADT_REVISION, table.subarray(TABLE_HEADER_SIZE));
}
