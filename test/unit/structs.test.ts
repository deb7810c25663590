/**
 * The KVM uapi layouts in src/kvm: struct sizes and every field's offset
 * and width, the kvm_run offsets KvmRun reads, and the ioctl numbers. Known
 * values are checked always; when gcc and the kernel headers are installed,
 * a C program compiled from linux/kvm.h checks every field against C.
 *
 * Field layouts are read back through `encode` alone: a value with only one
 * field set to all ones, encoded into a zeroed buffer, marks that field's
 * bytes. So the test checks what really reaches the kernel.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ioctls from '../../src/kvm/ioctls.js';
import { KvmRun } from '../../src/kvm/kvm-run.js';
import type { StructType } from '../../src/kvm/struct.js';
import * as s from '../../src/kvm/structs.js';

/** sizeof each struct on x86-64, from the kernel's uapi headers. */
const KERNEL_SIZES: Record<string, number> = {
  kvm_regs: 144, kvm_segment: 24, kvm_dtable: 16, kvm_sregs: 312, kvm_fpu: 416, kvm_xsave: 4096, kvm_xcrs: 392,
  kvm_msrs: 8, kvm_msr_entry: 16, kvm_cpuid2: 8, kvm_cpuid_entry2: 40, kvm_userspace_memory_region: 32,
  kvm_lapic_state: 1024, kvm_irqchip: 520, kvm_pit_state2: 112, kvm_pit_config: 64, kvm_clock_data: 48,
  kvm_vcpu_events: 64, kvm_ioeventfd: 64, kvm_irqfd: 32, kvm_irq_level: 8, kvm_irq_routing: 8,
  kvm_irq_routing_entry: 48, kvm_coalesced_mmio_zone: 16, kvm_enable_cap: 104, kvm_mp_state: 4,
  kvm_guest_debug: 72, kvm_msi: 32, kvm_debugregs: 128,
};

/** Where tsvmm flattens a nested C struct, the C name of each flattened field. */
const C_NAMES: Record<string, Record<string, string>> = {
  kvm_vcpu_events: {
    exception_injected: 'exception.injected', exception_nr: 'exception.nr',
    exception_has_error_code: 'exception.has_error_code', exception_pending: 'exception.pending',
    exception_error_code: 'exception.error_code',
    interrupt_injected: 'interrupt.injected', interrupt_nr: 'interrupt.nr', interrupt_soft: 'interrupt.soft',
    interrupt_shadow: 'interrupt.shadow',
    nmi_injected: 'nmi.injected', nmi_pending: 'nmi.pending', nmi_masked: 'nmi.masked', nmi_pad: 'nmi.pad',
    smi_smm: 'smi.smm', smi_pending: 'smi.pending', smi_inside_nmi: 'smi.smm_inside_nmi',
    smi_latched_init: 'smi.latched_init', triple_fault_pending: 'triple_fault.pending',
  },
  kvm_guest_debug: { debugreg: 'arch.debugreg' },
};

type Path = (string | number)[];

interface FieldLayout {
  /** The field as a C member designator, e.g. `channels[1].count_load_time`. */
  c: string;
  offset: number;
  size: number;
}

/** Paths to every scalar, byte array or scalar array in a decoded value; arrays of structs are walked per element. */
function leafPaths(shape: unknown, path: Path = []): Path[] {
  if (typeof shape !== 'object' || shape instanceof Uint8Array) return [path];
  if (Array.isArray(shape)) {
    const ofStructs = shape.length > 0 && typeof shape[0] === 'object';
    return ofStructs ? shape.flatMap((e, i) => leafPaths(e, [...path, i])) : [path];
  }
  return Object.entries(shape as Record<string, unknown>).flatMap(([k, v]) => leafPaths(v, [...path, k]));
}

function allOnes(shape: unknown): unknown {
  if (typeof shape === 'bigint') return -1n;
  if (typeof shape === 'number') return -1;
  if (shape instanceof Uint8Array) return new Uint8Array(shape.length).fill(0xff);
  return (shape as unknown[]).map(allOnes);
}

