/**
 * Single-vCPU guests run through the CLI, one behaviour each: console output
 * in every CPU mode, MMIO, a timer interrupt waking HLT, CPUID at CPL0 and
 * CPL3, and a compute loop in ring 3.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runCli, type CliResult } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const BOOT_SECTOR = 0x7c00;
const ONE_MIB = 0x100000;

/** The process status for a guest that wrote `value` to the debug-exit port. */
const debugExit = (value: number) => (value << 1) | 1;

/** Assembles `guest` for `address` and runs it with the given CLI options. */
function runGuest(guest: string, address: number, options: string[]): Promise<CliResult> {
  const image = guestFile(guest, { address });
  return runCli(['run', '--raw', image, '--load-addr', `0x${address.toString(16)}`, ...options]);
}

function assertExited(r: CliResult, value: number): void {
  assert.equal(r.status, debugExit(value), `status ${r.status}, signal ${r.signal}, stderr:\n${r.stderr}`);
  assert.equal(r.stderr, '');
}

kvmTest('real mode: a boot sector at 0x7c00 prints on COM1 and exits through the debug-exit port', async () => {
  const r = await runGuest('real-hello.s', BOOT_SECTOR, ['--mode', 'real']);
  assertExited(r, 0x21);
  assert.equal(r.stdout, 'hello from real mode\n');
});

kvmTest('32-bit protected mode: a flat guest at 1 MiB prints and exits', async () => {
  const r = await runGuest('protected-hello.s', ONE_MIB, ['--mode', 'protected']);
  assertExited(r, 0x32);
  assert.equal(r.stdout, 'hello from protected mode\n');
});

kvmTest('64-bit long mode: a guest at 1 MiB prints and exits', async () => {
  const r = await runGuest('long-hello.s', ONE_MIB, ['--mode', 'long']);
  assertExited(r, 0x2a);
  assert.equal(r.stdout, 'hello from long mode\n');
});

kvmTest('MMIO: 1-, 2-, 4- and 8-byte accesses reach the test device; an address with no device reads all-ones', async () => {
  const r = await runGuest('mmio.s', ONE_MIB, ['--mode', 'long', '--test-device', '0xc0000000']);
  assertExited(r, 0);
  assert.equal(
    r.stdout,
    [
      'u8=000000000000005a',
      'u16=000000000000beef',
      'u32=00000000deadbeef',
      'u64=0123456789abcdef',
      'accesses=0000000000000009', // 4 writes, 4 reads, and the read of the counter itself
      'absent=ffffffffffffffff',
      'absent-after-write=ffffffffffffffff', // the write went nowhere
      '',
    ].join('\n'),
  );
});

kvmTest('HLT: the PIT interrupt through the remapped 8259 PIC wakes a real-mode guest', async () => {
  const r = await runGuest('timer-wakeup.s', BOOT_SECTOR, ['--mode', 'real']);
  assertExited(r, 0x11);
  assert.equal(r.stdout, 'woken by the timer\n');
});

const hostVendor = /^vendor_id\s*:\s*(\S+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];

/** cpuid.s's "name=value" lines. */
function cpuidReport(stdout: string): Map<string, string> {
  return new Map(stdout.split('\n').filter((l) => l !== '').map((l) => l.split('=', 2) as [string, string]));
}

function assertCpuid(r: CliResult): void {
  assertExited(r, 0);
  const report = cpuidReport(r.stdout);
  assert.equal(report.get('vendor'), hostVendor, r.stdout);
  assert.equal(report.get('apic-id'), '00000000', r.stdout); // the only vCPU has APIC id 0
  // tsvmm writes the vCPU count in leaf 1 EBX[23:16]; the host has its own count there.
  assert.equal((Number.parseInt(report.get('leaf1-ebx') ?? '', 16) >>> 16) & 0xff, 1, r.stdout);
  assert.equal(report.get('hypervisor'), 'KVMKVMKVM', r.stdout);
}

kvmTest('CPUID at CPL0: leaf 0 gives the host CPU vendor, leaf 1 the APIC id and vCPU count tsvmm set', async () => {
  assertCpuid(await runGuest('cpuid.s', ONE_MIB, ['--mode', 'long']));
});

kvmTest('CPUID at CPL3 (--user): the same answers in ring 3', async () => {
  assertCpuid(await runGuest('cpuid.s', ONE_MIB, ['--mode', 'long', '--user']));
});

/** What ring3-hash.s computes: 32-bit FNV-1a over the bytes of 4 MiB of xorshift32 output. */
function ring3HashExpected(): string {
  const words = new Uint32Array(0x100000);
  let x = 2463534242;
  for (let i = 0; i < words.length; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    words[i] = x;
  }
  let hash = 0x811c9dc5;
  for (const byte of new Uint8Array(words.buffer)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, '0');
}

kvmTest('ring 3 (--user): a 5-million-step compute loop over guest memory prints the value JS computes', async () => {
  const r = await runGuest('ring3-hash.s', ONE_MIB, ['--mode', 'long', '--user']);
  assertExited(r, 0);
  assert.equal(r.stdout, `fnv1a=${ring3HashExpected()}\n`);
});
