/**
 * The RSDP (ACPI 6.5, 5.2.5): where the OS starts. Linux finds it by
 * scanning 0xe0000-0xfffff on 16-byte boundaries for "RSD PTR ", or at
 * boot_params.acpi_rsdp_addr. Revision 2 (ACPI 2.0+) with the XSDT's
 * address; no RSDT, which only ACPI 1.0 systems need.
 */
import { checksum, OEM_ID, putAscii } from './table.js';

export const RSDP_SIGNATURE = 'RSD PTR ';
export const RSDP_REVISION = 2;
export const RSDP_SIZE = 36;
/** The ACPI 1.0 part, which the first checksum covers. */
export const RSDP_V1_SIZE = 20;
/** Where the OS scans for it: 16-byte aligned. */
export const RSDP_ALIGNMENT = 16;

export function rsdp(xsdtAddress: number): Uint8Array {
  const bytes = new Uint8Array(RSDP_SIZE);
  const view = new DataView(bytes.buffer);
  putAscii(bytes, 0, RSDP_SIGNATURE);
  putAscii(bytes, 9, OEM_ID);
  view.setUint8(15, RSDP_REVISION);
  // RsdtAddress (offset 16) stays 0.
  view.setUint32(20, RSDP_SIZE, true);
  view.setBigUint64(24, BigInt(xsdtAddress), true);
  bytes[8] = checksum(bytes.subarray(0, RSDP_V1_SIZE));
  bytes[32] = checksum(bytes);
  return bytes;
}
