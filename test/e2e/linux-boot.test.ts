/**
 * The Debian cloud kernel booted by tsvmm: what the kernel's own log says
 * about the machine we built (command line, e820 map, ACPI tables, CPUs),
 * and a command run to completion in the default guest.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { ensureDefaultGuest } from '../../src/guest/default-guest.js';
import { CLI, runCli } from '../helpers/cli.js';
import { kvmTest } from '../helpers/kvm.js';

const BOOT_LOG_TIMEOUT_MS = 10 * 60_000;

/** Runs tsvmm until every pattern has appeared on stdout, then stops it with SIGTERM. */
function bootUntil(args: string[], patterns: RegExp[]): Promise<{ stdout: string; status: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gave up waiting for ${patterns.filter((p) => !p.test(stdout)).join(', ')}\n${stdout.slice(-3000)}\n${stderr}`));
    }, BOOT_LOG_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (patterns.every((p) => p.test(stdout))) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ stdout, status });
    });
  });
}

function withProtocol(header: Buffer, version: number): Buffer {
  const copy = Buffer.from(header);
  copy.writeUInt16LE(version, 0x206);
  return copy;
}

describe('Linux on tsvmm', () => {
  kvmTest('the kernel reports our command line, e820 map, ACPI tables and 2 CPUs', { perBackend: true, timeout: BOOT_LOG_TIMEOUT_MS + 60_000 }, async () => {
    const expected = [
      /Command line: console=ttyS0 .*tsvmm\.marker=ab12/,
      /BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable/,
      /BIOS-e820: \[mem 0x0000000000100000-0x000000001fffffff\] usable/,
      /ACPI: RSDP 0x00000000000E0000 000024 \(v02 TSVMM \)/,
      /ACPI: XSDT 0x[0-9A-F]+ [0-9A-F]+ \(v01 TSVMM/,
      /ACPI: FACP 0x[0-9A-F]+ 000114 \(v06 TSVMM/,
      /ACPI: DSDT 0x[0-9A-F]+ [0-9A-F]+ \(v02 TSVMM/,
      /ACPI: APIC 0x[0-9A-F]+ [0-9A-F]+ \(v06 TSVMM/,
      /smpboot: Allowing 2 CPUs, 0 hotplug CPUs/,
    ];
    const { stdout, status } = await bootUntil(['run', '--cpus', '2', '--append', 'tsvmm.marker=ab12', '--console', 'stdio'], expected);
    for (const p of expected) assert.match(stdout, p);
    assert.equal(status, 143, 'SIGTERM stops the VM in order, with status 128 + 15');
  });

  kvmTest('a command runs in the default guest with 2 CPUs, its virtio modules loaded, and its status is ours', { backend: 'hardware', timeout: 10 * 60_000 }, async () => {
    const guest = await ensureDefaultGuest();
    const r = await runCli(['run', '--cpus', '2', '--', 'sh', '-c', 'nproc; uname -r; cut -d" " -f1 /proc/modules; exit 3'], { timeoutMs: 8 * 60_000 });
    const log = `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`;
    const lines = r.stdout.split(/\r?\n/);
    assert.ok(lines.includes('TSVMM-READY cpus=2'), `/init saw 2 CPUs\n${log}`);
    assert.ok(lines.includes('2'), 'nproc prints 2');
    assert.ok(lines.includes(guest.release), `uname -r prints the release of the guest's kernel package, ${guest.release}`);
    assert.ok(guest.modules.length >= 6, `the guest carries the virtio modules and their dependencies: ${guest.modules.join(', ')}`);
    for (const module of guest.modules) assert.ok(lines.includes(module), `/proc/modules lists ${module}`);
    assert.doesNotMatch(r.stdout, /could not load/);
    assert.equal(r.status, 3, "the command's exit status becomes tsvmm's");
  });

  // On a software backend the emulation assist carries the kernel through its whole boot, but the
  // backend does not switch to ring 0 on a system call from user space: init dies on its first one.
  kvmTest('on a software backend the kernel boots to /init, and init dies in user mode at a kernel address', { backend: 'software', timeout: 30 * 60_000 }, async () => {
    const r = await runCli(['run', '--cpus', '2', '--append', 'loglevel=7', '--stats', '--', 'nproc'], { timeoutMs: 30 * 60_000 });
    assert.match(r.stdout, /Run \/init as init process/, `the kernel finished booting\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`);
    assert.match(r.stderr, /^tsvmm: the guest kernel panicked: Attempted to kill init!/m);
    // The kernel's own words: init's fault at an instruction address in the kernel's half, taken in user mode.
    const fault = /\binit\[1\]:? .*?\bip[: ]([0-9a-f]+)/.exec(r.stdout);
    assert.ok(fault, 'the kernel reports the user-mode fault that killed init');
    assert.ok(BigInt(`0x${fault[1]}`) >= 0xffff_8000_0000_0000n, `init faulted at a kernel address (${fault[1]})`);
    assert.match(r.stderr, new RegExp(`init \\(pid 1\\) faulted in user mode at 0x${fault[1].replace(/^0+/, '')}, a kernel address`));
    assert.match(r.stderr, /emulation assist: .*cmpxchg16b \d+/, '--stats counts the assisted instructions by mnemonic');
    assert.equal(r.status, 7, 'a guest panic ends tsvmm with status 7');
  });

  kvmTest('malformed kernels are refused in one line', async () => {
    const dir = tmpdir();
    const header = Buffer.alloc(0x1000);
    header.writeUInt16LE(0xaa55, 0x1fe);
    header.write('HdrS', 0x202, 'latin1');
    header[0x200] = 0xeb; // jmp over the setup header, which so ends at 0x202 + 0x66
    header[0x201] = 0x66;
    header.writeUInt16LE(0x020f, 0x206); // boot protocol 2.15
    header[0x1f1] = 4; // setup sectors
    const cases: [string, Buffer, RegExp][] = [
      ['bad-magic', Buffer.from('this is not a kernel at all, just some text'.repeat(100)), /not|kernel|magic/i],
      ['truncated', header.subarray(0, 0x210), /truncat|short|too small|ends/i],
      ['old-protocol', withProtocol(header, 0x0205), /protocol 2\.05 is too old/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const file = join(dir, `tsvmm-malformed-${name}`);
      writeFileSync(file, bytes);
      const r = await runCli(['run', '--kernel', file]);
      assert.notEqual(r.status, 0, `${name}: non-zero status`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${name}: one line, got:\n${r.stderr}`);
      assert.match(lines[0], /^tsvmm: /);
      assert.match(lines[0], pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});