/** A partial value setting only the leaf at `path` (holes in arrays are skipped by encode). */
function onlyLeaf(shape: unknown, path: Path): unknown {
  if (path.length === 0) return allOnes(shape);
  const [head, ...rest] = path;
  if (typeof head === 'number') {
    const sparse = new Array((shape as unknown[]).length);
    sparse[head] = onlyLeaf((shape as unknown[])[head], rest);
    return sparse;
  }
  return { [head]: onlyLeaf((shape as Record<string, unknown>)[head], rest) };
}

function cDesignator(type: StructType<unknown>, path: Path): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? (C_NAMES[type.name]?.[p] ?? p) : `.${p}`))
    .join('');
}

/** Each field's bytes as `encode` writes them. */
function layoutOf(type: StructType<unknown>): FieldLayout[] {
  const shape = type.decode(type.alloc());
  return leafPaths(shape).map((path) => {
    const bytes = type.encode(onlyLeaf(shape, path) as Partial<unknown>, type.alloc());
    const offset = bytes.indexOf(0xff);
    const size = bytes.lastIndexOf(0xff) + 1 - offset;
    const c = cDesignator(type, path);
    assert.ok(offset >= 0, `${type.name}.${c}: encode wrote nothing`);
    assert.ok(bytes.subarray(offset, offset + size).every((b) => b === 0xff), `${type.name}.${c}: bytes not contiguous`);
    return { c, offset, size };
  });
}

const layouts = new Map(s.allStructs.map((type) => [type, layoutOf(type)]));
const byName = (name: string) => s.allStructs.find((t) => t.name === name)!;
const fieldOf = (name: string, c: string) => layouts.get(byName(name))!.find((f) => f.c === c)!;

test('every struct has the size the kernel headers give it', () => {
  assert.deepEqual(
    Object.fromEntries(s.allStructs.map((t) => [t.name, t.size])),
    KERNEL_SIZES,
  );
});

test('fields lie inside their struct, in order, without overlapping, and match the declared offsets', () => {
  for (const [type, fields] of layouts) {
    let end = 0;
    for (const f of [...fields].sort((a, b) => a.offset - b.offset)) {
      assert.ok(f.offset >= end, `${type.name}.${f.c} at ${f.offset} overlaps the field ending at ${end}`);
      end = f.offset + f.size;
    }
    assert.ok(end <= type.size, `${type.name}: fields end at ${end}, past its size ${type.size}`);
    for (const [name, offset] of Object.entries(type.offsets as Record<string, number>)) {
      const first = fields.find((f) => f.c === (C_NAMES[type.name]?.[name] ?? name) || f.c.startsWith(`${name}.`) || f.c.startsWith(`${name}[`));
      assert.equal(first?.offset, offset, `${type.name}.${name}: declared offset`);
    }
  }
});

test('key offsets: where hand-written code and the kernel most often disagree', () => {
  const expected: [string, string, number, number][] = [
    ['kvm_sregs', 'gdt.base', 192, 8],
    ['kvm_sregs', 'idt.limit', 216, 2],
    ['kvm_sregs', 'cr0', 0xe0, 8],
    ['kvm_sregs', 'efer', 0x108, 8],
    ['kvm_sregs', 'apic_base', 0x110, 8],
    ['kvm_sregs', 'interrupt_bitmap', 0x118, 32],
    ['kvm_segment', 'selector', 12, 2],
    ['kvm_fpu', 'last_ip', 136, 8],
    ['kvm_fpu', 'xmm', 152, 256],
    ['kvm_fpu', 'mxcsr', 408, 4],
    ['kvm_vcpu_events', 'exception.error_code', 4, 4],
    ['kvm_vcpu_events', 'sipi_vector', 16, 4],
    ['kvm_vcpu_events', 'triple_fault.pending', 28, 1],
    ['kvm_vcpu_events', 'exception_has_payload', 55, 1],
    ['kvm_vcpu_events', 'exception_payload', 56, 8],
    ['kvm_pit_state2', 'channels[0].count_load_time', 16, 8],
    ['kvm_pit_state2', 'channels[2].gate', 63, 1],
    ['kvm_pit_state2', 'flags', 72, 4],
    ['kvm_xcrs', 'xcrs[15].value', 256, 8],
    ['kvm_xcrs', 'padding', 264, 128],
    ['kvm_cpuid_entry2', 'eax', 12, 4],
    ['kvm_userspace_memory_region', 'userspace_addr', 24, 8],
    ['kvm_ioeventfd', 'fd', 20, 4],
    ['kvm_enable_cap', 'args', 8, 32],
    ['kvm_guest_debug', 'arch.debugreg', 8, 64],
    ['kvm_msi', 'devid', 16, 4],
    ['kvm_clock_data', 'realtime', 16, 8],
  ];
  for (const [name, c, offset, size] of expected) {
    assert.deepEqual(fieldOf(name, c), { c, offset, size }, `${name}.${c}`);
  }
});

