/**
 * A guest that halts with interrupts disabled can never run again; KVM would
 * keep it asleep forever. tsvmm notices and ends the run with a report.
 */
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const args = (cpus: number) => [
  'run', '--raw', guestFile('halt-forever.s', { address: 0x100000 }), '--mode', 'long', '--cpus', String(cpus),
];

for (const cpus of [1, 2]) {
  kvmTest(`${cpus} vCPU(s) halted with interrupts disabled end the run instead of hanging`, async () => {
    // A bound on a hang, not a measure: two rigs side by side took a 2-vCPU run past 30 s once.
    const r = await runCli(args(cpus), { timeoutMs: 120_000 });
    assert.equal(r.stdout, 'going to sleep for good\n', 'vCPU 0 said it would sleep');
    assert.match(r.stderr, /^tsvmm: every vCPU is halted with interrupts disabled .*: the guest can never run again/m);
    assert.equal(r.status, 6);
  });
}
