/**
 * An x86 instruction decoder for the instructions the emulator knows:
 * prefixes, REX, the opcode maps, ModRM/SIB/displacement and immediates.
 * Which opcodes exist, and whether they take a ModRM byte or an immediate,
 * comes from the instruction table, so the decoder stays generic.
 */

export type CpuBits = 16 | 32 | 64;
export type OpcodeMap = 'one' | '0f' | '0f38' | '0f3a';
export type SegmentName = 'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs';

export interface Prefixes {
  lock: boolean;
  rep: boolean; // F3
  repne: boolean; // F2
  operandSize: boolean; // 66
  addressSize: boolean; // 67
  segment?: SegmentName;
}

export interface ModRM {
  mod: number;
  /** reg field, extended by REX.R. */
  reg: number;
  /** rm field, extended by REX.B (meaningful as a register when mod == 3). */
  rm: number;
  /** The raw byte, for instructions named by their whole ModRM (e.g. 0F 01 D0). */
  byte: number;
}

export interface MemoryOperand {
  base?: number; // register number 0-15
  index?: number;
  scale: number;
  displacement: bigint;
  segment: SegmentName;
  ripRelative: boolean;
}

/** What the table tells the decoder about one encoding. */
export interface EncodingShape {
  map: OpcodeMap;
  opcode: number;
  /** A mandatory prefix that selects this instruction (66, F2, F3) or 'none' (none of them allowed). */
  prefix?: 0x66 | 0xf2 | 0xf3 | 'none';
  modrm: boolean;
  /** Required ModRM.reg (the /digit), before REX.R. */
  digit?: number;
  /** Required ModRM.mod class. */
  form?: 'memory' | 'register';
  /** Required whole ModRM byte. */
  modrmByte?: number;
  /** REX.W required (1) or forbidden (0). */
  rexW?: 0 | 1;
  /** Immediate size in bytes; 'z' = operand size capped at 4. */
  immediate?: 0 | 1 | 2 | 4 | 'z';
}

export interface Decoded<E extends EncodingShape = EncodingShape> {
  entry: E;
  bytes: Uint8Array;
  length: number;
  bits: CpuBits;
  prefixes: Prefixes;
  rex: number;
  operandSize: 2 | 4 | 8;
  addressSize: 2 | 4 | 8;
  modrm?: ModRM;
  memory?: MemoryOperand;
  immediate: bigint;
}

export class DecodeError extends Error {}

const SEGMENT_PREFIX: Record<number, SegmentName> = { 0x26: 'es', 0x2e: 'cs', 0x36: 'ss', 0x3e: 'ds', 0x64: 'fs', 0x65: 'gs' };
const MAX_LENGTH = 15;

/** Decodes the instruction at the start of `bytes`, choosing among `table`'s encodings. */
export function decode<E extends EncodingShape>(bytes: Uint8Array, bits: CpuBits, table: readonly E[]): Decoded<E> {
  let at = 0;
  const next = () => {
    if (at >= bytes.length || at >= MAX_LENGTH) throw new DecodeError('instruction runs past the bytes available');
    return bytes[at++];
  };
  const prefixes: Prefixes = { lock: false, rep: false, repne: false, operandSize: false, addressSize: false };
  let lastMandatory: 0x66 | 0xf2 | 0xf3 | undefined;
  let b = next();
  for (;;) {
    if (b === 0xf0) prefixes.lock = true;
    else if (b === 0xf3) (prefixes.rep = true), (lastMandatory = 0xf3);
    else if (b === 0xf2) (prefixes.repne = true), (lastMandatory = 0xf2);
    else if (b === 0x66) (prefixes.operandSize = true), (lastMandatory ??= 0x66);
    else if (b === 0x67) prefixes.addressSize = true;
    else if (b in SEGMENT_PREFIX) prefixes.segment = SEGMENT_PREFIX[b];
    else break;
    b = next();
  }
  let rex = 0;
  if (bits === 64 && (b & 0xf0) === 0x40) {
    rex = b;
    b = next();
  }
  let map: OpcodeMap = 'one';
  if (b === 0x0f) {
    b = next();
    map = '0f';
    if (b === 0x38 || b === 0x3a) {
      map = b === 0x38 ? '0f38' : '0f3a';
      b = next();
    }
  }
  const opcode = b;
  const candidates = table.filter((e) => e.map === map && e.opcode === opcode);
  if (candidates.length === 0) throw new DecodeError('unknown opcode');

  const rexW = (rex & 8) !== 0;
  const needsModrm = candidates.some((e) => e.modrm);
  let modrm: ModRM | undefined;
  if (needsModrm) {
    const m = next();
    modrm = { mod: m >> 6, reg: ((m >> 3) & 7) | (rex & 4 ? 8 : 0), rm: (m & 7) | (rex & 1 ? 8 : 0), byte: m };
  }
  const entry = candidates.find((e) => {
    if (e.prefix === 'none' && lastMandatory !== undefined && (lastMandatory !== 0x66 || prefixesMatter(e))) return false;
    if (typeof e.prefix === 'number' && !hasPrefix(prefixes, e.prefix)) return false;
    if (e.rexW !== undefined && Number(rexW) !== e.rexW) return false;
    if (!e.modrm) return true;
    if (modrm === undefined) return false;
    if (e.modrmByte !== undefined && modrm.byte !== e.modrmByte) return false;
    if (e.digit !== undefined && ((modrm.byte >> 3) & 7) !== e.digit) return false;
    if (e.form === 'memory' && modrm.mod === 3) return false;
    if (e.form === 'register' && modrm.mod !== 3) return false;
    return true;
  });
  if (entry === undefined) throw new DecodeError('unknown encoding');

  const operandSize: 2 | 4 | 8 = rexW ? 8 : bits === 16 ? (prefixes.operandSize ? 4 : 2) : prefixes.operandSize ? 2 : 4;
  const addressSize: 2 | 4 | 8 = bits === 64 ? (prefixes.addressSize ? 4 : 8) : bits === 32 ? (prefixes.addressSize ? 2 : 4) : prefixes.addressSize ? 4 : 2;

  let memory: MemoryOperand | undefined;
  if (entry.modrm && modrm && modrm.mod !== 3) {
    memory = addressSize === 2 ? decodeAddress16(modrm, next, prefixes) : decodeAddress(modrm, rex, bits, next, prefixes);
  }
  const immSize = entry.immediate === 'z' ? Math.min(operandSize, 4) : (entry.immediate ?? 0);
  let immediate = 0n;
  for (let i = 0; i < immSize; i++) immediate |= BigInt(next()) << BigInt(8 * i);
  if (immSize > 0) immediate = BigInt.asIntN(immSize * 8, immediate);

  return { entry, bytes: bytes.subarray(0, at), length: at, bits, prefixes, rex, operandSize, addressSize, modrm, memory, immediate };
}

