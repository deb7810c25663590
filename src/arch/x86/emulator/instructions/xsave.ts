/**
 * The XSAVE family: XSAVE, XSAVEOPT, XSAVEC, XSAVES save processor state
 * components to memory; XRSTOR and XRSTORS load them. The vCPU's own state
 * comes from KVM_GET_XSAVE, which holds every user component in the
 * standard (non-compacted) layout with XSTATE_BV telling which are in use.
 *
 * Layouts (SDM vol. 1, ch. 13): a 512-byte legacy area (the FXSAVE image:
 * x87 and SSE), a 64-byte header (XSTATE_BV, XCOMP_BV), then components 2
 * and up: at CPUID.(0xD, i).EBX in the standard form, packed in index
 * order (64-byte aligned where CPUID.(0xD, i).ECX[1] says) in the compacted form.
 */
import { GuestFault, type CpuContext } from '../cpu-context.js';
import type { InstructionDef, Insn } from '../instruction.js';
import { operandAddress } from '../instruction.js';

const VECTOR_UD = 6;
const VECTOR_GP = 13;
const CR4_OSXSAVE = 1n << 18n;
const MSR_IA32_XSS = 0xda0;

const LEGACY_SIZE = 512;
const HEADER = 512;
const HEADER_SIZE = 64;
const EXTENDED_START = LEGACY_SIZE + HEADER_SIZE;
const COMPACTED = 1n << 63n;

// Pieces of the legacy area.
const X87_HEAD = [0, 24] as const; // FCW, FSW, FTW, FOP, FIP, FDP
const MXCSR = [24, 32] as const; // MXCSR, MXCSR_MASK
const X87_REGS = [32, 160] as const; // ST0-ST7
const XMM_START = 160;

const X87 = 0;
const SSE = 1;
const AVX = 2;

interface Component {
  size: number;
  standardOffset: number;
  aligned: boolean;
  supervisor: boolean;
}

function component(ctx: CpuContext, i: number): Component | undefined {
  const leaf = ctx.cpuidLeaf(0xd, i);
  if (!leaf || leaf.eax === 0) return undefined;
  return { size: leaf.eax, standardOffset: leaf.ebx, aligned: (leaf.ecx & 2) !== 0, supervisor: (leaf.ecx & 1) !== 0 };
}

const bit = (mask: bigint, i: number) => ((mask >> BigInt(i)) & 1n) === 1n;
const u64 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);
const setU64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);

/** Offsets of components 2..62 in a compacted area whose XCOMP_BV is `xcomp`. */
function compactedOffsets(ctx: CpuContext, xcomp: bigint): Map<number, number> {
  const offsets = new Map<number, number>();
  let at = EXTENDED_START;
  for (let i = 2; i < 63; i++) {
    if (!bit(xcomp, i)) continue;
    const c = component(ctx, i);
    if (!c) continue;
    if (c.aligned) at = Math.ceil(at / 64) * 64;
    offsets.set(i, at);
    at += c.size;
  }
  return offsets;
}

function requestedFeatures(ctx: CpuContext, supervisor: boolean): bigint {
  const edxEax = (ctx.gpr(2, 4) << 32n) | ctx.gpr(0, 4);
  const enabled = supervisor ? ctx.xcr0Value | xss(ctx) : ctx.xcr0Value;
  return enabled & edxEax;
}

function xss(ctx: CpuContext): bigint {
  return ctx.vcpu.getMsrs([MSR_IA32_XSS])[0]?.data ?? 0n;
}

function checkAccess(ctx: CpuContext, insn: Insn, privileged: boolean): bigint {
  if ((ctx.sregs.cr4 & CR4_OSXSAVE) === 0n) throw new GuestFault(VECTOR_UD);
  if (privileged && ctx.cpl !== 0) throw new GuestFault(VECTOR_GP, 0);
  const address = operandAddress(ctx, insn);
  if ((address & 63n) !== 0n) throw new GuestFault(VECTOR_GP, 0);
  return address;
}

function xmmBytes(ctx: CpuContext): number {
  return (ctx.bits === 64 ? 16 : 8) * 16;
}

/** Copies the legacy-area pieces selected by rfbm from `from` to `to`. */
function copyLegacy(ctx: CpuContext, rfbm: bigint, from: Uint8Array, to: Uint8Array): void {
  const copy = ([a, b]: readonly [number, number]) => to.set(from.subarray(a, b), a);
  if (bit(rfbm, X87)) {
    copy(X87_HEAD);
    copy(X87_REGS);
  }
  if (bit(rfbm, SSE) || bit(rfbm, AVX)) copy(MXCSR);
  if (bit(rfbm, SSE)) copy([XMM_START, XMM_START + xmmBytes(ctx)]);
}

/** Puts component i of the vCPU in its initial state. */
function initComponent(ctx: CpuContext, state: Uint8Array, i: number): void {
  if (i === X87) {
    state.fill(0, X87_HEAD[0], X87_HEAD[1]);
    state.fill(0, X87_REGS[0], X87_REGS[1]);
    new DataView(state.buffer, state.byteOffset).setUint16(0, 0x37f, true);
  } else if (i === SSE) {
    state.fill(0, XMM_START, XMM_START + xmmBytes(ctx));
  } else {
    const c = component(ctx, i);
    if (c && !c.supervisor) state.fill(0, c.standardOffset, c.standardOffset + c.size);
  }
}

