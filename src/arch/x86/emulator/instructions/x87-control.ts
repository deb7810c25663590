/**
 * x87 control instructions: initialise, clear exceptions, and move the
 * control and status words, on the legacy area of the vCPU's XSAVE state.
 */
import type { InstructionDef } from '../instruction.js';
import { operandAddress } from '../instruction.js';

const FCW_DEFAULT = 0x37f;
const FSW_EXCEPTIONS = 0x80ff; // B, ES, SF and the six exception flags

export const x87Control: InstructionDef[] = [
  {
    mnemonic: 'fninit', map: 'one', opcode: 0xdb, modrm: true, modrmByte: 0xe3,
    execute(ctx) {
      const f = ctx.legacy;
      f.fcw = FCW_DEFAULT;
      f.fsw = 0;
      f.ftw = 0;
      f.clearLastInstruction();
      ctx.xsaveChanged();
    },
  },
  {
    mnemonic: 'fnclex', map: 'one', opcode: 0xdb, modrm: true, modrmByte: 0xe2,
    execute(ctx) {
      ctx.legacy.fsw &= ~FSW_EXCEPTIONS;
      ctx.xsaveChanged();
    },
  },
  {
    mnemonic: 'fnstsw', map: 'one', opcode: 0xdf, modrm: true, modrmByte: 0xe0,
    execute(ctx) {
      ctx.setGpr(0, 2, BigInt(ctx.legacy.fsw));
    },
  },
  {
    mnemonic: 'fnstsw', map: 'one', opcode: 0xdd, modrm: true, digit: 7, form: 'memory',
    execute(ctx, insn) {
      ctx.writeValue(operandAddress(ctx, insn), 2, BigInt(ctx.legacy.fsw));
    },
  },
  {
    mnemonic: 'fnstcw', map: 'one', opcode: 0xd9, modrm: true, digit: 7, form: 'memory',
    execute(ctx, insn) {
      ctx.writeValue(operandAddress(ctx, insn), 2, BigInt(ctx.legacy.fcw));
    },
  },
  {
    mnemonic: 'fldcw', map: 'one', opcode: 0xd9, modrm: true, digit: 5, form: 'memory',
    execute(ctx, insn) {
      ctx.legacy.fcw = Number(ctx.readValue(operandAddress(ctx, insn), 2));
      ctx.xsaveChanged();
    },
  },
  {
    // With no unmasked x87 exception pending there is nothing to wait for.
    mnemonic: 'fwait', map: 'one', opcode: 0x9b, modrm: false,
    execute() {},
  },
];
