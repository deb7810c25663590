/**
 * A small builder for AML, the byte code of the DSDT (ACPI 6.5, chapter 20).
 * Each function returns the encoding of one term; terms nest by passing
 * their bytes to the term that holds them, so a definition block reads
 * like the ASL it stands for:
 *
 *   aml.scope('\\_SB', [aml.device('COM1', [aml.name('_HID', aml.eisaId('PNP0501'))])])
 */

export type Aml = Uint8Array;

const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const NAME_OP = 0x08;
const BYTE_PREFIX = 0x0a;
const WORD_PREFIX = 0x0b;
const DWORD_PREFIX = 0x0c;
const STRING_PREFIX = 0x0d;
const QWORD_PREFIX = 0x0e;
const SCOPE_OP = 0x10;
const BUFFER_OP = 0x11;
const PACKAGE_OP = 0x12;
const VAR_PACKAGE_OP = 0x13;
const METHOD_OP = 0x14;
const NOTIFY_OP = 0x86;
const RETURN_OP = 0xa4;
const EXT_OP_PREFIX = 0x5b;
const DEVICE_OP = 0x82; // after EXT_OP_PREFIX

const ROOT_CHAR = 0x5c; // '\'
const PARENT_PREFIX_CHAR = 0x5e; // '^'
const DUAL_NAME_PREFIX = 0x2e;
const MULTI_NAME_PREFIX = 0x2f;
const NULL_NAME = 0x00;

/** The largest length a PkgLength can hold (28 bits). */
const MAX_PKG_LENGTH = 0x0fff_ffff;

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The PkgLength that precedes a body of `bodyLength` bytes. It counts
 * itself: one byte up to 63 in all, else a lead byte (count of following
 * bytes in bits 6-7, low nibble of the length in bits 0-3) and 1 to 3 more
 * bytes holding the rest of the length, least significant first.
 */
export function pkgLength(bodyLength: number): Uint8Array {
  if (bodyLength + 1 <= 0x3f) return Uint8Array.of(bodyLength + 1);
  for (let extra = 1; extra <= 3; extra++) {
    const total = bodyLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const bytes = new Uint8Array(1 + extra);
      bytes[0] = (extra << 6) | (total & 0xf);
      for (let i = 1; i <= extra; i++) bytes[i] = (total >>> (4 + 8 * (i - 1))) & 0xff;
      return bytes;
    }
  }
  throw new Error(`AML package of ${bodyLength} bytes is longer than ${MAX_PKG_LENGTH}`);
}

/** A body preceded by its PkgLength. */
function withPkgLength(body: Uint8Array): Uint8Array {
  return concat([pkgLength(body.length), body]);
}

/** A 4-character name segment: upper-case letters, digits, '_', padded with '_'. */
function nameSeg(seg: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) throw new Error(`'${seg}' is not an ACPI name segment`);
  return Uint8Array.from(seg.padEnd(4, '_'), (c) => c.charCodeAt(0));
}

/**
 * A NameString: an optional root ('\') or parent ('^') prefix, then
 * segments separated by '.', as in '\_SB.PCI0' or '^COM1' or '_HID'.
 */
export function nameString(path: string): Uint8Array {
  const prefix = /^(\\|\^*)/.exec(path)![0];
  const rest = path.slice(prefix.length);
  const segs = rest === '' ? [] : rest.split('.').map(nameSeg);
  const lead = Uint8Array.from(prefix, (c) => (c === '\\' ? ROOT_CHAR : PARENT_PREFIX_CHAR));
  switch (segs.length) {
    case 0: return concat([lead, Uint8Array.of(NULL_NAME)]);
    case 1: return concat([lead, segs[0]]);
    case 2: return concat([lead, Uint8Array.of(DUAL_NAME_PREFIX), ...segs]);
    default:
      if (segs.length > 255) throw new Error(`ACPI name '${path}' has too many segments`);
      return concat([lead, Uint8Array.of(MULTI_NAME_PREFIX, segs.length), ...segs]);
  }
}

