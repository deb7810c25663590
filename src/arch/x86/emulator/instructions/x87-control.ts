/**
 * x87 control instructions: initialise, clear exceptions, and move the
 * control and status words, on the vCPU's FPU state (KVM_GET/SET_FPU).
 */
import type { InstructionDef } from '../instruction.js';
import { operandAddress } from '../instruction.js';

const FCW_DEFAULT = 0x37f;
const FSW_EXCEPTIONS = 0x80ff; // B, ES, SF and the six exception flags

export const x87Control: InstructionDef[] = [
  {
    mnemonic: 'fninit', map: 'one', opcode: 0xdb, modrm: true, modrmByte: 0xe3,
    execute(ctx) {
      const f = ctx.fpu;
      Object.assign(f, { fcw: FCW_DEFAULT, fsw: 0, ftwx: 0, last_opcode: 0, last_ip: 0n, last_dp: 0n });
      ctx.fpuChanged();
    },
  },
  {
    mnemonic: 'fnclex', map: 'one', opcode: 0xdb, modrm: true, modrmByte: 0xe2,
    execute(ctx) {
      ctx.fpu.fsw &= ~FSW_EXCEPTIONS;
      ctx.fpuChanged();
    },
  },
  {
    mnemonic: 'fnstsw', map: 'one', opcode: 0xdf, modrm: true, modrmByte: 0xe0,
    execute(ctx) {
      ctx.setGpr(0, 2, BigInt(ctx.fpu.fsw));
    },
  },
  {
    mnemonic: 'fnstsw', map: 'one', opcode: 0xdd, modrm: true, digit: 7, form: 'memory',
    execute(ctx, insn) {
      ctx.writeValue(operandAddress(ctx, insn), 2, BigInt(ctx.fpu.fsw));
    },
  },
  {
    mnemonic: 'fnstcw', map: 'one', opcode: 0xd9, modrm: true, digit: 7, form: 'memory',
    execute(ctx, insn) {
      ctx.writeValue(operandAddress(ctx, insn), 2, BigInt(ctx.fpu.fcw));
    },
  },
  {
    mnemonic: 'fldcw', map: 'one', opcode: 0xd9, modrm: true, digit: 5, form: 'memory',
    execute(ctx, insn) {
      ctx.fpu.fcw = Number(ctx.readValue(operandAddress(ctx, insn), 2));
      ctx.fpuChanged();
    },
  },
  {
    // With no unmasked x87 exception pending there is nothing to wait for.
    mnemonic: 'fwait', map: 'one', opcode: 0x9b, modrm: false,
    execute() {},
  },
];
