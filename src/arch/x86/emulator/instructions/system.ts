/**
 * System instructions a software KVM's emulator may lack: CLAC and STAC, int3, XGETBV and
 * XSETBV, RDTSCP, RDPID, RDRAND and RDSEED.
 */
import { randomBytes } from 'node:crypto';
import { ARITH_FLAGS, Flag, GuestFault } from '../cpu-context.js';
import type { InstructionDef } from '../instruction.js';
import type { CpuContext } from '../cpu-context.js';

const VECTOR_BP = 3;
const VECTOR_UD = 6;
const VECTOR_GP = 13;
const MSR_TSC = 0x10;
const MSR_TSC_AUX = 0xc0000103;
const XCR0_X87 = 1n;
const XCR0_SSE = 2n;
const XCR0_AVX = 4n;
const CR4_OSXSAVE = 1n << 18n;

function msr(ctx: CpuContext, index: number): bigint {
  const [entry] = ctx.vcpu.getMsrs([index]);
  if (!entry) throw new GuestFault(VECTOR_GP, 0);
  return entry.data;
}

/** XCR0 values the CPU accepts: x87 always on, AVX only with SSE, nothing the CPU lacks. */
function validXcr0(ctx: CpuContext, value: bigint): boolean {
  const leaf = ctx.cpuidLeaf(0xd, 0);
  const supported = leaf ? (BigInt(leaf.edx) << 32n) | BigInt(leaf.eax) : XCR0_X87 | XCR0_SSE;
  return (value & XCR0_X87) !== 0n && ((value & XCR0_AVX) === 0n || (value & XCR0_SSE) !== 0n) && (value & ~supported) === 0n;
}

function random64(): bigint {
  return randomBytes(8).readBigUInt64LE();
}

const RFLAGS_AC = 1n << 18n;

export const system: InstructionDef[] = [
  ...(['clac', 'stac'] as const).map(
    (mnemonic, i): InstructionDef => ({
      mnemonic, map: '0f', opcode: 0x01, modrm: true, modrmByte: 0xca + i,
      execute(ctx) {
        if (ctx.cpl !== 0) throw new GuestFault(VECTOR_UD);
        ctx.setFlags(RFLAGS_AC, i === 1 ? RFLAGS_AC : 0n);
      },
    }),
  ),
  {
    mnemonic: 'int3', map: 'one', opcode: 0xcc, modrm: false,
    execute: () => ({ trap: VECTOR_BP }),
  },
  {
    mnemonic: 'xgetbv', map: '0f', opcode: 0x01, modrm: true, modrmByte: 0xd0,
    execute(ctx) {
      if ((ctx.sregs.cr4 & CR4_OSXSAVE) === 0n) throw new GuestFault(VECTOR_UD);
      if (ctx.gpr(1, 4) !== 0n) throw new GuestFault(VECTOR_GP, 0);
      const v = ctx.xcr0Value;
      ctx.setGpr(0, 4, v & 0xffffffffn);
      ctx.setGpr(2, 4, v >> 32n);
    },
  },
  {
    mnemonic: 'xsetbv', map: '0f', opcode: 0x01, modrm: true, modrmByte: 0xd1,
    execute(ctx) {
      if ((ctx.sregs.cr4 & CR4_OSXSAVE) === 0n) throw new GuestFault(VECTOR_UD);
      const value = (ctx.gpr(2, 4) << 32n) | ctx.gpr(0, 4);
      if (ctx.cpl !== 0 || ctx.gpr(1, 4) !== 0n || !validXcr0(ctx, value)) throw new GuestFault(VECTOR_GP, 0);
      ctx.setXcr0(value);
    },
  },
  {
    mnemonic: 'rdtscp', map: '0f', opcode: 0x01, modrm: true, modrmByte: 0xf9,
    execute(ctx) {
      const tsc = msr(ctx, MSR_TSC);
      ctx.setGpr(0, 4, tsc & 0xffffffffn);
      ctx.setGpr(2, 4, tsc >> 32n);
      ctx.setGpr(1, 4, msr(ctx, MSR_TSC_AUX) & 0xffffffffn);
    },
  },
  {
    mnemonic: 'rdpid', map: '0f', opcode: 0xc7, prefix: 0xf3, modrm: true, digit: 7, form: 'register',
    execute(ctx, insn) {
      ctx.setGpr(insn.modrm!.rm, ctx.bits === 64 ? 8 : 4, msr(ctx, MSR_TSC_AUX));
    },
  },
  ...(['rdrand', 'rdseed'] as const).map(
    (mnemonic, i): InstructionDef => ({
      mnemonic, map: '0f', opcode: 0xc7, prefix: 'none', modrm: true, digit: 6 + i, form: 'register',
      execute(ctx, insn) {
        ctx.setGpr(insn.modrm!.rm, insn.operandSize, random64());
        ctx.setFlags(ARITH_FLAGS, Flag.CF);
      },
    }),
  ),
];

