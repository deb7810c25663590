/**
 * What an emulated instruction is: its encoding (for the decoder), its
 * mnemonic (for statistics and reports), and what it does to a CpuContext.
 */
import type { CpuContext } from './cpu-context.js';
import type { Decoded, EncodingShape } from './decoder.js';

export interface InstructionDef extends EncodingShape {
  mnemonic: string;
  /** Runs the instruction. Returning { trap } delivers that exception after the instruction completes (int3). */
  execute(ctx: CpuContext, insn: Decoded<InstructionDef>): void | { trap: number };
}

export type Insn = Decoded<InstructionDef>;

/** Address of the instruction's memory operand. */
export function operandAddress(ctx: CpuContext, insn: Insn): bigint {
  if (!insn.memory) throw new Error(`${insn.entry.mnemonic} has no memory operand`);
  return ctx.linearAddress(insn.memory, insn.addressSize, ctx.regs.rip + BigInt(insn.length));
}

/** The r/m operand's value: a register when mod == 3, else memory. */
export function readRm(ctx: CpuContext, insn: Insn, size: number): bigint {
  if (insn.modrm!.mod === 3) return ctx.gpr(insn.modrm!.rm, size, insn.rex);
  return ctx.readValue(operandAddress(ctx, insn), size);
}