/** Where each requested component 2..62 goes in the saved area. */
function placements(ctx: CpuContext, rfbm: bigint, form: 'standard' | 'compacted'): { i: number; at: number; c: Component }[] {
  const compacted = form === 'compacted' ? compactedOffsets(ctx, rfbm) : undefined;
  const out: { i: number; at: number; c: Component }[] = [];
  for (let i = 2; i < 63; i++) {
    const c = bit(rfbm, i) ? component(ctx, i) : undefined;
    if (c) out.push({ i, at: compacted ? compacted.get(i)! : c.standardOffset, c });
  }
  return out;
}

function save(ctx: CpuContext, insn: Insn, form: 'standard' | 'compacted', supervisor: boolean): void {
  const address = checkAccess(ctx, insn, supervisor);
  const rfbm = requestedFeatures(ctx, supervisor);
  const state = ctx.xsave;
  const where = placements(ctx, rfbm, form);
  const area = ctx.read(address, Math.max(EXTENDED_START, ...where.map((p) => p.at + p.c.size)));
  copyLegacy(ctx, rfbm, state, area);
  for (const { at, c } of where) {
    if (c.supervisor) area.fill(0, at, at + c.size); // not in KVM's user-state image: saved as its initial state
    else area.set(state.subarray(c.standardOffset, c.standardOffset + c.size), at);
  }
  const savedInUse = u64(state, HEADER) & rfbm;
  if (form === 'standard') {
    setU64(area, HEADER, (u64(area, HEADER) & ~rfbm) | savedInUse);
  } else {
    setU64(area, HEADER, savedInUse);
    setU64(area, HEADER + 8, COMPACTED | rfbm);
    area.fill(0, HEADER + 16, HEADER + HEADER_SIZE);
  }
  ctx.write(address, area);
}

function restore(ctx: CpuContext, insn: Insn, supervisor: boolean): void {
  const address = checkAccess(ctx, insn, supervisor);
  const header = ctx.read(address + BigInt(HEADER), HEADER_SIZE);
  const xstate = u64(header, 0);
  const xcomp = u64(header, 8);
  const compacted = (xcomp & COMPACTED) !== 0n;
  const enabled = supervisor ? ctx.xcr0Value | xss(ctx) : ctx.xcr0Value;
  if (supervisor && !compacted) throw new GuestFault(VECTOR_GP, 0);
  if (compacted) {
    const xcompFeatures = xcomp & ~COMPACTED;
    if ((xcompFeatures & ~enabled) !== 0n || (xstate & ~xcompFeatures) !== 0n) throw new GuestFault(VECTOR_GP, 0);
    if (header.subarray(16).some((b) => b !== 0)) throw new GuestFault(VECTOR_GP, 0);
  } else if ((xstate & ~ctx.xcr0Value) !== 0n || header.subarray(8).some((b) => b !== 0)) {
    throw new GuestFault(VECTOR_GP, 0);
  }
  const rfbm = requestedFeatures(ctx, supervisor);
  const offsets = compacted ? compactedOffsets(ctx, xcomp & ~COMPACTED) : undefined;
  const legacy = ctx.read(address, LEGACY_SIZE);
  const state = ctx.xsave;
  const mxcsrMask = new DataView(state.buffer, state.byteOffset).getUint32(MXCSR[0] + 4, true) || 0xffbf;
  if ((bit(rfbm, SSE) || bit(rfbm, AVX)) && (new DataView(legacy.buffer).getUint32(MXCSR[0], true) & ~mxcsrMask) !== 0) {
    throw new GuestFault(VECTOR_GP, 0);
  }
  for (let i = 0; i < 63; i++) {
    if (!bit(rfbm, i)) continue;
    if (!bit(xstate, i)) {
      initComponent(ctx, state, i);
      continue;
    }
    if (i === X87 || i === SSE) {
      copyLegacy(ctx, 1n << BigInt(i), legacy, state);
      continue;
    }
    const c = component(ctx, i);
    if (!c || c.supervisor) continue; // supervisor state is not in KVM's user-state image
    const from = compacted ? offsets!.get(i) : c.standardOffset;
    if (from === undefined) continue;
    state.set(ctx.read(address + BigInt(from), c.size), c.standardOffset);
  }
  // MXCSR is loaded whenever SSE or AVX is requested, in use or not.
  if (bit(rfbm, SSE) || bit(rfbm, AVX)) state.set(legacy.subarray(MXCSR[0], MXCSR[0] + 4), MXCSR[0]);
  setU64(state, HEADER, (u64(state, HEADER) & ~rfbm) | (xstate & rfbm));
  ctx.xsaveChanged();
}

const memoryForm = { map: '0f', modrm: true, form: 'memory' } as const;

export const xsave: InstructionDef[] = [
  { mnemonic: 'xsave', ...memoryForm, opcode: 0xae, digit: 4, prefix: 'none', execute: (ctx, i) => save(ctx, i, 'standard', false) },
  { mnemonic: 'xrstor', ...memoryForm, opcode: 0xae, digit: 5, prefix: 'none', execute: (ctx, i) => restore(ctx, i, false) },
  { mnemonic: 'xsaveopt', ...memoryForm, opcode: 0xae, digit: 6, prefix: 'none', execute: (ctx, i) => save(ctx, i, 'standard', false) },
  { mnemonic: 'xsavec', ...memoryForm, opcode: 0xc7, digit: 4, prefix: 'none', execute: (ctx, i) => save(ctx, i, 'compacted', false) },
  { mnemonic: 'xsaves', ...memoryForm, opcode: 0xc7, digit: 5, prefix: 'none', execute: (ctx, i) => save(ctx, i, 'compacted', true) },
  { mnemonic: 'xrstors', ...memoryForm, opcode: 0xc7, digit: 3, prefix: 'none', execute: (ctx, i) => restore(ctx, i, true) },
];
