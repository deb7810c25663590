/**
 * SMP: every vCPU of a raw image starts at the entry point, and each must
 * see its own APIC id, both in its in-kernel local APIC and in CPUID.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { MiB } from '../../src/memory/layout.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import { buildMachine } from '../../src/vmm/builder.js';
import type { VmStop } from '../../src/devices/vm-stop.js';

const LOAD_ADDRESS = 0x100000;
/** smp-apic-ids.s writes 0x12 to the debug-exit port once every vCPU has printed. */
const ALL_REPORTED_STATUS = (0x12 << 1) | 1;

/** Runs smp-apic-ids.s at CPL0 on `cpus` vCPUs; returns its lines, sorted. */
async function apicIdLines(cpus: number): Promise<string[]> {
  const guest = guestFile('smp-apic-ids.s', { address: LOAD_ADDRESS });
  const r = await runCli(['run', '--raw', guest, '--mode', 'long', '--load-addr', `0x${LOAD_ADDRESS.toString(16)}`, '--cpus', String(cpus)]);
  assert.equal(r.status, ALL_REPORTED_STATUS, `status ${r.status}, stderr: ${r.stderr}`);
  return r.stdout.split('\n').filter((line) => line !== '').sort();
}

const expectedLines = (cpus: number) => Array.from({ length: cpus }, (_, id) => `cpu ${id} apic ${id}`);

kvmTest('2 vCPUs at CPL0 each read their own APIC id from the local APIC and from CPUID', async () => {
  assert.deepEqual(await apicIdLines(2), expectedLines(2));
});

// This host has 2 CPUs with APIC ids 0 and 1, so ids 2 and 3 can only come from tsvmm's CPUID.
kvmTest('4 vCPUs at CPL0 see APIC ids 0-3 and a count of 4 (CPUID is the VMM\'s, not the host\'s)', async () => {
  assert.deepEqual(await apicIdLines(4), expectedLines(4));
});

// smp-user-count.s's report table (see its header): 32 bytes per vCPU.
const REPORT = 0x200000;
const ENTRY_SIZE = 32;

interface CpuReport {
  lapicId: number;
  cpuidApicId: number;
}

async function waitForReports(memory: GuestMemory, cpus: number, timeoutMs: number): Promise<CpuReport[]> {
  const deadline = Date.now() + timeoutMs;
  const ready = (id: number) => memory.readU32(REPORT + id * ENTRY_SIZE) === 1;
  while (!Array.from({ length: cpus }, (_, id) => ready(id)).every(Boolean)) {
    if (Date.now() > deadline) throw new Error(`not every vCPU reported within ${timeoutMs} ms`);
    await delay(5);
  }
  return Array.from({ length: cpus }, (_, id) => ({
    lapicId: memory.readU32(REPORT + id * ENTRY_SIZE + 4),
    cpuidApicId: memory.readU32(REPORT + id * ENTRY_SIZE + 8),
  }));
}

// At CPL3 the guest runs natively here; it reports through memory, which the test reads while it spins.
kvmTest('2 vCPUs at CPL3 (--user) reach the local APIC through the user-mapped MMIO hole and read CPUID', async () => {
  const image = readFileSync(guestFile('smp-user-count.s', { address: LOAD_ADDRESS }));
  const machine = buildMachine({
    memory: 16 * MiB, cpus: 2, boot: { kind: 'raw', image, mode: 'long', loadAddr: LOAD_ADDRESS, user: true },
  });
  let outcome: VmStop | undefined;
  void machine.wait().then((stop) => (outcome = stop));
  try {
    await machine.start();
    const reports = await waitForReports(machine.memory!, 2, 10_000);
    assert.equal(outcome, undefined, `the guest ended early: ${outcome?.message}`);
    assert.deepEqual(reports, [{ lapicId: 0, cpuidApicId: 0 }, { lapicId: 1, cpuidApicId: 1 }]);
  } finally {
    await machine.destroy();
  }
});
