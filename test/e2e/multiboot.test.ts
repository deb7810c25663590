/**
 * Multiboot kernels through the command line: what the kernel finds in EAX
 * and in the information structure (command line, memory, memory map,
 * modules), for an ELF kernel and an a.out-kludge flat binary, and a kernel
 * written for QEMU that drives the 16550 UART itself.
 */
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { runQemuKernel } from '../helpers/qemu.js';
import {
  assertMemory, assertModules, emptyReport, moduleFlags, parseCommonLine, REPORT_DONE_STATUS, testModules, type CommonReport,
} from '../helpers/multiboot-report.js';
import { GiB, MiB } from '../../src/memory/layout.js';

/** The flat binary is loaded where its header says: at 1 MiB. */
const AOUT_ADDRESS = 0x100000;
/** ELF kernels are linked at 1 MiB, as most hobby kernels are. */
const ELF_ADDRESS = 0x100000;
const CMDLINE = 'console=ttyS0 tsvmm.marker=ab12';
/** mb-uart.s writes 0x20 when its UART behaved. */
const UART_OK_STATUS = (0x20 << 1) | 1;

/** A report kernel: a header source that includes mb-report.s. */
function reportKernel(header: 'mb-elf.s' | 'mb-aout.s'): string {
  return guestFile(header, header === 'mb-elf.s' ? { address: ELF_ADDRESS, format: 'elf32' } : { address: AOUT_ADDRESS });
}

const modules = testModules();

/** What mb-report.s printed, one field per line. */
interface BootReport extends CommonReport {
  magicOk: boolean;
  modsCount?: number;
}

function parseReport(stdout: string): BootReport {
  const report: BootReport = { ...emptyReport(), magicOk: false };
  for (const line of stdout.split('\n')) {
    let m: RegExpExecArray | null;
    if (parseCommonLine(line, report)) continue;
    if (line === 'multiboot magic ok') report.magicOk = true;
    else if ((m = /^mods_count=(\d+)$/.exec(line))) report.modsCount = Number(m[1]);
  }
  return report;
}

async function bootReport(kernel: string, mem: number, extra: string[] = []): Promise<BootReport> {
  const r = await runCli(['run', '--kernel', kernel, '--append', CMDLINE, '--mem', `${mem / MiB}M`, ...moduleFlags(modules), ...extra]);
  assert.equal(r.status, REPORT_DONE_STATUS, `status ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return parseReport(r.stdout);
}

/** Everything a multiboot loader promises, checked against what the kernel printed. */
function assertBootInfo(report: BootReport, kernel: string, mem: number): void {
  assert.ok(report.magicOk, 'EAX held the boot loader magic 0x2BADB002');
  assert.equal(report.cmdline, `${kernel} ${CMDLINE}`, 'the kernel path, then the --append text, as QEMU gives it');
  assert.equal(report.loaderName, 'tsvmm');
  assertMemory(report, mem);
  assert.equal(report.modsCount, modules.length);
  // As QEMU gives them: the module's path, then its arguments.
  assertModules(report, modules, (m) => [m.path, ...m.args].join(' '));
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
    const ours = await runUartKernel(ELF_ADDRESS, headersInFront);
    assert.deepEqual(await runQemuKernel(ours.kernel, ['-append', CMDLINE]), { stdout: ours.stdout, status: ours.status });
  });
}
