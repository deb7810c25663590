/**
 * PCI and virtio-rng seen from inside a VM: raw long-mode guests that scan
 * bus 0 and drive the entropy device themselves (Linux takes minutes to
 * boot on a software KVM backend; these take seconds).
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceConfig } from '../../src/config/machine-schema.js';
import { Bar0 } from '../../src/devices/virtio/pci-transport.js';
import { buildMachine } from '../../src/vmm/builder.js';
import type { VmStop } from '../../src/devices/vm-stop.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { runBounded } from '../helpers/machine.js';

const ONE_MIB = 0x100000;
const BAR0 = 0xc100_0000;
const devices: DeviceConfig[] = [{ kind: 'serial' }, { kind: 'debug-exit' }, { kind: 'virtio-rng' }];

interface Run {
  stop: VmStop;
  console: string;
  deviceLog: string[];
  trace: string;
}

/** Runs a raw long-mode guest with virtio-rng in slot 1, tracing every exit to a file. */
async function runGuest(name: string): Promise<Run> {
  const image = readFileSync(guestFile(name, { address: ONE_MIB }));
  const tracePath = join(tmpdir(), `tsvmm-${name}-${process.pid}.trace`);
  const traceFd = openSync(tracePath, 'w');
  let console = '';
  const deviceLog: string[] = [];
  const machine = buildMachine({
    memory: 64 * ONE_MIB, cpus: 1, devices, traceFd,
    boot: { kind: 'raw', image, mode: 'long', loadAddr: ONE_MIB },
    console: (d) => (console += Buffer.from(d).toString('latin1')),
  });
  machine.deviceLog = (m) => deviceLog.push(m);
  try {
    const stop = await runBounded(machine);
    return { stop, console, deviceLog, trace: readFileSync(tracePath, 'utf8') };
  } finally {
    await machine.destroy();
    closeSync(traceFd);
    rmSync(tracePath);
  }
}

kvmTest('a guest finds the host bridge and virtio-rng through ports 0xCF8/0xCFC and through ECAM, and sizes BAR0', { timeout: 120_000 }, async () => {
  const r = await runGuest('pci-scan.s');
  assert.equal(r.stop.kind, 'debug-exit', r.stop.message);
  assert.equal(r.stop.exitCode, 1, r.console);
  assert.equal(
    r.console,
    [
      'slot0 cf8=00081b36 ecam=00081b36', // Red Hat generic host bridge
      'slot1 cf8=10441af4 ecam=10441af4', // virtio 1.x entropy device
      'slot2 cf8=ffffffff ecam=ffffffff',
      'slot3 cf8=ffffffff ecam=ffffffff',
      'class=ff000001', // class "other", revision 1
      `bar0=${BAR0.toString(16)}`,
      `mask=${(~(Bar0.SIZE - 1) >>> 0).toString(16)}`,
      '',
    ].join('\n'),
  );
});

kvmTest('a guest driver gets random bytes from virtio-rng, notifying through ioeventfd (no exit) and interrupted through INTx, then MSI-X', { timeout: 300_000 }, async () => {
  const r = await runGuest('virtio-rng.s');
  assert.equal(r.stop.kind, 'debug-exit', r.stop.message);
  assert.equal(r.stop.exitCode, 1, r.console);
  const lines = r.console.split('\n');
  // ISR bit 0: a used buffer. The INTx handler saw it; the MSI-X one needs no ISR.
  assert.deepEqual([lines[0], lines[2], lines[4]], ['intx isr=00000001 len=00000020', 'msi len=00000020', ''], r.console);
  const [first, second] = [lines[1], lines[3]];
  for (const bytes of [first, second]) {
    assert.match(bytes, /^[0-9a-f]{64}$/);
    assert.notEqual(bytes, '0'.repeat(64));
  }
  assert.notEqual(first, second, 'two requests, two different answers');
  assert.deepEqual(r.deviceLog, []);

  const notify = (BAR0 + Bar0.NOTIFY).toString(16);
  const mmio = r.trace.split('\n').filter((l) => l.includes(' MMIO '));
  assert.ok(mmio.some((l) => l.includes(`addr=0x${BAR0.toString(16)}`)), 'the common configuration is trapped MMIO');
  assert.deepEqual(mmio.filter((l) => l.includes(`addr=0x${notify}`)), [], 'no exit for the notify writes');
});
