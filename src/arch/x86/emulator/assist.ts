/**
 * Emulation assist: when KVM's own emulator gives up on a guest instruction
 * (KVM_EXIT_INTERNAL_ERROR, suberror EMULATION), do the instruction here on
 * the vCPU's real state, move RIP past it, and let the guest go on. A fault
 * the instruction raises is delivered to the guest, as the CPU would.
 */
import type { CpuidEntry, KvmVcpuEvents } from '../../../kvm/structs.js';
import type { GuestMemory } from '../../../memory/guest-memory.js';
import { CpuContext, GuestFault, type EmulatedVcpu } from './cpu-context.js';
import { decode, DecodeError } from './decoder.js';
import { instructionTable } from './instruction-table.js';

export interface AssistVcpu extends EmulatedVcpu {
  getVcpuEvents(): KvmVcpuEvents;
  setVcpuEvents(e: KvmVcpuEvents): void;
}

export type AssistOutcome =
  | { kind: 'emulated'; mnemonic: string }
  | { kind: 'fault'; mnemonic: string; vector: number }
  | { kind: 'unknown'; bytes: Uint8Array; rip: bigint; reason: string };

const VECTOR_PF = 14;
// Exceptions that push an error code.
const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21]);

export function assistInstruction(vcpu: AssistVcpu, memory: GuestMemory, cpuid: readonly CpuidEntry[]): AssistOutcome {
  const ctx = new CpuContext(vcpu, memory, cpuid);
  let bytes: Uint8Array;
  try {
    bytes = ctx.fetchInstruction();
  } catch (e) {
    if (!(e instanceof GuestFault)) throw e;
    inject(vcpu, ctx, e);
    return { kind: 'fault', mnemonic: '(fetch)', vector: e.vector };
  }
  let insn;
  try {
    insn = decode(bytes, ctx.bits, instructionTable);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return { kind: 'unknown', bytes, rip: ctx.regs.rip, reason: e.message };
  }
  const mnemonic = insn.entry.mnemonic;
  const rip = ctx.regs.rip;
  try {
    const result = insn.entry.execute(ctx, insn);
    if (ctx.regs.rip === rip) ctx.setRip(rip + BigInt(insn.length));
    ctx.commit();
    if (result?.trap !== undefined) inject(vcpu, ctx, new GuestFault(result.trap));
    return { kind: 'emulated', mnemonic };
  } catch (e) {
    if (!(e instanceof GuestFault)) throw e;
    inject(vcpu, ctx, e);
    return { kind: 'fault', mnemonic, vector: e.vector };
  }
}

/** Delivers a fault at the next entry (RIP stays at the faulting instruction, or after it for traps). */
function inject(vcpu: AssistVcpu, ctx: CpuContext, fault: GuestFault): void {
  if (fault.vector === VECTOR_PF && fault.address !== undefined) {
    vcpu.setSregs({ ...ctx.sregs, cr2: fault.address });
  }
  const events = vcpu.getVcpuEvents();
  events.exception_injected = 1;
  events.exception_nr = fault.vector;
  events.exception_has_error_code = HAS_ERROR_CODE.has(fault.vector) ? 1 : 0;
  events.exception_error_code = fault.errorCode ?? 0;
  events.exception_pending = 0;
  vcpu.setVcpuEvents(events);
}
