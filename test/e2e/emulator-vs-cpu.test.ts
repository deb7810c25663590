/**
 * The emulation assist checked against the CPU itself. Each case runs one
 * instruction natively in a ring-3 guest (CPL3 runs natively even on a
 * software KVM backend), then runs the emulator on the same instruction from
 * the same state, and compares general registers, defined flags, the data
 * page and the x87 control state. Where the instruction faults, the native
 * run's IDT catches the fault and records its vector (and CR2), which the
 * emulator must raise alike.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { assistInstruction, type AssistVcpu } from '../../src/arch/x86/emulator/assist.js';
import { LegacyFpuState } from '../../src/arch/x86/emulator/cpu-context.js';
import type { KvmRegs } from '../../src/kvm/structs.js';
import { assemble } from '../../src/tools/assembler.js';
import { buildMachine } from '../../src/vmm/builder.js';
import { Selector } from '../../src/arch/x86/gdt.js';
import type { Machine } from '../../src/vmm/machine.js';
import { kvmTest } from '../helpers/kvm.js';
import { runBounded } from '../helpers/machine.js';

const PAGE_FAULT = 14;

const CODE = 0x100000;
const STATE_IN = 0x200000;
const STATE_OUT = 0x200100;
const FXSAVE_OUT = 0x200200;
/** The vector of a fault the native run took (all-ones when none), then CR2. */
const FAULT_OUT = 0x200800; // past FXSAVE_OUT's 512 bytes
const NO_FAULT = 0xffff_ffff_ffff_ffffn;
const IDT_BASE = 0x201000;
/** The native run's exception handlers: one 32-byte stub per vector, this far into the image. */
const HANDLERS_OFFSET = 0x1000;
const HANDLER_SIZE = 32;
const VECTORS = 32;
const STACK = 0x280000;
// Ring 3 cannot use ports on every backend (kvm_pvm ignores IOPL), so the guest ends through MMIO.
const DEBUG_EXIT = 0xd0000000;
const DATA = 0x300000;
const UNMAPPED = 0x2_0000_0000; // 8 GiB: beyond the identity map of a 64 MiB guest

// The order registers are kept in the state blocks.
const REGS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
type Reg = (typeof REGS)[number];
const FLAGS_SLOT = REGS.length;

const FLAGS = { CF: 1n, PF: 4n, AF: 0x10n, ZF: 0x40n, SF: 0x80n, OF: 0x800n };
const ALL_FLAGS = FLAGS.CF | FLAGS.PF | FLAGS.AF | FLAGS.ZF | FLAGS.SF | FLAGS.OF;
// Initial flags are loaded with SAHF, which touches only these.
const LOADABLE_FLAGS = FLAGS.CF | FLAGS.PF | FLAGS.AF | FLAGS.ZF | FLAGS.SF;

interface Case {
  name: string;
  insn: string;
  regs?: Partial<Record<Reg, bigint>>;
  flags?: bigint;
  data?: number[];
  /** Flags the instruction defines (others are undefined and not compared). */
  defined?: bigint;
  /** Compare the x87 control state too. */
  fpu?: boolean;
  /** The instruction faults (the CPU's run says which vector, and the emulator must agree). */
  faults?: boolean;
  /** Where QEMU's TCG, the test rig's CPU, departs from real CPUs for this case: it is checked on real CPUs only. */
  tcgDeparts?: string;
}

function prologue(): string {
  const load = REGS.map((r, i) => `    mov ${STATE_IN + i * 8}, %${r}`).join('\n');
  return `    .code64
    .globl _start
_start:
    mov $${STACK}, %rsp
    mov ${STATE_IN + FLAGS_SLOT * 8}, %ah
    sahf
${load}
`;
}

function epilogue(): string {
  const store = REGS.map((r, i) => `    mov %${r}, ${STATE_OUT + i * 8}`).join('\n');
  return `${store}
    pushfq
    popq ${STATE_OUT + FLAGS_SLOT * 8}
    fxsave64 ${FXSAVE_OUT}
    mov $${DEBUG_EXIT}, %rax
    movb $0, (%rax)
`;
}

/** Exception handlers at CPL0: each records its vector, then CR2, and ends the run. */
function handlers(): string {
  const stubs = Array.from({ length: VECTORS }, (_, v) => `    .org ${HANDLERS_OFFSET + v * HANDLER_SIZE}\n    movq $${v}, ${FAULT_OUT}\n    jmp fault_common\n`);
  return `${stubs.join('')}fault_common:
    mov %cr2, %rax
    mov %rax, ${FAULT_OUT + 8}
    mov $${DEBUG_EXIT}, %rax
    movb $0, (%rax)
`;
}

