/**
 * The XSDT (ACPI 6.5, 5.2.8): the list of the other tables, by 64-bit
 * guest-physical address. The DSDT is not in it; the FADT points at it.
 */
import { systemTable } from './table.js';

export const XSDT_REVISION = 1;

export function xsdt(tableAddresses: readonly number[]): Uint8Array {
  const body = new Uint8Array(8 * tableAddresses.length);
  const view = new DataView(body.buffer);
  tableAddresses.forEach((address, i) => view.setBigUint64(8 * i, BigInt(address), true));
  return systemTable('XSDT', XSDT_REVISION, body);
}
