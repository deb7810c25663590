/**
 * QEMU's command line on tsvmm: a harness that runs `qemu-system-x86_64
 * ...` gets the same output and exit status when that name points at
 * tsvmm-qemu, for the project's QEMU-style kernels; `tsvmm qemu` is the
 * same program; a command line tsvmm cannot honour fails in one line with
 * QEMU's status 1.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { testModules } from '../helpers/multiboot-report.js';
import { KERNEL_HARNESS_FLAGS as HARNESS, underBoth } from '../helpers/qemu.js';

const KERNEL_ADDRESS = 0x100000;
const CMDLINE = 'console=ttyS0 harness=1';
/** mb-uart.s writes 0x20 when its UART behaved; mb-report.s 0x10 when it has printed everything. */
const UART_OK_STATUS = (0x20 << 1) | 1;
const REPORT_DONE_STATUS = (0x10 << 1) | 1;
/** mb-smp-apic.s writes 0x30 when every check passed. */
const SMP_PASS_STATUS = (0x30 << 1) | 1;

const same = (r: { qemu: { stdout: string; status: number | null }; tsvmm: { stdout: string; status: number | null; stderr: string } }) =>
  assert.deepEqual({ stdout: r.tsvmm.stdout, status: r.tsvmm.status }, { stdout: r.qemu.stdout, status: r.qemu.status }, `tsvmm's stderr:\n${r.tsvmm.stderr}`);

for (const headersInFront of [false, true]) {
  kvmTest(`a harness's qemu-system-x86_64 line for the 16550 kernel${headersInFront ? ' (ELF headers below 1 MiB)' : ''}: same output and status`, async () => {
    const kernel = guestFile('mb-uart.s', { address: KERNEL_ADDRESS, format: 'elf32', headersInFront });
    const r = await underBoth(['-kernel', kernel, '-append', CMDLINE, ...HARNESS]);
    assert.equal(r.tsvmm.stdout, `uart kernel: ${kernel} ${CMDLINE}\n`);
    assert.equal(r.tsvmm.status, UART_OK_STATUS);
    same(r);
  });
}

kvmTest('-initrd "a args,b args" gives a multiboot kernel its modules as QEMU does', async () => {
  const kernel = guestFile('mb-elf.s', { address: KERNEL_ADDRESS, format: 'elf32' });
  const modules = testModules();
  const initrd = modules.map((m) => [m.path, ...m.args].join(' ')).join(',');
  const r = await underBoth(['-kernel', kernel, '-append', CMDLINE, '-initrd', initrd, '-m', '64', ...HARNESS]);
  // The loaders place the modules at addresses of their own and name themselves; the rest must agree.
  const comparable = (stdout: string) =>
    stdout.split('\n').filter((l) => /^(cmdline|mods_count|module|done)/.test(l)).map((l) => l.replace(/start=\S+ end=\S+ /, ''));
  const lines = comparable(r.tsvmm.stdout);
  assert.deepEqual(lines, [
    `cmdline=${kernel} ${CMDLINE}`,
    'mods_count=2',
    ...modules.map((m) => `module cmdline=${[m.path, ...m.args].join(' ')} bytes=${Array.from(m.data.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ')}`),
    'done',
  ]);
  assert.deepEqual({ lines, status: r.tsvmm.status }, { lines: comparable(r.qemu.stdout), status: r.qemu.status });
  assert.equal(r.tsvmm.status, REPORT_DONE_STATUS);
});

kvmTest('a harness\'s line for the SMP kernel (fw_cfg, INIT/SIPI, LAPIC timer, I/O APIC) with -smp 2: same output and status', async () => {
  const kernel = guestFile('mb-smp-apic.s', { address: KERNEL_ADDRESS, format: 'elf32' });
  const r = await underBoth(['-kernel', kernel, '-smp', '2', '-m', '128', ...HARNESS]);
  assert.match(r.tsvmm.stdout, /^smp: 2 of 2 cpus up$/m);
  assert.equal(r.tsvmm.status, SMP_PASS_STATUS);
  same(r);
});

kvmTest('a triple fault under -no-reboot ends the run with status 0, as under QEMU', async () => {
  const kernel = guestFile('mb-triple-fault.s', { address: KERNEL_ADDRESS, format: 'elf32' });
  const r = await underBoth(['-kernel', kernel, ...HARNESS]);
  assert.deepEqual({ stdout: r.tsvmm.stdout, status: r.tsvmm.status }, { stdout: 'triple fault next\n', status: 0 });
  same(r);
});

kvmTest('tsvmm qemu is the same front end, and KVM-only options are taken', async () => {
  const kernel = guestFile('mb-uart.s', { address: KERNEL_ADDRESS, format: 'elf32' });
  const r = await runCli(['qemu', '-kernel', kernel, '-append', CMDLINE, '-enable-kvm', '-machine', 'pc,accel=kvm', '-accel', 'kvm', '-cpu', 'host', '-smp', '2', '-m', '256M', ...HARNESS]);
  assert.deepEqual({ stdout: r.stdout, status: r.status, stderr: r.stderr }, { stdout: `uart kernel: ${kernel} ${CMDLINE}\n`, status: UART_OK_STATUS, stderr: '' });
});

test('an option tsvmm does not take: one line naming it, status 1, as QEMU fails a bad command line', async () => {
  const r = await runCli(['qemu', '-kernel', '/nonexistent', '-hda', 'disk.img']);
  assert.deepEqual({ status: r.status, stdout: r.stdout }, { status: 1, stdout: '' });
  assert.match(r.stderr, /^tsvmm: unsupported QEMU option '-hda' \(tsvmm qemu takes .*\)\n$/);
  const missing = await runCli(['qemu', '-kernel', '/nonexistent']);
  assert.deepEqual({ status: missing.status, stderr: missing.stderr }, { status: 1, stderr: "tsvmm: -kernel '/nonexistent': no such file\n" });
});
