/**
 * The header every ACPI system description table starts with (ACPI 6.5,
 * 5.2.6), and the checksum that makes a table's bytes sum to zero.
 */

export const TABLE_HEADER_SIZE = 36;
/** Offset of the checksum byte in the header. */
export const CHECKSUM_OFFSET = 9;

/** Who made the tables: six bytes of OEM ID, four of creator ID. */
export const OEM_ID = 'TSVMM ';
export const OEM_REVISION = 1;
export const CREATOR_ID = 'TSVM';
/** Our OEM table IDs are this and the signature: "TSVMFACP", "TSVMAPIC". */
const OEM_TABLE_ID_PREFIX = 'TSVM';
export const CREATOR_REVISION = 1;

/** The byte that, stored in a table, makes all its bytes sum to 0 mod 256. */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum += b;
  return -sum & 0xff;
}

/** Writes an ASCII field of exactly `text.length` bytes. */
export function putAscii(target: Uint8Array, offset: number, text: string): void {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7e) throw new Error(`'${text}' is not ASCII`);
    target[offset + i] = code;
  }
}

/** A complete table: header, then `body`. */
export function systemTable(signature: string, revision: number, body: Uint8Array): Uint8Array {
  if (signature.length !== 4) throw new Error(`table signature '${signature}' is not 4 characters`);
  const table = new Uint8Array(TABLE_HEADER_SIZE + body.length);
  const view = new DataView(table.buffer);
  putAscii(table, 0, signature);
  view.setUint32(4, table.length, true);
  view.setUint8(8, revision);
  putAscii(table, 10, OEM_ID);
  putAscii(table, 16, OEM_TABLE_ID_PREFIX + signature);
  view.setUint32(24, OEM_REVISION, true);
  putAscii(table, 28, CREATOR_ID);
  view.setUint32(32, CREATOR_REVISION, true);
  table.set(body, TABLE_HEADER_SIZE);
  table[CHECKSUM_OFFSET] = checksum(table);
  return table;
}
