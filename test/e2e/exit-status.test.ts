/**
 * The exit statuses the README documents, checked against its numbers
 * (not against the constants the code exports): 5 when the CPU refuses to
 * enter the guest, 130 and 143 when SIGINT or SIGTERM stops a running guest.
 * (2: guest-errors, 3 and 4: guest-errors, 7: linux-boot.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMachine } from '../../src/vmm/builder.js';
import { CLI } from '../helpers/cli.js';
import { kvmTest } from '../helpers/kvm.js';
import { runBounded } from '../helpers/machine.js';

const LOAD_ADDRESS = 0x100000;

kvmTest('a guest state the CPU refuses (64-bit code segment with D set) ends the run with status 5 and a dump of that state', { backend: 'hardware' }, async () => {
  const machine = buildMachine({ memory: 16 << 20, cpus: 1, boot: { kind: 'raw', image: Uint8Array.of(0xf4), mode: 'long', loadAddr: LOAD_ADDRESS } });
  try {
    const vcpu = machine.vcpus[0].fd;
    const sregs = vcpu.getSregs();
    // In IA-32e mode a code segment with L=1 must have D=0 (Intel SDM 26.3.1.2, AMD APM 15.5.1).
    vcpu.setSregs({ ...sregs, cs: { ...sregs.cs, db: 1 } });
    const stop = await runBounded(machine);
    assert.equal(stop.kind, 'fail-entry', stop.message);
    assert.equal(stop.exitCode, 5);
    assert.match(stop.message, /^the CPU refused to enter the guest \(hardware entry failure reason 0x[0-9a-f]+\)$/);
    // The dump shows the state that was refused. (Where RIP stands is the CPU's business: under the
    // rig's emulated AMD-V the guest ran a little before the check caught it.)
    assert.match(stop.report ?? '', /^rip=[0-9a-f]{16} /m);
    assert.match(stop.report ?? '', /^cs=0018 .* l=1 db=1$/m);
  } finally {
    await machine.destroy();
  }
});

const scratch = mkdtempSync(join(tmpdir(), 'tsvmm-exit-status-'));
// Real mode: print "r" on COM1, then spin in `jmp .` until stopped.
const spinner = join(scratch, 'spin.bin');
writeFileSync(spinner, Uint8Array.of(0xba, 0xf8, 0x03, 0xb0, 0x72, 0xee, 0xeb, 0xfe));

for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  kvmTest(`${signal} stops a running guest in order, with status ${status}`, async () => {
    const child = spawn(process.execPath, [CLI, 'run', '--raw', spinner, '--mode', 'real', '--load-addr', '0x7c00'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const limit = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // The guest has printed, so it is running: then the signal.
    child.stdout.once('data', () => child.kill(signal));
    const exit = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(limit);
    assert.equal(exit, status, stderr);
    assert.equal(stderr, `tsvmm: stopped by ${signal}\n`);
  });
}
