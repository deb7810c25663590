/**
 * Multiboot kernels through the command line: what the kernel finds in EAX
 * and in the information structure (command line, memory, memory map,
 * modules), for an ELF kernel and an a.out-kludge flat binary, and a kernel
 * written for QEMU that drives the 16550 UART itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { GiB, MiB } from '../../src/memory/layout.js';
import { assemble } from '../../src/tools/assembler.js';

const GUESTS = fileURLToPath(new URL('../../../test/guests/', import.meta.url));
const workDir = mkdtempSync(join(tmpdir(), 'tsvmm-multiboot-test-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

/** The flat binary is loaded where its header says: at 1 MiB. */
const AOUT_ADDRESS = 0x100000;
/** ELF kernels are linked at 1 MiB, as most hobby kernels are. */
const ELF_ADDRESS = 0x100000;
const CMDLINE = 'console=ttyS0 tsvmm.marker=ab12';
/** mb-report.s writes 0x10 to the debug-exit port when it has printed everything. */
const REPORT_DONE_STATUS = (0x10 << 1) | 1;
/** mb-uart.s writes 0x20 when its UART behaved. */
const UART_OK_STATUS = (0x20 << 1) | 1;
const PAGE = 4096;
const MMIO_HOLE_START = 3 * GiB;
const FOUR_GIB = 4 * GiB;

/** A report kernel: a header source followed by mb-report.s, as `as header.s mb-report.s` would take them. */
function reportKernel(header: 'mb-elf.s' | 'mb-aout.s'): string {
  const source = join(workDir, `${basename(header, '.s')}-report.s`);
  writeFileSync(source, readFileSync(join(GUESTS, header), 'utf8') + readFileSync(join(GUESTS, 'mb-report.s'), 'utf8'));
  const elf = header === 'mb-elf.s';
  const path = join(workDir, `${basename(header, '.s')}.${elf ? 'elf' : 'bin'}`);
  writeFileSync(path, assemble(source, elf ? { address: ELF_ADDRESS, format: 'elf32' } : { address: AOUT_ADDRESS }));
  return path;
}

function moduleFile(name: string, data: Uint8Array): string {
  const path = join(workDir, name);
  writeFileSync(path, data);
  return path;
}

// A text module, and a binary one of more than a page so the next placement is exercised.
const textModule = moduleFile('module-text', Buffer.from('tsvmm module payload\n'));
const binaryModule = moduleFile('module-binary', Uint8Array.from({ length: PAGE + 123 }, (_, i) => (i * 37 + 5) & 0xff));
const moduleArgs = ['--module', `${textModule},arg1`, '--module', `${binaryModule},arg2,arg3`];
const expectedModules = [
  { cmdline: `${textModule} arg1`, data: readFileSync(textModule) },
  { cmdline: `${binaryModule} arg2 arg3`, data: readFileSync(binaryModule) },
];

interface MemoryMapEntry {
  base: number;
  length: number;
  type: number;
}

interface ModuleReport {
  start: number;
  end: number;
  cmdline: string;
  bytes: string;
}

/** What mb-report.s printed, one field per line. */
interface BootReport {
  magicOk: boolean;
  cmdline?: string;
  memLower?: number;
  memUpper?: number;
  mmap: MemoryMapEntry[];
  modsCount?: number;
  modules: ModuleReport[];
  loaderName?: string;
  done: boolean;
}

function parseReport(stdout: string): BootReport {
  const report: BootReport = { magicOk: false, mmap: [], modules: [], done: false };
  for (const line of stdout.split('\n')) {
    let m: RegExpExecArray | null;
    if (line === 'multiboot magic ok') report.magicOk = true;
    else if (line === 'done') report.done = true;
    else if ((m = /^cmdline=(.*)$/.exec(line))) report.cmdline = m[1];
    else if ((m = /^mem_lower=(\d+) mem_upper=(\d+)$/.exec(line))) [report.memLower, report.memUpper] = [Number(m[1]), Number(m[2])];
    else if ((m = /^mmap base=0x([0-9a-f]{16}) length=0x([0-9a-f]{16}) type=(\d+)$/.exec(line))) {
      report.mmap.push({ base: parseInt(m[1], 16), length: parseInt(m[2], 16), type: Number(m[3]) });
    } else if ((m = /^mods_count=(\d+)$/.exec(line))) report.modsCount = Number(m[1]);
    else if ((m = /^module start=0x([0-9a-f]{8}) end=0x([0-9a-f]{8}) cmdline=(.*) bytes=([0-9a-f ]*)$/.exec(line))) {
      report.modules.push({ start: parseInt(m[1], 16), end: parseInt(m[2], 16), cmdline: m[3], bytes: m[4] });
    } else if ((m = /^boot_loader_name=(.*)$/.exec(line))) report.loaderName = m[1];
  }
  return report;
}