/** struct kvm_run offsets, as linux/kvm.h places them on x86-64. */
const KVM_RUN_OFFSETS: Record<string, number> = {
  immediate_exit: 1, exit_reason: 8,
  'io.direction': 32, 'io.size': 33, 'io.port': 34, 'io.count': 36, 'io.data_offset': 40,
  'mmio.phys_addr': 32, 'mmio.data': 40, 'mmio.len': 48, 'mmio.is_write': 52,
  'system_event.type': 32, 'system_event.ndata': 36, 'system_event.data': 40,
  'internal.suberror': 32, 'internal.ndata': 36, 'internal.data': 40,
  'fail_entry.hardware_entry_failure_reason': 32,
  'debug.arch.exception': 32, 'debug.arch.pc': 40,
};

/** A kvm_run page with the given little-endian values written at their kernel offsets. */
function runPage(values: [string, 1 | 2 | 4 | 8, number | bigint][]): KvmRun {
  const page = new ArrayBuffer(4096);
  const view = new DataView(page);
  for (const [field, size, value] of values) {
    const at = KVM_RUN_OFFSETS[field];
    if (size === 1) view.setUint8(at, Number(value));
    else if (size === 2) view.setUint16(at, Number(value), true);
    else if (size === 4) view.setUint32(at, Number(value), true);
    else view.setBigUint64(at, BigInt(value), true);
  }
  return new KvmRun(page);
}

test('KvmRun reads each exit field at the kernel\'s offset', () => {
  const io = runPage([['exit_reason', 4, 2], ['io.direction', 1, 1], ['io.size', 1, 4], ['io.port', 2, 0x3f8], ['io.count', 4, 3], ['io.data_offset', 8, 0x1000]]);
  assert.deepEqual(
    [io.exitReason, io.ioDirection, io.ioSize, io.ioPort, io.ioCount, io.ioDataOffset],
    [2, 1, 4, 0x3f8, 3, 0x1000],
  );

  const mmio = runPage([['mmio.phys_addr', 8, 0x1_fee0_0020n], ['mmio.len', 4, 8], ['mmio.is_write', 1, 1]]);
  assert.deepEqual(
    [mmio.mmioAddress, mmio.mmioLength, mmio.mmioIsWrite, mmio.mmioDataOffset],
    [0x1_fee0_0020, 8, true, KVM_RUN_OFFSETS['mmio.data']],
  );

  const event = runPage([['system_event.type', 4, 2], ['system_event.ndata', 4, 2], ['system_event.data', 8, 0xdead_beef_0000_0001n]]);
  assert.equal(event.eventType, 2);
  assert.equal(event.exitData.length, 2);
  assert.equal(event.exitData[0], 0xdead_beef_0000_0001n);

  const internal = runPage([['internal.suberror', 4, 1], ['internal.ndata', 4, 1], ['internal.data', 8, 7n]]);
  assert.deepEqual([internal.suberror, internal.exitData], [1, [7n]]);

  assert.equal(runPage([['fail_entry.hardware_entry_failure_reason', 8, 0x80000021n]]).failEntryReason, 0x80000021n);
  const debug = runPage([['debug.arch.exception', 4, 3], ['debug.arch.pc', 8, 0xffff_8000_0000_1000n]]);
  assert.deepEqual([debug.debugException, debug.debugPc], [3, 0xffff_8000_0000_1000n]);

  const page = runPage([]);
  page.immediateExit = true;
  assert.equal(page.bytes[KVM_RUN_OFFSETS.immediate_exit], 1);
  page.immediateExit = false;
  assert.equal(page.bytes[KVM_RUN_OFFSETS.immediate_exit], 0);
});

