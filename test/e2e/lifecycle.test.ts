/**
 * The machine lifecycle through the library API: many VMs built, run and
 * destroyed in one process without leaking, pause and resume of a guest
 * that never exits on its own, and stop() of guests spinning in KVM_RUN.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { runBounded } from '../helpers/machine.js';
import type { CpuMode } from '../../src/arch/x86/cpu-modes.js';
import { MiB } from '../../src/memory/layout.js';
import { buildMachine } from '../../src/vmm/builder.js';
import type { BootSource } from '../../src/vmm/config.js';
import type { Machine } from '../../src/vmm/machine.js';
import type { VmStop } from '../../src/devices/vm-stop.js';

const LOAD_ADDRESS = 0x100000;

const openFds = () => readdirSync('/proc/self/fd').length;
const threads = () => Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);

/** Polls `condition` until it holds, failing with `what` after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

function rawMachine(boot: Omit<Extract<BootSource, { kind: 'raw' }>, 'kind'>, console?: (d: Uint8Array) => void): Machine {
  return buildMachine({ memory: 16 * MiB, cpus: 1, boot: { kind: 'raw', ...boot }, console });
}

kvmTest('100 VMs built, run to their debug exit and destroyed in one process leak no fds, threads or memory', async (t) => {
  const image = readFileSync(guestFile('long-hello.s', { address: LOAD_ADDRESS }));
  const runOne = async () => {
    let output = '';
    const machine = rawMachine({ image, mode: 'long', loadAddr: LOAD_ADDRESS }, (d) => (output += Buffer.from(d).toString()));
    try {
      const stop = await runBounded(machine);
      assert.equal(stop.kind, 'debug-exit', stop.message);
      assert.equal(stop.exitCode, (0x2a << 1) | 1);
    } finally {
      await machine.destroy();
    }
    assert.equal(output, 'hello from long mode\n');
  };

  await runOne(); // first use loads koffi, the worker code and the kick signal handler
  const baseline = { fds: openFds(), threads: threads(), rss: process.memoryUsage().rss };
  const started = performance.now();
  for (let i = 0; i < 100; i++) await runOne();
  const perVmMs = (performance.now() - started) / 100;

  assert.equal(openFds(), baseline.fds, 'open fds after 100 VMs');
  await until(() => threads() <= baseline.threads, `threads to return to ${baseline.threads} (now ${threads()})`, 5_000);
  const growthMiB = (process.memoryUsage().rss - baseline.rss) / MiB;
  t.diagnostic(`${perVmMs.toFixed(1)} ms per VM; fds ${baseline.fds}; threads ${baseline.threads}; RSS ${(baseline.rss / MiB).toFixed(0)} MiB, +${growthMiB.toFixed(1)} MiB after 100 VMs`);
  // Each VM maps 16 MiB of guest RAM and starts a worker with its own V8 heap: a leak of either would show as GiB.
  assert.ok(growthMiB < 64, `RSS grew by ${growthMiB.toFixed(1)} MiB over 100 VMs`);
});

// smp-user-count.s: vCPU 0's counter, incremented forever at CPL3 without a VM exit.
const READY = 0x200000;
const COUNTER = 0x200000 + 16;

kvmTest('pause freezes a guest spinning at CPL3, resume lets it count again, stop and destroy end it', async (t) => {
  const image = readFileSync(guestFile('smp-user-count.s', { address: LOAD_ADDRESS }));
  const fdsBefore = openFds();
  const machine = rawMachine({ image, mode: 'long', loadAddr: LOAD_ADDRESS, user: true });
  let outcome: VmStop | undefined;
  void machine.wait().then((stop) => (outcome = stop));
  try {
    const memory = machine.memory!;
    const counter = () => memory.readU64(COUNTER);
    await machine.start();
    await until(() => memory.readU32(READY) === 1 && counter() > 0n, 'the guest to start counting');

    await machine.pause();
    assert.equal(machine.state, 'paused');
    const frozen = counter();
    await delay(200);
    assert.equal(counter(), frozen, 'the counter moved while paused');

    machine.resume();
    assert.equal(machine.state, 'running');
    await until(() => counter() > frozen, 'the counter to move after resume', 5_000);

    assert.equal(outcome, undefined, `the guest ended by itself: ${outcome?.message}`);
    const stopStarted = performance.now();
    await machine.stop();
    const stopMs = performance.now() - stopStarted;
    assert.equal(machine.state, 'stopped');
    assert.equal((await machine.wait()).kind, 'stopped');
    const last = counter();
    await delay(50);
    assert.equal(counter(), last, 'the counter moved after stop');
    t.diagnostic(`counter at stop: ${last}; stop took ${stopMs.toFixed(1)} ms; exits: ${machine.exitStats().total}`);
  } finally {
    await machine.destroy();
  }
  assert.equal(machine.state, 'destroyed');
  assert.equal(openFds(), fdsBefore, 'destroy closed every fd the machine opened');
});

// Each guest stores 1 at MARKER (which proves it is running, so its vCPU is inside KVM_RUN), then
// spins in `jmp .` (eb fe): the vCPU never leaves KVM_RUN on its own, so only a kick can end it.
const MARKER_OFFSET = 0x100;
const spinGuests: { mode: CpuMode; loadAddr: number; image: number[] }[] = [
  { mode: 'real', loadAddr: 0x8000, image: [0xc6, 0x06, 0x00, 0x81, 0x01, 0xeb, 0xfe] }, // movb $1, 0x8100
  { mode: 'protected', loadAddr: LOAD_ADDRESS, image: [0xc6, 0x05, 0x00, 0x01, 0x10, 0x00, 0x01, 0xeb, 0xfe] }, // movb $1, 0x100100
  { mode: 'long', loadAddr: LOAD_ADDRESS, image: [0xc6, 0x04, 0x25, 0x00, 0x01, 0x10, 0x00, 0x01, 0xeb, 0xfe] }, // movb $1, 0x100100 (absolute)
];

for (const { mode, loadAddr, image } of spinGuests) {
  kvmTest(`stop() ends a ${mode}-mode CPL0 guest spinning in jmp . within a second`, async (t) => {
    const machine = rawMachine({ image: Uint8Array.from(image), mode, loadAddr });
    try {
      await machine.start();
      await until(() => machine.memory!.read(loadAddr + MARKER_OFFSET, 1)[0] === 1, 'the guest to store its marker');
      assert.equal(machine.state, 'running');
      const started = performance.now();
      await machine.stop();
      const stopMs = performance.now() - started;
      t.diagnostic(`stop took ${stopMs.toFixed(1)} ms`);
      assert.ok(stopMs < 1000, `stop took ${stopMs.toFixed(0)} ms`);
      assert.equal((await machine.wait()).kind, 'stopped');
    } finally {
      await machine.destroy();
    }
  });
}
