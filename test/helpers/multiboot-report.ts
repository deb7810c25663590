/**
 * What the multiboot report kernels (test/guests/mb-report.s, mb2-report.s)
 * print, parsed, and what a loader promises them: the PC memory map and
 * the test modules, placed in RAM page-aligned and intact.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { GiB, MiB } from '../../src/memory/layout.js';

const PAGE = 4096;
const MMIO_HOLE_START = 3 * GiB;
const FOUR_GIB = 4 * GiB;
/** The report kernels write 0x10 to the debug-exit port when they have printed everything. */
export const REPORT_DONE_STATUS = (0x10 << 1) | 1;

export interface MemoryMapEntry {
  base: number;
  length: number;
  type: number;
}

export interface ModuleReport {
  start: number;
  end: number;
  cmdline: string;
  bytes: string;
}

/** The lines both report kernels print alike. */
export interface CommonReport {
  cmdline?: string;
  loaderName?: string;
  memLower?: number;
  memUpper?: number;
  mmap: MemoryMapEntry[];
  modules: ModuleReport[];
  done: boolean;
}

export const emptyReport = (): CommonReport => ({ mmap: [], modules: [], done: false });

/** Takes `line` into `report` if it is one of the common lines; false if not. */
export function parseCommonLine(line: string, report: CommonReport): boolean {
  let m: RegExpExecArray | null;
  if (line === 'done') report.done = true;
  else if ((m = /^cmdline=(.*)$/.exec(line))) report.cmdline = m[1];
  else if ((m = /^boot_loader_name=(.*)$/.exec(line))) report.loaderName = m[1];
  else if ((m = /^mem_lower=(\d+) mem_upper=(\d+)$/.exec(line))) [report.memLower, report.memUpper] = [Number(m[1]), Number(m[2])];
  else if ((m = /^mmap base=0x([0-9a-f]{16}) length=0x([0-9a-f]{16}) type=(\d+)$/.exec(line))) {
    report.mmap.push({ base: parseInt(m[1], 16), length: parseInt(m[2], 16), type: Number(m[3]) });
  } else if ((m = /^module start=0x([0-9a-f]{8}) end=0x([0-9a-f]{8}) cmdline=(.*) bytes=([0-9a-f ]*)$/.exec(line))) {
    report.modules.push({ start: parseInt(m[1], 16), end: parseInt(m[2], 16), cmdline: m[3], bytes: m[4] });
  } else return false;
  return true;
}

/** The PC memory map a kernel should see for `mem` bytes of RAM split around the MMIO hole. */
export function expectedMemoryMap(mem: number): MemoryMapEntry[] {
  const low = Math.min(mem, MMIO_HOLE_START);
  const map = [
    { base: 0, length: 0x9fc00, type: 1 },
    { base: 0x9fc00, length: 0x400, type: 2 }, // extended BIOS data area
    { base: 0xf0000, length: 0x10000, type: 2 }, // BIOS
    { base: 1 * MiB, length: low - 1 * MiB, type: 1 },
  ];
  if (mem > low) map.push({ base: FOUR_GIB, length: mem - low, type: 1 });
  return map;
}

/** Memory sizes and map for `mem` bytes of RAM. */
export function assertMemory(report: CommonReport, mem: number): void {
  assert.deepEqual(report.mmap, expectedMemoryMap(mem));
  assert.equal(report.memLower, 639, 'mem_lower: KiB of RAM below the EBDA');
  assert.equal(report.memUpper, (Math.min(mem, MMIO_HOLE_START) - 1 * MiB) / 1024, 'mem_upper: KiB of RAM from 1 MiB to the first hole');
}

export interface TestModule {
  path: string;
  args: string[];
  data: Uint8Array;
}

/** A text module, and a binary one of more than a page so the next placement is exercised. */
export function testModules(): TestModule[] {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-multiboot-modules-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, data: Uint8Array, args: string[]): TestModule => {
    const path = join(dir, name);
    writeFileSync(path, data);
    return { path, args, data };
  };
  return [
    file('module-text', Buffer.from('tsvmm module payload\n'), ['arg1']),
    file('module-binary', Uint8Array.from({ length: PAGE + 123 }, (_, i) => (i * 37 + 5) & 0xff), ['arg2', 'arg3']),
  ];
}

/** `--module PATH,ARGS` for each. */
export const moduleFlags = (modules: TestModule[]): string[] => modules.flatMap((m) => ['--module', [m.path, ...m.args].join(',')]);

const hexBytes = (data: Uint8Array) => Array.from(data.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');

/** Each module where the kernel can use it: in RAM, page-aligned, not overlapping, its bytes and command line intact. */
export function assertModules(report: CommonReport, modules: TestModule[], cmdlineOf: (m: TestModule) => string): void {
  assert.equal(report.modules.length, modules.length);
  const ram = report.mmap.filter((e) => e.type === 1);
  report.modules.forEach((mod, i) => {
    const want = modules[i];
    assert.equal(mod.cmdline, cmdlineOf(want));
    assert.equal(mod.end - mod.start, want.data.length, `module ${i} size`);
    assert.equal(mod.bytes, hexBytes(want.data), `module ${i} first bytes`);
    assert.equal(mod.start % PAGE, 0, `module ${i} is page-aligned`);
    assert.ok(ram.some((e) => mod.start >= e.base && mod.end <= e.base + e.length), `module ${i} lies in RAM`);
    if (i > 0) assert.ok(mod.start >= report.modules[i - 1].end, 'modules do not overlap');
  });
}