/** 64-bit interrupt gates (present, DPL 0) to the handler stubs, in the kernel code segment the guest was started with. */
function writeIdt(machine: Machine): void {
  const vcpu = machine.vcpus[0].fd;
  const sregs = vcpu.getSregs();
  const mem = machine.memory!;
  for (let v = 0; v < VECTORS; v++) {
    const handler = BigInt(CODE + HANDLERS_OFFSET + v * HANDLER_SIZE);
    const low = (handler & 0xffffn) | (BigInt(Selector.CODE64) << 16n) | (0x8en << 40n) | (((handler >> 16n) & 0xffffn) << 48n);
    mem.writeU64(IDT_BASE + v * 16, low);
    mem.writeU64(IDT_BASE + v * 16 + 8, handler >> 32n);
  }
  vcpu.setSregs({ ...sregs, idt: { ...sregs.idt, base: BigInt(IDT_BASE), limit: VECTORS * 16 - 1 } });
}

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-emu-'));

/** Where, past the handlers, the image says where the instruction starts (16 bits, from CODE) and how long it is (8 bits). */
const LAYOUT_OFFSET = 0x1800;

const images = new Map<Case, { image: Uint8Array; insnAddress: number; insnLength: number }>();

/** The case's image, assembled once: the instruction between the prologue and the epilogue, then the handlers. */
function imageOf(c: Case): { image: Uint8Array; insnAddress: number; insnLength: number } {
  let built = images.get(c);
  if (built === undefined) {
    const file = join(dir, `${c.name.replace(/\W+/g, '_')}.s`);
    const layout = `    .org ${LAYOUT_OFFSET}\n    .short insn_start - _start\n    .byte insn_end - insn_start\n`;
    writeFileSync(file, `${prologue()}insn_start:\n    ${c.insn}\ninsn_end:\n${epilogue()}${handlers()}${layout}`);
    const image = assemble(file, { address: CODE });
    const offsets = Buffer.from(image.subarray(LAYOUT_OFFSET, LAYOUT_OFFSET + 3));
    built = { image, insnAddress: CODE + offsets.readUInt16LE(0), insnLength: offsets[2] };
    images.set(c, built);
  }
  return built;
}

function build(c: Case): { machine: Machine; insnAddress: number; insnLength: number } {
  const { image, insnAddress, insnLength } = imageOf(c);
  const machine = buildMachine({
    memory: 64 << 20, cpus: 1, emulationAssist: false, devices: [{ kind: 'debug-exit', mmio: DEBUG_EXIT }],
    boot: { kind: 'raw', image, mode: 'long', loadAddr: CODE, user: true },
  });
  const mem = machine.memory!;
  REGS.forEach((r, i) => mem.writeU64(STATE_IN + i * 8, c.regs?.[r] ?? 0n));
  mem.writeU64(STATE_IN + FLAGS_SLOT * 8, 0x2n | ((c.flags ?? 0n) & LOADABLE_FLAGS));
  mem.write(DATA, Uint8Array.from(c.data ?? []));
  mem.writeU64(FAULT_OUT, NO_FAULT);
  return { machine, insnAddress, insnLength };
}

interface Result {
  regs: Record<Reg, bigint>;
  flags: bigint;
  data: Uint8Array;
  fpu?: { fcw: number; fsw: number; ftw: number; mxcsr: number };
  fault?: { vector: number; cr2?: bigint };
}

async function runNatively(c: Case): Promise<Result> {
  const { machine } = build(c);
  try {
    writeIdt(machine);
    const stop = await runBounded(machine);
    const mem = machine.memory!;
    assert.equal(stop.kind, 'debug-exit', `native run of ${c.insn}: ${stop.message}`);
    const vector = mem.readU64(FAULT_OUT);
    if (vector !== NO_FAULT) return { regs: {} as Record<Reg, bigint>, flags: 0n, data: mem.read(DATA, 64), fault: { vector: Number(vector), cr2: mem.readU64(FAULT_OUT + 8) } };
    const regs = Object.fromEntries(REGS.map((r, i) => [r, mem.readU64(STATE_OUT + i * 8)])) as Record<Reg, bigint>;
    const fx = mem.read(FXSAVE_OUT, 32);
    return {
      regs, flags: mem.readU64(STATE_OUT + FLAGS_SLOT * 8), data: mem.read(DATA, 64),
      fpu: { fcw: fx[0] | (fx[1] << 8), fsw: fx[2] | (fx[3] << 8), ftw: fx[4], mxcsr: new DataView(fx.buffer).getUint32(24, true) },
    };
  } finally {
    await machine.destroy();
  }
}