function hasPrefix(p: Prefixes, prefix: 0x66 | 0xf2 | 0xf3): boolean {
  return prefix === 0x66 ? p.operandSize : prefix === 0xf2 ? p.repne : p.rep;
}

/** For 'none' entries, a 66 prefix is an operand-size override unless the map gives it meaning (0F maps). */
function prefixesMatter(e: EncodingShape): boolean {
  return e.map !== 'one';
}

function signedDisp(next: () => number, size: 1 | 4): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) v |= BigInt(next()) << BigInt(8 * i);
  return BigInt.asIntN(size * 8, v);
}

function decodeAddress(modrm: ModRM, rex: number, bits: CpuBits, next: () => number, prefixes: Prefixes): MemoryOperand {
  const rm = modrm.rm & 7;
  const op: MemoryOperand = { scale: 1, displacement: 0n, segment: prefixes.segment ?? 'ds', ripRelative: false };
  if (rm === 4) {
    const sib = next();
    const scale = 1 << (sib >> 6);
    const index = ((sib >> 3) & 7) | (rex & 2 ? 8 : 0);
    const base = (sib & 7) | (rex & 1 ? 8 : 0);
    if (index !== 4) {
      op.index = index;
      op.scale = scale;
    }
    if ((sib & 7) === 5 && modrm.mod === 0) {
      op.displacement = signedDisp(next, 4);
    } else {
      op.base = base;
    }
  } else if (rm === 5 && modrm.mod === 0) {
    op.displacement = signedDisp(next, 4);
    op.ripRelative = bits === 64;
  } else {
    op.base = modrm.rm;
  }
  if (modrm.mod === 1) op.displacement = signedDisp(next, 1);
  if (modrm.mod === 2) op.displacement = signedDisp(next, 4);
  if (prefixes.segment === undefined && (op.base === 4 || op.base === 5)) op.segment = 'ss';
  return op;
}

// 16-bit addressing: [bx+si], [bx+di], [bp+si], [bp+di], [si], [di], [bp]/disp16, [bx].
const ADDRESS16: [number | undefined, number | undefined][] = [
  [3, 6], [3, 7], [5, 6], [5, 7], [6, undefined], [7, undefined], [5, undefined], [3, undefined],
];

function decodeAddress16(modrm: ModRM, next: () => number, prefixes: Prefixes): MemoryOperand {
  const rm = modrm.rm & 7;
  const [base, index] = ADDRESS16[rm];
  const op: MemoryOperand = { base, index, scale: 1, displacement: 0n, segment: prefixes.segment ?? 'ds', ripRelative: false };
  if (modrm.mod === 0 && rm === 6) {
    op.base = undefined;
    op.displacement = BigInt(next() | (next() << 8));
  } else if (modrm.mod === 1) {
    op.displacement = signedDisp(next, 1);
  } else if (modrm.mod === 2) {
    op.displacement = BigInt.asIntN(16, BigInt(next() | (next() << 8)));
  }
  if (prefixes.segment === undefined && op.base === 5) op.segment = 'ss';
  return op;
}