/** The PC memory map the kernel should see for `mem` bytes of RAM split around the MMIO hole. */
function expectedMemoryMap(mem: number): MemoryMapEntry[] {
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

const hexBytes = (data: Uint8Array) => Array.from(data.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');

async function bootReport(kernel: string, mem: number, extra: string[] = []): Promise<BootReport> {
  const r = await runCli(['run', '--kernel', kernel, '--append', CMDLINE, '--mem', `${mem / MiB}M`, ...moduleArgs, ...extra]);
  assert.equal(r.status, REPORT_DONE_STATUS, `status ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return parseReport(r.stdout);
}

/** Everything a multiboot loader promises, checked against what the kernel printed. */
function assertBootInfo(report: BootReport, kernel: string, mem: number): void {
  assert.ok(report.magicOk, 'EAX held the boot loader magic 0x2BADB002');
  assert.equal(report.cmdline, `${kernel} ${CMDLINE}`, 'the kernel path, then the --append text, as QEMU and GRUB give it');
  assert.equal(report.loaderName, 'tsvmm');

  assert.deepEqual(report.mmap, expectedMemoryMap(mem));
  assert.equal(report.memLower, 639, 'mem_lower: KiB of RAM below the EBDA');
  assert.equal(report.memUpper, (Math.min(mem, MMIO_HOLE_START) - 1 * MiB) / 1024, 'mem_upper: KiB of RAM from 1 MiB to the first hole');

  assert.equal(report.modsCount, expectedModules.length);
  assert.equal(report.modules.length, expectedModules.length);
  const ram = report.mmap.filter((e) => e.type === 1);
  report.modules.forEach((mod, i) => {
    const want = expectedModules[i];
    assert.equal(mod.cmdline, want.cmdline);
    assert.equal(mod.end - mod.start, want.data.length, `module ${i} size`);
    assert.equal(mod.bytes, hexBytes(want.data), `module ${i} first bytes`);
    assert.equal(mod.start % PAGE, 0, `module ${i} is page-aligned, as header flag 0 asks`);
    assert.ok(ram.some((e) => mod.start >= e.base && mod.end <= e.base + e.length), `module ${i} lies in RAM`);
    if (i > 0) assert.ok(mod.start >= report.modules[i - 1].end, 'modules do not overlap');
  });
  assert.ok(report.done, 'the kernel finished its report');
}

kvmTest('an ELF multiboot kernel gets the magic, its command line, the memory map and its modules', async () => {
  const kernel = reportKernel('mb-elf.s');
  assertBootInfo(await bootReport(kernel, 64 * MiB), kernel, 64 * MiB);
});

kvmTest('an a.out-kludge kernel (a flat binary placed by its header) boots the same way', async () => {
  const kernel = reportKernel('mb-aout.s');
  assertBootInfo(await bootReport(kernel, 64 * MiB), kernel, 64 * MiB);
});

kvmTest('with 4 GiB of RAM the memory map shows the MMIO hole and the RAM moved above 4 GiB', async () => {
  const kernel = reportKernel('mb-aout.s');
  assertBootInfo(await bootReport(kernel, 4 * GiB), kernel, 4 * GiB);
});

/** Runs mb-uart.s, linked at `address` (with -n, or as ld links by default: its headers in the page in front), under tsvmm. */
async function runUartKernel(address = ELF_ADDRESS, headersInFront = false) {
  const kernel = guestFile('mb-uart.s', { address, format: 'elf32', headersInFront });
  return { kernel, ...(await runCli(['run', '--kernel', kernel, '--append', CMDLINE])) };
}

for (const headersInFront of [false, true]) {
  const linked = headersInFront ? 'linked without -n (its ELF headers loaded just below 1 MiB)' : 'linked with -n';
  kvmTest(`a kernel written as for QEMU, ${linked}, programs the 16550, tests it in loopback, polls the line status and prints`, async () => {
    const r = await runUartKernel(ELF_ADDRESS, headersInFront);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, `uart kernel: ${r.kernel} ${CMDLINE}\n`);
    assert.equal(r.status, UART_OK_STATUS);
  });

  kvmTest(`the QEMU-style kernel, ${linked}, prints the same under qemu-system-x86_64`, async () => {
    // QEMU is installed wherever the suite runs (.ci/run installs it for the rig).
    const ours = await runUartKernel(ELF_ADDRESS, headersInFront);
    const qemu = spawnSync('qemu-system-x86_64', [
      '-kernel', ours.kernel, '-append', CMDLINE, '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
      '-no-reboot', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x01',
    ], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(qemu.error, undefined, `qemu-system-x86_64 ran: ${qemu.error?.message}`);
    assert.deepEqual({ stdout: qemu.stdout, status: qemu.status }, { stdout: ours.stdout, status: ours.status });
  });
}
