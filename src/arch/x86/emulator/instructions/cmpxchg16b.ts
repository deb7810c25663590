/**
 * CMPXCHG16B (REX.W 0F C7 /1): compare RDX:RAX with 16 bytes of memory; if
 * equal store RCX:RBX and set ZF, else load the memory into RDX:RAX.
 * The operand must be 16-byte aligned. Emulated instructions run one at a
 * time per VM (the assist holds a VM-wide lock), which keeps the exchange
 * atomic against other emulated accesses.
 */
import { Flag, GuestFault } from '../cpu-context.js';
import type { InstructionDef } from '../instruction.js';
import { operandAddress } from '../instruction.js';

const VECTOR_GP = 13;

export const cmpxchg16b: InstructionDef[] = [
  {
    mnemonic: 'cmpxchg16b', map: '0f', opcode: 0xc7, modrm: true, digit: 1, form: 'memory', rexW: 1,
    execute(ctx, insn) {
      const address = operandAddress(ctx, insn);
      if ((address & 0xfn) !== 0n) throw new GuestFault(VECTOR_GP, 0);
      const low = ctx.readValue(address, 8);
      const high = ctx.readValue(address + 8n, 8);
      if (low === ctx.gpr(0, 8) && high === ctx.gpr(2, 8)) {
        ctx.writeValue(address, 8, ctx.gpr(3, 8));
        ctx.writeValue(address + 8n, 8, ctx.gpr(1, 8));
        ctx.setFlags(Flag.ZF, Flag.ZF);
      } else {
        // The CPU writes the old value back even on failure, so the access is always a write.
        ctx.writeValue(address, 8, low);
        ctx.writeValue(address + 8n, 8, high);
        ctx.setGpr(0, 8, low);
        ctx.setGpr(2, 8, high);
        ctx.setFlags(Flag.ZF, 0n);
      }
    },
  },
];
