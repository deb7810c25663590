/**
 * How the CLI ends when things go wrong: a guest that triple-faults, a guest
 * instruction nobody can emulate, and bad command lines. Each says what
 * happened in one line on stderr and exits with a status that tells them apart.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureDefaultGuest } from '../../src/guest/default-guest.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const ONE_MIB = 0x100000;
const hex16 = (n: number) => n.toString(16).padStart(16, '0');

function runLong(guest: string): Promise<CliResult> {
  return runCli(['run', '--raw', guestFile(guest, { address: ONE_MIB }), '--mode', 'long', '--load-addr', '0x100000']);
}

kvmTest('a triple fault stops the VM with a one-line reason, a register dump and status 3', async () => {
  const r = await runLong('triple-fault.s');
  assert.equal(r.status, 3, `status ${r.status}, stderr:\n${r.stderr}`);
  assert.equal(r.stdout, '');
  const [first, ...dump] = r.stderr.trimEnd().split('\n');
  assert.equal(first, 'tsvmm: the guest triple-faulted (a fault while delivering a double fault): the CPU shut down (vCPU 0)');
  const report = dump.join('\n');
  if (/^registers at the fault: lost \(KVM has reset the vCPU/.test(report)) {
    // KVM on AMD resets a vCPU at a shutdown: what the report must then say is that the state is gone.
    assert.equal(readFileSync('/proc/cpuinfo', 'utf8').includes('AuthenticAMD'), true, 'only KVM on AMD loses the state');
    assert.equal(dump.length, 1);
  } else {
    assert.match(report, new RegExp(`rip=${hex16(ONE_MIB + 9)} `), 'RIP is at the DIV that started it');
    assert.match(report, /cr0=[0-9a-f]{8} /);
    assert.match(report, /idt=0000000000000000\/0000/);
  }
  assert.doesNotMatch(r.stderr, /^ {4}at /m);
});

kvmTest('an instruction no emulator can run stops the VM with KVM\'s internal error decoded and status 4', { perBackend: true }, async () => {
  const r = await runLong('unemulated-instruction.s');
  assert.equal(r.status, 4, `status ${r.status}, stderr:\n${r.stderr}`);
  assert.equal(r.stdout, '');
  const [first, ...details] = r.stderr.trimEnd().split('\n');
  assert.match(first, /^tsvmm: .*instruction.* \(vCPU 0\)$/);
  const report = details.join('\n');
  assert.match(report, /^suberror: 1 \(EMULATION\)$/m);
  // FADDS (%rbx) is d8 03: from KVM, or read at CS:RIP on kernels that give no bytes.
  assert.match(report, /^instruction bytes(?: \(KVM gave none; read at CS:RIP\))?: d8 03 /m);
  assert.match(report, new RegExp(`^rip=${hex16(ONE_MIB + 5)} `, 'm'));
  if (existsSync('/sys/module/kvm_pvm')) assert.match(report, /^KVM backend: kvm_pvm, a software backend: /m);
  assert.doesNotMatch(r.stderr, /^ {4}at /m);
});

/** A bad command line: one line on stderr that says so, no stack trace, nothing on stdout, status 2 (as the README documents). */
function assertRefused(r: CliResult, reason: RegExp): void {
  assert.equal(r.status, 2, `status ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^tsvmm: [^\n]*\n$/, 'exactly one line, with tsvmm\'s prefix');
  assert.match(r.stderr, reason);
  assert.ok(!r.stderr.includes('    at '), r.stderr);
}

const scratch = mkdtempSync(join(tmpdir(), 'tsvmm-bad-input-'));
const tinyImage = join(scratch, 'tiny.bin');
writeFileSync(tinyImage, Buffer.from([0xf4])); // hlt

test('a raw image that does not exist is refused', async () => {
  assertRefused(await runCli(['run', '--raw', join(scratch, 'missing.bin')]), /missing\.bin': no such file/);
});

test('a missing --initrd, --module or --disk file is refused, naming the file', async () => {
  const linux = (await ensureDefaultGuest()).kernel;
  const multiboot = guestFile('mb-uart.s', { address: ONE_MIB, format: 'elf32' });
  assertRefused(await runCli(['run', '--kernel', linux, '--initrd', join(scratch, 'no-initrd.img')]), /no-initrd\.img': no such file/);
  assertRefused(await runCli(['run', '--kernel', multiboot, '--module', `${join(scratch, 'no-module.bin')},args`]), /no-module\.bin': no such file/);
  assertRefused(await runCli(['run', '--raw', tinyImage, '--disk', join(scratch, 'no-disk.img')]), /no-disk\.img': no such file/);
});

test('a file for the other kind of kernel is refused, not dropped: --initrd for multiboot, --module for Linux', async () => {
  const linux = (await ensureDefaultGuest()).kernel;
  const multiboot = guestFile('mb-uart.s', { address: ONE_MIB, format: 'elf32' });
  assertRefused(await runCli(['run', '--kernel', multiboot, '--initrd', tinyImage]), /--initrd is for Linux kernels; give a multiboot kernel its files with --module/);
  assertRefused(await runCli(['run', '--kernel', linux, '--module', tinyImage]), /--module is for multiboot kernels; give a Linux kernel its initramfs with --initrd/);
});

test('a directory given as the raw image is refused', async () => {
  assertRefused(await runCli(['run', '--raw', scratch]), /is a directory/);
});

test('an unknown --mode is refused', async () => {
  assertRefused(await runCli(['run', '--raw', tinyImage, '--mode', 'warp']), /warp/);
});

test('a --mem that is not a size is refused', async () => {
  assertRefused(await runCli(['run', '--raw', tinyImage, '--mem', '12Q']), /--mem: '12Q'/);
});

test('a --load-addr that is not an address is refused', async () => {
  assertRefused(await runCli(['run', '--raw', tinyImage, '--load-addr', 'banana']), /--load-addr: 'banana'/);
});

test('flags for another kind of guest are refused, not dropped', async () => {
  assertRefused(await runCli(['run', '--kernel', tinyImage, '--mode', 'real', '--entry', '0x7c00']), /^tsvmm: --mode, --entry: for --raw images only$/m);
  assertRefused(await runCli(['run', '--user']), /^tsvmm: --user: for --raw images only$/m);
  assertRefused(await runCli(['run', '--raw', tinyImage, '--append', 'quiet']), /^tsvmm: --append: for --kernel only; a raw image has no command line or files$/m);
});

test('--cpus 0 is refused', async () => {
  assertRefused(await runCli(['run', '--raw', tinyImage, '--cpus', '0']), /--cpus: '0'/);
});

kvmTest('a raw image that runs past the end of RAM is refused', async () => {
  const image = join(scratch, 'straddle.bin');
  writeFileSync(image, Buffer.alloc(32, 0xf4));
  assertRefused(
    await runCli(['run', '--raw', image, '--mode', 'real', '--mem', '1M', '--load-addr', '0xffff0']),
    /does not fit in guest RAM/,
  );
});

kvmTest('a raw image loaded over the long-mode page tables is refused', async () => {
  assertRefused(
    await runCli(['run', '--raw', tinyImage, '--mode', 'long', '--load-addr', '0x1000']),
    /would overwrite the page tables/,
  );
});