function runEmulated(c: Case): Result {
  const { machine, insnAddress, insnLength } = build(c);
  try {
    const real = machine.vcpus[0].fd;
    let regs: KvmRegs = {
      ...real.getRegs(),
      ...Object.fromEntries(REGS.map((r) => [r, c.regs?.[r] ?? 0n])),
      rsp: BigInt(STACK), rip: BigInt(insnAddress), rflags: 0x3002n | ((c.flags ?? 0n) & LOADABLE_FLAGS),
    };
    let xsave = real.getXsave();
    let injected: number | undefined;
    let sregs = real.getSregs();
    const vcpu: AssistVcpu = {
      getRegs: () => ({ ...regs }),
      setRegs: (r) => (regs = { ...r }),
      getSregs: () => ({ ...sregs }),
      setSregs: (s) => (sregs = s),
      getXsave: () => xsave.slice(),
      setXsave: (x) => (xsave = x.slice()),
      getXcr0: () => real.getXcr0(),
      setXcr0: () => assert.fail('no case here changes XCR0'),
      getMsrs: (i) => real.getMsrs(i),
      getVcpuEvents: () => real.getVcpuEvents(),
      setVcpuEvents: (e) => (injected = e.exception_nr),
    };
    const outcome = assistInstruction(vcpu, machine.memory!, machine.vcpus[0].cpuid);
    const data = machine.memory!.read(DATA, 64);
    const fpu = new LegacyFpuState(xsave);
    if (outcome.kind === 'fault') return { regs: {} as Record<Reg, bigint>, flags: 0n, data, fault: { vector: injected!, cr2: sregs.cr2 } };
    assert.equal(outcome.kind, 'emulated', `the emulator does not know ${c.insn}`);
    assert.equal(regs.rip, BigInt(insnAddress + insnLength), 'RIP moves past the instruction');
    return {
      regs: Object.fromEntries(REGS.map((r) => [r, regs[r]])) as Record<Reg, bigint>,
      flags: regs.rflags, data,
      fpu: { fcw: fpu.fcw, fsw: fpu.fsw, ftw: fpu.ftw, mxcsr: fpu.mxcsr },
    };
  } finally {
    void machine.destroy();
  }
}