/** An integer constant in its shortest encoding. */
export function integer(value: number | bigint): Aml {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new Error(`${value} does not fit an AML integer`);
  if (v === 0n) return Uint8Array.of(ZERO_OP);
  if (v === 1n) return Uint8Array.of(ONE_OP);
  const [prefix, size] =
    v <= 0xffn ? [BYTE_PREFIX, 1] : v <= 0xffffn ? [WORD_PREFIX, 2] : v <= 0xffff_ffffn ? [DWORD_PREFIX, 4] : [QWORD_PREFIX, 8];
  const bytes = new Uint8Array(1 + size);
  bytes[0] = prefix;
  for (let i = 0; i < size; i++) bytes[1 + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/** An ASCII string constant. */
export function string(text: string): Aml {
  if (!/^[\x01-\x7f]*$/.test(text)) throw new Error(`AML strings are ASCII without NUL; got '${text}'`);
  return concat([Uint8Array.of(STRING_PREFIX), Uint8Array.from(text, (c) => c.charCodeAt(0)), Uint8Array.of(0)]);
}

/**
 * The 32-bit compressed EISA ID of a PNP ID such as 'PNP0501': three letters
 * of 5 bits each (A=1) and four hex digits, stored big-endian in a
 * little-endian DWORD, so 'PNP0501' is 0x0105D041.
 */
export function eisaIdValue(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new Error(`'${id}' is not an EISA ID (three letters, four hex digits)`);
  const letter = (i: number) => id.charCodeAt(i) - 0x40;
  const vendor = (letter(0) << 10) | (letter(1) << 5) | letter(2);
  const product = parseInt(id.slice(3), 16);
  const bigEndian = [vendor >> 8, vendor & 0xff, product >> 8, product & 0xff];
  return (bigEndian[0] | (bigEndian[1] << 8) | (bigEndian[2] << 16) | (bigEndian[3] << 24)) >>> 0;
}

/** ASL's EISAID(): the compressed ID as an integer. */
export function eisaId(id: string): Aml {
  return integer(eisaIdValue(id));
}

/** Name (path, value) */
export function name(path: string, value: Aml): Aml {
  return concat([Uint8Array.of(NAME_OP), nameString(path), value]);
}

/** Scope (path) { terms } */
export function scope(path: string, terms: readonly Aml[]): Aml {
  return concat([Uint8Array.of(SCOPE_OP), withPkgLength(concat([nameString(path), ...terms]))]);
}

/** Device (path) { terms } */
export function device(path: string, terms: readonly Aml[]): Aml {
  return concat([Uint8Array.of(EXT_OP_PREFIX, DEVICE_OP), withPkgLength(concat([nameString(path), ...terms]))]);
}

export interface MethodOptions {
  /** Number of arguments, 0 to 7. */
  args?: number;
  /** Whether calls are serialized (one at a time). */
  serialized?: boolean;
}

/** Method (path, args, Serialized|NotSerialized) { terms } */
export function method(path: string, options: MethodOptions, terms: readonly Aml[]): Aml {
  const args = options.args ?? 0;
  if (!Number.isInteger(args) || args < 0 || args > 7) throw new Error(`an AML method takes 0 to 7 arguments, not ${args}`);
  const flags = args | (options.serialized ? 0x08 : 0);
  return concat([Uint8Array.of(METHOD_OP), withPkgLength(concat([nameString(path), Uint8Array.of(flags), ...terms]))]);
}

/** Return (value) */
export function returnValue(value: Aml): Aml {
  return concat([Uint8Array.of(RETURN_OP), value]);
}

/** Notify (path, value): tells the OS's driver of the object at `path` that something happened. */
export function notify(path: string, value: number): Aml {
  return concat([Uint8Array.of(NOTIFY_OP), nameString(path), integer(value)]);
}

/** Package () { elements }; VarPackage past 255 elements. */
export function pkg(elements: readonly Aml[]): Aml {
  if (elements.length <= 0xff) {
    return concat([Uint8Array.of(PACKAGE_OP), withPkgLength(concat([Uint8Array.of(elements.length), ...elements]))]);
  }
  return concat([Uint8Array.of(VAR_PACKAGE_OP), withPkgLength(concat([integer(elements.length), ...elements]))]);
}

/** Buffer () { bytes } */
export function buffer(bytes: Uint8Array): Aml {
  return concat([Uint8Array.of(BUFFER_OP), withPkgLength(concat([integer(bytes.length), bytes]))]);
}
