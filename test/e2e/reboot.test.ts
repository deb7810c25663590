/**
 * A guest reboot: by default it ends the run (status 0, like QEMU's
 * -no-reboot); with --on-reboot restart the guest starts again.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const args = () => ['run', '--raw', guestFile('reset.s', { address: 0x7c00 }), '--mode', 'real', '--load-addr', '0x7c00'];

kvmTest('a reset through the keyboard controller ends the run with status 0', async () => {
  const r = await runCli(args());
  assert.equal(r.stdout, 'boot\n');
  assert.match(r.stderr, /^tsvmm: the guest reset the machine through the keyboard controller/);
  assert.equal(r.status, 0);
});

kvmTest('--on-reboot restart starts the guest again on a fresh machine: RAM and device state as at the first boot', async () => {
  const fresh = ['run', '--raw', guestFile('reset-fresh.s', { address: 0x7c00 }), '--mode', 'real', '--load-addr', '0x7c00', '--on-reboot', 'restart'];
  const child = spawn(process.execPath, [CLI, ...fresh], { stdio: ['ignore', 'pipe', 'pipe'] });
  const limit = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => {
    stdout += d;
    if (stdout.split('\n').length > 3) child.kill('SIGTERM');
  });
  const status = await new Promise((resolve) => child.on('close', resolve));
  clearTimeout(limit);
  // Each boot reads the RAM byte and the UART scratch register the one before it marked.
  assert.ok(stdout.startsWith('boot clean-ram clean-uart\n'.repeat(3)), stdout);
  assert.match(stderr, /starting it again \(boot 2\)/);
  assert.equal(status, 143, 'SIGTERM stops it in order');
});