test('ioctl numbers are built from direction, size, type 0xAE and number', () => {
  assert.equal(ioctls.KVM_RUN, 0xae80);
  assert.equal(ioctls.KVM_GET_REGS, 0x8090ae81);
  assert.equal(ioctls.KVM_SET_USER_MEMORY_REGION, 0x4020ae46);
  assert.equal(ioctls.KVM_GET_SUPPORTED_CPUID, 0xc008ae05);
  assert.equal(ioctls.KVM_SET_SREGS, 0x4138ae84);
  assert.equal(ioctls.KVM_GET_VCPU_EVENTS, 0x8040ae9f);
  assert.equal(ioctls.KVM_SET_IRQCHIP, 0x8208ae63, 'the kernel declares KVM_SET_IRQCHIP with _IOR');
});

test('decode then encode gives back every byte a field covers, and zeroes only the padding between fields', () => {
  for (const [type, fields] of layouts) {
    const original = Uint8Array.from({ length: type.size }, (_, i) => (i * 151 + type.size) % 251 + 1);
    const again = type.encode(type.decode(original) as Partial<unknown>, type.alloc());
    const covered = new Uint8Array(type.size);
    for (const f of fields) covered.fill(1, f.offset, f.offset + f.size);
    for (let i = 0; i < type.size; i++) {
      assert.equal(again[i], covered[i] ? original[i] : 0, `${type.name} byte ${i}`);
    }
  }
});

test('nested structs and arrays of structs round-trip through encode and decode', () => {
  const sregs = s.kvmSregs.decode(s.kvmSregs.alloc());
  const segment = (selector: number) => ({ ...sregs.cs, base: BigInt(selector) << 32n, limit: 0xfffff, selector, type: 0xb, present: 1, dpl: 3, l: 1, g: 1 });
  sregs.cs = segment(0x23);
  sregs.tr = segment(0x30);
  sregs.gdt = { base: 0x500n, limit: 0x3f, padding: [0, 0, 0] };
  sregs.cr0 = 0x8001_0033n;
  sregs.efer = 0x500n;
  sregs.interrupt_bitmap = [1n, 2n, 3n, 0xffff_ffff_ffff_ffffn];
  assert.deepEqual(s.kvmSregs.decode(s.kvmSregs.encode(sregs)), sregs);

  const pit = s.kvmPitState2.decode(s.kvmPitState2.alloc());
  pit.channels = pit.channels.map((c, i) => ({ ...c, count: 0x10000 + i, mode: i + 1, count_load_time: -BigInt(i + 1) }));
  pit.flags = 1;
  assert.deepEqual(s.kvmPitState2.decode(s.kvmPitState2.encode(pit)), pit);

  const xcrs = s.kvmXcrs.decode(s.kvmXcrs.alloc());
  xcrs.nr_xcrs = 2;
  xcrs.xcrs[0] = { xcr: 0, reserved: 0, value: 7n };
  xcrs.xcrs[15] = { xcr: 15, reserved: 0, value: 0xe7n };
  assert.deepEqual(s.kvmXcrs.decode(s.kvmXcrs.encode(xcrs)), xcrs);
});

