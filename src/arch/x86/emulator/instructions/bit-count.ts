/**
 * POPCNT, LZCNT and TZCNT (F3 0F B8/BD/BC), with the flags each defines.
 */
import { Flag, ARITH_FLAGS } from '../cpu-context.js';
import type { InstructionDef } from '../instruction.js';
import { readRm } from '../instruction.js';

function popcount(v: bigint): bigint {
  let n = 0n;
  for (; v; v &= v - 1n) n++;
  return n;
}

function leadingZeros(v: bigint, bits: number): bigint {
  let n = 0;
  for (let i = bits - 1; i >= 0 && ((v >> BigInt(i)) & 1n) === 0n; i--) n++;
  return BigInt(n);
}

function trailingZeros(v: bigint, bits: number): bigint {
  let n = 0;
  while (n < bits && ((v >> BigInt(n)) & 1n) === 0n) n++;
  return BigInt(n);
}

export const bitCount: InstructionDef[] = [
  {
    mnemonic: 'popcnt', map: '0f', opcode: 0xb8, prefix: 0xf3, modrm: true,
    execute(ctx, insn) {
      const src = readRm(ctx, insn, insn.operandSize);
      ctx.setGpr(insn.modrm!.reg, insn.operandSize, popcount(src));
      ctx.setFlags(ARITH_FLAGS, src === 0n ? Flag.ZF : 0n);
    },
  },
  ...([['lzcnt', 0xbd, leadingZeros], ['tzcnt', 0xbc, trailingZeros]] as const).map(
    ([mnemonic, opcode, count]): InstructionDef => ({
      mnemonic, map: '0f', opcode, prefix: 0xf3, modrm: true,
      execute(ctx, insn) {
        const src = readRm(ctx, insn, insn.operandSize);
        const result = count(src, insn.operandSize * 8);
        ctx.setGpr(insn.modrm!.reg, insn.operandSize, result);
        // CF: the source was zero; ZF: the count is zero. The other flags are undefined.
        ctx.setFlags(Flag.CF | Flag.ZF, (src === 0n ? Flag.CF : 0n) | (result === 0n ? Flag.ZF : 0n));
      },
    }),
  ),
];
