/**
 * LDMXCSR and STMXCSR (0F AE /2, /3): the SSE control and status register,
 * kept in the legacy area of the vCPU's XSAVE state.
 */
import { GuestFault } from '../cpu-context.js';
import type { InstructionDef } from '../instruction.js';
import { operandAddress } from '../instruction.js';

const VECTOR_UD = 6;
const VECTOR_GP = 13;
const CR0_EM = 1n << 2n;
const CR4_OSFXSR = 1n << 9n;
// Bits a CPU with DAZ accepts in MXCSR; setting any other bit raises #GP.
const MXCSR_WRITABLE = 0xffff;

export const sseControl: InstructionDef[] = [
  {
    mnemonic: 'ldmxcsr', map: '0f', opcode: 0xae, prefix: 'none', modrm: true, digit: 2, form: 'memory',
    execute(ctx, insn) {
      if ((ctx.sregs.cr0 & CR0_EM) !== 0n || (ctx.sregs.cr4 & CR4_OSFXSR) === 0n) throw new GuestFault(VECTOR_UD);
      const value = Number(ctx.readValue(operandAddress(ctx, insn), 4));
      if ((value & ~MXCSR_WRITABLE) !== 0) throw new GuestFault(VECTOR_GP, 0);
      ctx.legacy.mxcsr = value;
      ctx.xsaveChanged();
    },
  },
  {
    mnemonic: 'stmxcsr', map: '0f', opcode: 0xae, prefix: 'none', modrm: true, digit: 3, form: 'memory',
    execute(ctx, insn) {
      if ((ctx.sregs.cr0 & CR0_EM) !== 0n || (ctx.sregs.cr4 & CR4_OSFXSR) === 0n) throw new GuestFault(VECTOR_UD);
      ctx.writeValue(operandAddress(ctx, insn), 4, BigInt(ctx.legacy.mxcsr));
    },
  },
];