test('a header with a flexible array of entries, as KVM_SET_CPUID2 takes it', () => {
  const entries = [1, 7].map((fn) => ({ ...s.kvmCpuidEntry2.decode(s.kvmCpuidEntry2.alloc()), function: fn, index: 0, eax: fn * 3, ebx: 0xffff_ffff }));
  const size = s.kvmCpuidEntry2.size;
  const buf = s.kvmCpuid2Header.encode({ nent: entries.length }, s.kvmCpuid2Header.alloc(entries.length * size));
  entries.forEach((e, i) => s.kvmCpuidEntry2.encode(e, buf, s.kvmCpuid2Header.size + i * size));
  assert.equal(buf.length, 8 + 2 * 40);
  assert.equal(s.kvmCpuid2Header.decode(buf).nent, 2);
  assert.deepEqual(entries.map((_, i) => s.kvmCpuidEntry2.decode(buf, 8 + i * size)), entries);
});

test('encode leaves the bytes of fields it is not given alone', () => {
  const buf = new Uint8Array(s.kvmRegs.size).fill(0xaa);
  s.kvmRegs.encode({ rip: 0x100000n }, buf);
  const regs = s.kvmRegs.decode(buf);
  assert.equal(regs.rip, 0x100000n);
  assert.equal(regs.rax, 0xaaaa_aaaa_aaaa_aaaan);
  assert.equal(regs.rflags, 0xaaaa_aaaa_aaaa_aaaan);
});

/** Why the C comparison cannot run here, or undefined when it can. */
function cToolchainMissing(): string | undefined {
  if (!existsSync('/usr/include/linux/kvm.h')) return '/usr/include/linux/kvm.h is missing (linux-libc-dev)';
  if (spawnSync('gcc', ['--version']).error !== undefined) return 'gcc is not installed';
  return undefined;
}

const ioctlNames = Object.keys(ioctls).filter((name) => name.startsWith('KVM_'));

/** Each line the C program prints, as tsvmm's own layout predicts it. */
function predictedLines(): string[] {
  const lines: string[] = [];
  for (const [type, fields] of layouts) {
    lines.push(`sizeof ${type.name} ${type.size}`);
    for (const f of fields) lines.push(`field ${type.name}.${f.c} ${f.offset} ${f.size}`);
  }
  for (const [field, offset] of Object.entries(KVM_RUN_OFFSETS)) lines.push(`kvm_run.${field} ${offset}`);
  for (const name of ioctlNames) lines.push(`ioctl ${name} ${(ioctls as Record<string, unknown>)[name]}`);
  return lines;
}

/** A C program printing the same lines from the kernel headers. */
function cProgram(): string {
  const out = (format: string, ...args: string[]) => `  printf("${format}\\n"${args.map((a) => `, ${a}`).join('')});`;
  const body: string[] = [];
  for (const [type, fields] of layouts) {
    const t = `struct ${type.name}`;
    body.push(out(`sizeof ${type.name} %zu`, `sizeof(${t})`));
    for (const f of fields) {
      body.push(out(`field ${type.name}.${f.c} %zu %zu`, `offsetof(${t}, ${f.c})`, `sizeof(((${t} *)0)->${f.c})`));
    }
  }
  for (const field of Object.keys(KVM_RUN_OFFSETS)) body.push(out(`kvm_run.${field} %zu`, `offsetof(struct kvm_run, ${field})`));
  for (const name of ioctlNames) body.push(out(`ioctl ${name} %lu`, `(unsigned long)(${name})`));
  return ['#include <stddef.h>', '#include <stdio.h>', '#include <linux/kvm.h>', 'int main(void) {', ...body, '  return 0;', '}', ''].join('\n');
}

test('every size, field offset and width, kvm_run offset and ioctl number matches linux/kvm.h compiled with gcc', (t) => {
  const missing = cToolchainMissing();
  if (missing) {
    t.skip(`no C comparison: ${missing}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-structs-'));
  try {
    writeFileSync(join(dir, 'layout.c'), cProgram());
    execFileSync('gcc', ['-std=gnu11', '-Wall', '-o', join(dir, 'layout'), join(dir, 'layout.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const fromC = execFileSync(join(dir, 'layout'), { encoding: 'utf8' }).trimEnd().split('\n');
    assert.deepEqual(predictedLines(), fromC);
    t.diagnostic(`${fromC.length} values compared with the kernel headers`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
