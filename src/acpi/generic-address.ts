/**
 * The Generic Address Structure (ACPI 6.5, 5.2.3.2): how a table points at
 * a register, here always a byte-wide register in port I/O space.
 */

export const GENERIC_ADDRESS_SIZE = 12;

const SPACE_SYSTEM_IO = 1;
const ACCESS_BYTE = 1;

/** Writes a GAS for the 8-bit I/O port `port` at `offset` of `view`. */
export function putIoPortAddress(view: DataView, offset: number, port: number): void {
  view.setUint8(offset, SPACE_SYSTEM_IO);
  view.setUint8(offset + 1, 8); // register bit width
  view.setUint8(offset + 2, 0); // register bit offset
  view.setUint8(offset + 3, ACCESS_BYTE);
  view.setBigUint64(offset + 4, BigInt(port), true);
}
