/**
 * RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (F3 0F AE /0-/3, register form):
 * the FS and GS bases, which Linux switches with them on every context
 * switch when CR4.FSGSBASE is on.
 */
import { GuestFault } from '../cpu-context.js';
import type { InstructionDef } from '../instruction.js';

const VECTOR_UD = 6;
const VECTOR_GP = 13;
const CR4_FSGSBASE = 1n << 16n;

function isCanonical(address: bigint): boolean {
  const top = address >> 47n;
  return top === 0n || top === 0x1ffffn;
}

const segments = ['fs', 'gs'] as const;

export const segmentBase: InstructionDef[] = segments.flatMap((seg, i): InstructionDef[] => [
  {
    mnemonic: `rd${seg}base`, map: '0f', opcode: 0xae, prefix: 0xf3, modrm: true, digit: i, form: 'register',
    execute(ctx, insn) {
      if (ctx.bits !== 64 || (ctx.sregs.cr4 & CR4_FSGSBASE) === 0n) throw new GuestFault(VECTOR_UD);
      ctx.setGpr(insn.modrm!.rm, insn.operandSize === 8 ? 8 : 4, ctx.sregs[seg].base);
    },
  },
  {
    mnemonic: `wr${seg}base`, map: '0f', opcode: 0xae, prefix: 0xf3, modrm: true, digit: 2 + i, form: 'register',
    execute(ctx, insn) {
      if (ctx.bits !== 64 || (ctx.sregs.cr4 & CR4_FSGSBASE) === 0n) throw new GuestFault(VECTOR_UD);
      const base = ctx.gpr(insn.modrm!.rm, insn.operandSize === 8 ? 8 : 4);
      if (!isCanonical(base)) throw new GuestFault(VECTOR_GP, 0);
      ctx.sregs[seg] = { ...ctx.sregs[seg], base };
      ctx.sregsChanged();
    },
  },
]);
