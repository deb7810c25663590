/**
 * Start states for a vCPU: real mode, 32-bit flat protected mode, or 64-bit
 * long mode with identity-mapped page tables, optionally at CPL3.
 */
import type { KvmRegs, KvmSegment, KvmSregs } from '../../kvm/structs.js';
import { Selector, TSS_SIZE } from './gdt.js';

export type CpuMode = 'real' | 'protected' | 'long';

export const CR0_PE = 1n;
const CR0_MP = 1n << 1n;
const CR0_ET = 1n << 4n;
const CR0_NE = 1n << 5n;
const CR0_WP = 1n << 16n;
export const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const CR4_OSFXSR = 1n << 9n;
const CR4_OSXMMEXCPT = 1n << 10n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;
const RFLAGS_RESERVED = 0x2n;
const RFLAGS_IOPL3 = 0x3000n;

const SEG_CODE = 0xb; // execute/read, accessed
const SEG_DATA = 0x3; // read/write, accessed
const SEG_TSS_BUSY = 0xb;

export interface StartState {
  mode: CpuMode;
  entry: number;
  /** Where the GDT and TSS are (protected and long mode). */
  gdtBase: number;
  gdtLimit: number;
  tssBase: number;
  /** CR3 for long mode. */
  pageTables?: number;
  /** Enter long mode at CPL3 (IOPL 3, so ring 3 may use ports). */
  user?: boolean;
  stack?: number;
  /** Initial general registers (e.g. EAX/EBX for multiboot). */
  regs?: Partial<Pick<KvmRegs, 'rax' | 'rbx' | 'rcx' | 'rdx' | 'rsi' | 'rdi'>>;
}

function segment(selector: number, type: number, flags: Partial<KvmSegment> = {}): KvmSegment {
  return {
    base: 0n, limit: 0xffffffff, selector, type, present: 1, dpl: selector & 3, db: 1, s: 1, l: 0, g: 1,
    avl: 0, unusable: 0, padding: 0, ...flags,
  };
}

/** Sets sregs and regs for `state`, starting from the vCPU's reset sregs. */
export function startState(reset: KvmSregs, state: StartState): { sregs: KvmSregs; regs: KvmRegs } {
  const sregs: KvmSregs = { ...reset };
  const regs: KvmRegs = {
    rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: BigInt(state.stack ?? 0), rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
    rip: BigInt(state.entry), rflags: RFLAGS_RESERVED,
  };
  for (const [k, v] of Object.entries(state.regs ?? {})) regs[k as keyof KvmRegs] = v as bigint;

  if (state.mode === 'real') {
    // CS:IP addresses the entry; all data segments share CS's 64 KiB window.
    const base = state.entry & 0xf0000;
    const seg = (type: number) => segment(base >> 4, type, { base: BigInt(base), limit: 0xffff, db: 0, g: 0, dpl: 0 });
    sregs.cs = seg(SEG_CODE);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg(SEG_DATA);
    sregs.cr0 = CR0_ET;
    regs.rip = BigInt(state.entry - base);
    regs.rsp = BigInt(state.stack ?? 0xfff0);
    return { sregs, regs };
  }

  sregs.gdt = { base: BigInt(state.gdtBase), limit: state.gdtLimit, padding: [0, 0, 0] };
  sregs.tr = segment(Selector.TSS, SEG_TSS_BUSY, { base: BigInt(state.tssBase), limit: TSS_SIZE - 1, s: 0, db: 0, g: 0 });
  sregs.ldt = { ...sregs.ldt, unusable: 1 };
  sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_MP;

  if (state.mode === 'protected') {
    sregs.cs = segment(Selector.CODE32, SEG_CODE);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(Selector.DATA, SEG_DATA);
    return { sregs, regs };
  }

  if (state.pageTables === undefined) throw new Error('long mode needs page tables');
  sregs.cr3 = BigInt(state.pageTables);
  sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
  sregs.cr0 |= CR0_PG | CR0_WP;
  sregs.efer = EFER_LME | EFER_LMA;
  if (state.user) {
    sregs.cs = segment(Selector.USER_CODE64, SEG_CODE, { l: 1, db: 0 });
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(Selector.USER_DATA, SEG_DATA);
    regs.rflags |= RFLAGS_IOPL3;
  } else {
    sregs.cs = segment(Selector.CODE64, SEG_CODE, { l: 1, db: 0 });
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(Selector.DATA, SEG_DATA);
  }
  return { sregs, regs };
}