const cases: Case[] = [
  { name: 'popcnt r64', insn: 'popcnt %rax, %rbx', regs: { rax: 0xf0f0_0000_ffff_0001n }, flags: ALL_FLAGS, defined: ALL_FLAGS },
  { name: 'popcnt r32 of zero', insn: 'popcnt %eax, %ebx', regs: { rax: 0xffff_ffff_0000_0000n, rbx: -1n & 0xffff_ffff_ffff_ffffn }, defined: ALL_FLAGS },
  { name: 'popcnt r16 keeps upper bits', insn: 'popcnt %ax, %bx', regs: { rax: 0x1234n, rbx: 0xaaaa_bbbb_cccc_ddddn }, defined: ALL_FLAGS },
  { name: 'popcnt m64', insn: 'popcnt (%rsi), %rdx', regs: { rsi: BigInt(DATA) }, data: [0xff, 0, 0, 0, 0, 0, 0, 0x80], defined: ALL_FLAGS },
  { name: 'popcnt r64 with REX registers', insn: 'popcnt %r13, %r9', regs: { r13: 0x8000_0000_0000_0000n }, defined: ALL_FLAGS },
  { name: 'lzcnt r64', insn: 'lzcnt %rax, %rbx', regs: { rax: 0x0000_0100_0000_0000n }, defined: FLAGS.CF | FLAGS.ZF },
  { name: 'lzcnt of zero', insn: 'lzcnt %ecx, %edx', regs: { rcx: 0n }, defined: FLAGS.CF | FLAGS.ZF },
  { name: 'tzcnt r32', insn: 'tzcnt %eax, %ebx', regs: { rax: 0x0010_0000n }, defined: FLAGS.CF | FLAGS.ZF },
  { name: 'tzcnt m16', insn: 'tzcnt (%rdi), %cx', regs: { rdi: BigInt(DATA + 8), rcx: 0x1111_2222n }, data: [0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x80], defined: FLAGS.CF | FLAGS.ZF },
  {
    name: 'cmpxchg16b equal', insn: 'lock cmpxchg16b (%rsi)',
    regs: { rsi: BigInt(DATA), rax: 0x0706050403020100n, rdx: 0x0f0e0d0c0b0a0908n, rbx: 0x1111n, rcx: 0x2222n },
    data: Array.from({ length: 16 }, (_, i) => i), defined: FLAGS.ZF,
  },
  {
    name: 'cmpxchg16b different', insn: 'cmpxchg16b 16(%rsi)',
    regs: { rsi: BigInt(DATA), rax: 1n, rdx: 2n, rbx: 3n, rcx: 4n }, flags: FLAGS.ZF,
    data: Array.from({ length: 32 }, (_, i) => 0xa0 + i), defined: FLAGS.ZF,
  },
  { name: 'cmpxchg16b misaligned faults', insn: 'cmpxchg16b 8(%rsi)', regs: { rsi: BigInt(DATA) }, faults: true },
  { name: 'popcnt from an unmapped page faults', insn: 'popcnt (%rsi), %rax', regs: { rsi: BigInt(UNMAPPED + 0x123) }, faults: true },
  { name: 'fnstsw ax', insn: 'fnstsw %ax', regs: { rax: 0xdead_beefn }, fpu: true },
  { name: 'fldcw then state', insn: 'fldcw (%rsi)', regs: { rsi: BigInt(DATA) }, data: [0x7f, 0x02], fpu: true },
  { name: 'fnstcw m16', insn: 'fnstcw 4(%rsi)', regs: { rsi: BigInt(DATA) }, fpu: true },
  { name: 'fninit', insn: 'fninit', fpu: true },
  { name: 'ldmxcsr', insn: 'ldmxcsr (%rsi)', regs: { rsi: BigInt(DATA) }, data: [0x80, 0x3f, 0, 0], fpu: true },
  { name: 'ldmxcsr with reserved bits faults', insn: 'ldmxcsr (%rsi)', regs: { rsi: BigInt(DATA) }, data: [0x80, 0x1f, 1, 0], faults: true,
    tcgDeparts: 'QEMU 7.2\'s TCG loads reserved MXCSR bits without the #GP real CPUs raise' },
  { name: 'stmxcsr', insn: 'stmxcsr 12(%rsi)', regs: { rsi: BigInt(DATA) }, fpu: true },
];

describe('emulation assist against the CPU', () => {
  for (const c of cases) {
    // Run on every backend: on a software one (kvm_pvm) ring 3 is the real CPU; in the rig it is QEMU's TCG.
    const inRig = process.env.TSVMM_TEST_PLACE === 'rig';
    kvmTest(c.name, { perBackend: true, ...(inRig && c.tcgDeparts ? { skip: `${c.tcgDeparts}; checked on hosts with a real CPU` } : {}) }, async () => {
      const native = await runNatively(c);
      const emulated = runEmulated(c);
      if (c.faults) {
        assert.ok(native.fault, `the CPU faults on ${c.insn}`);
        assert.ok(emulated.fault, `the emulator faults on ${c.insn}`);
        assert.equal(emulated.fault.vector, native.fault.vector, `the emulator raises the CPU's vector, ${native.fault.vector}`);
        if (native.fault.vector === PAGE_FAULT) assert.equal(hex(emulated.fault.cr2!), hex(native.fault.cr2!), 'CR2 holds the faulting address');
        assert.deepEqual(emulated.data, native.data, 'memory is untouched by the faulting instruction');
        return;
      }
      assert.equal(native.fault, undefined, `the CPU does not fault on ${c.insn}`);
      for (const r of REGS) assert.equal(hex(emulated.regs[r]), hex(native.regs[r]), `${r} after ${c.insn}`);
      const mask = c.defined ?? 0n;
      assert.equal(hex(emulated.flags & mask), hex(native.flags & mask), `defined flags after ${c.insn}`);
      assert.deepEqual(emulated.data, native.data, `memory after ${c.insn}`);
      if (c.fpu) {
        assert.equal(hex(emulated.fpu!.fcw), hex(native.fpu!.fcw), 'FCW');
        assert.equal(hex(emulated.fpu!.fsw), hex(native.fpu!.fsw), 'FSW');
        assert.equal(hex(emulated.fpu!.ftw), hex(native.fpu!.ftw), 'abridged tag word');
        assert.equal(hex(emulated.fpu!.mxcsr), hex(native.fpu!.mxcsr), 'MXCSR');
      }
    });
  }
});

function hex(v: bigint | number): string {
  return '0x' + BigInt(v).toString(16);
}
