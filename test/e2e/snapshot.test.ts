/**
 * Snapshots: a raw guest counting in its registers is paused, saved to a
 * state file and a memory file, and restored in new processes (twice, side
 * by side) where it counts on from where it stood; the same through the
 * API's PUT /snapshot/create; and damaged, cut or foreign snapshots
 * refused in one line, the files left as they were.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FirecrackerClient } from '../../src/api/firecracker-client.js';
import { loadSnapshot, snapshotMachine, type SavedConfig } from '../../src/snapshot/vm-snapshot.js';
import { MiB } from '../../src/memory/layout.js';
import { buildMachine } from '../../src/vmm/builder.js';
import { runCli, startCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-snapshot-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const LOAD = 0x100000;
const DONE_STATUS = (0x33 << 1) | 1;
const LAST = 0x10;

const counts = (text: string) => [...text.matchAll(/^count ([0-9a-f]{2})$/gm)].map((m) => parseInt(m[1], 16));
const hash = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const countLoopConfig = (): SavedConfig => ({
  memory: 64 * MiB, cpus: 1, boot: { kind: 'raw', image: readFileSync(guestFile('count-loop.s', { address: LOAD })), mode: 'long', loadAddr: LOAD },
});
/** Where count-loop.s stores its step; a page of RAM the test writes. */
const STEP_STORE = 0x200000;
const MARKER_AT = 0x300000;

/** Runs count-loop.s until it has printed `upTo`, pauses it and saves it; returns the counts it printed. */
async function countAndSnapshot(state: string, memory: string, upTo = 3): Promise<number[]> {
  const config = countLoopConfig();
  let output = '';
  const machine = buildMachine({ ...config, console: (d) => (output += Buffer.from(d).toString('latin1')) });
  try {
    await machine.start();
    for (let i = 0; i < 1200 && !counts(output).includes(upTo); i++) await sleep(50);
    await machine.pause();
    assert.ok(counts(output).includes(upTo), `the guest counted to ${upTo}: ${output}`);
    snapshotMachine(machine, config, state, memory);
    return counts(output);
  } finally {
    await machine.destroy();
  }
}

/** The counts a restored run prints, and its status. */
async function restore(state: string, memory: string) {
  const r = await runCli(['run', '--restore', state, '--restore-mem', memory], { timeoutMs: 3 * 60_000 });
  return { counts: counts(r.stdout), status: r.status, stderr: r.stderr };
}

const following = (from: number) => Array.from({ length: LAST - from }, (_, i) => from + 1 + i);

/**
 * A restored run counts on from the saved count: its first line is the one after the last line
 * seen before the pause, or the one after that when that line was printed just before the pause
 * took hold and had not reached the host's console yet.
 */
function assertCountsOn(restored: number[], lastSeen: number, why: string): void {
  const first = restored[0];
  assert.ok(first === lastSeen + 1 || first === lastSeen + 2, `${why}: the first count after the restore is ${first}, after ${lastSeen} (not 1)`);
  assert.deepEqual(restored, following(first - 1), why);
}

kvmTest('a paused guest saved to files counts on in a new process from where it stood, twice side by side', async () => {
  const state = join(dir, 'count.state');
  const memory = join(dir, 'count.mem');
  const before = await countAndSnapshot(state, memory);
  const last = before.at(-1)!;
  assert.deepEqual(before, Array.from({ length: last }, (_, i) => i + 1));
  const [one, two] = await Promise.all([restore(state, memory), restore(state, memory)]);
  for (const r of [one, two]) {
    assertCountsOn(r.counts, last, r.stderr);
    assert.equal(r.status, DONE_STATUS);
  }
  assert.deepEqual(one.counts, two.counts, 'two clones of one snapshot do the same');
});

kvmTest('the debug registers a debugger set and the TSC\'s rate come back in the restored vCPU', async () => {
  const config = countLoopConfig();
  const [state, memory] = [join(dir, 'dr.state'), join(dir, 'dr.mem')];
  const breakpoints = [0x1000n, 0x2000n, 0x3000n, 0x4000n];
  const machine = buildMachine(config);
  let saved;
  try {
    await machine.start({ paused: true });
    const { fd } = machine.vcpus[0];
    fd.setDebugRegs({ ...fd.getDebugRegs(), db: breakpoints });
    saved = { debug: fd.getDebugRegs(), tscKhz: fd.getTscKhz() };
    snapshotMachine(machine, config, state, memory);
  } finally {
    await machine.destroy();
  }
  assert.deepEqual(saved.debug.db, breakpoints);
  assert.ok(saved.tscKhz > 0, `KVM knows the TSC's rate: ${saved.tscKhz} kHz`);
  const restored = loadSnapshot(state, memory).build();
  try {
    const { fd } = restored.vcpus[0];
    assert.deepEqual({ debug: fd.getDebugRegs(), tscKhz: fd.getTscKhz() }, saved);
  } finally {
    await restored.destroy();
  }
});

kvmTest('PUT /snapshot/create saves a paused VM that tsvmm run started; tsvmm run --restore brings it back', async () => {
  const sock = join(dir, 'api.sock');
  const cli = startCli(['run', '--raw', guestFile('count-loop.s', { address: LOAD }), '--api-sock', sock], { timeoutMs: 3 * 60_000 });
  while (!existsSync(sock)) await sleep(20);
  const client = new FirecrackerClient(sock);
  await assert.rejects(client.createSnapshot(join(dir, 'x'), join(dir, 'y')), /pause it first/);
  await cli.waitFor(/^count 02$/m);
  await client.pause();
  await sleep(200); // what the guest printed before the pause reaches the console
  const state = join(dir, 'api.state');
  const memory = join(dir, 'api.mem');
  await client.createSnapshot(state, memory);
  const last = counts(cli.output().stdout).at(-1)!;
  cli.child.kill('SIGTERM');
  await cli.done;
  const r = await restore(state, memory);
  assertCountsOn(r.counts, last, r.stderr);
  assert.equal(r.status, DONE_STATUS);
});

kvmTest('PUT /snapshot/load in a fresh tsvmm serve: the VM waits paused, then counts on once resumed', async () => {
  const state = join(dir, 'load.state');
  const memory = join(dir, 'load.mem');
  const last = (await countAndSnapshot(state, memory)).at(-1)!;
  const sock = join(dir, 'serve.sock');
  const serve = startCli(['serve', '--api-sock', sock], { timeoutMs: 3 * 60_000 });
  while (!existsSync(sock)) await sleep(20);
  const client = new FirecrackerClient(sock);
  await client.loadSnapshot(state, memory);
  assert.equal((await client.describeInstance()).state, 'Paused');
  await sleep(500);
  assert.deepEqual(counts(serve.output().stdout), [], 'nothing runs before the resume');
  await client.resume();
  const { status, stdout, stderr } = await serve.done;
  assertCountsOn(counts(stdout), last, stderr);
  assert.equal(status, DONE_STATUS);
});

kvmTest('a diff snapshot holds only the pages written since the full one, the guest\'s and the VMM\'s; merged onto it, it restores the later state', async () => {
  const config: SavedConfig = { ...countLoopConfig(), trackDirtyPages: true };
  const [baseState, baseMemory, diffState, diffMemory] = ['base.state', 'base.mem', 'diff.state', 'diff.mem'].map((f) => join(dir, f));
  const marker = Buffer.from('written by the VMM between the snapshots');
  let output = '';
  const machine = buildMachine({ ...config, console: (d) => (output += Buffer.from(d).toString('latin1')) });
  let diffBytes: number;
  try {
    await machine.start();
    for (let i = 0; i < 1200 && !counts(output).includes(2); i++) await sleep(50);
    await machine.pause();
    assert.equal(snapshotMachine(machine, config, baseState, baseMemory), 64 * MiB, 'a full snapshot writes all of RAM');
    machine.memory.write(MARKER_AT, marker);
    machine.resume();
    for (let i = 0; i < 1200 && !counts(output).includes(4); i++) await sleep(50);
    await machine.pause();
    diffBytes = snapshotMachine(machine, config, diffState, diffMemory, 'diff');
  } finally {
    await machine.destroy();
  }
  assert.ok(diffBytes >= 2 * 4096 && diffBytes < 1 * MiB, `the diff holds the few pages written since the base: ${diffBytes} bytes`);
  assert.ok(statSync(diffMemory).blocks * 512 < 2 * MiB, 'the diff memory file is sparse');
  assert.equal(statSync(diffMemory).size, 64 * MiB);

  const merged = join(dir, 'merged.mem');
  copyFileSync(baseMemory, merged);
  const rebase = await runCli(['rebase-memory', '--base-file', merged, '--diff-file', diffMemory]);
  assert.equal(rebase.status, 0, rebase.stderr);
  const stepIn = async (memory: string) => {
    const restored = loadSnapshot(diffState, memory).build();
    try {
      return { step: restored.memory.readU64(STEP_STORE), marker: Buffer.from(restored.memory.read(MARKER_AT, marker.length)).toString() };
    } finally {
      await restored.destroy();
    }
  };
  const base = await stepIn(baseMemory);
  const rebased = await stepIn(merged);
  assert.ok(base.step >= 2n && base.step < 4n, `the base holds the step of its time: ${base.step}`);
  assert.ok(rebased.step >= 4n, `the merged memory holds the guest's later write: ${rebased.step}`);
  assert.equal(rebased.marker, marker.toString(), 'and the VMM\'s');
  const r = await restore(diffState, merged);
  assert.equal(r.status, DONE_STATUS, r.stderr);
  assert.ok(r.counts[0] > 4, `the restored guest counts on from its diff's state: ${r.counts}`);
});

kvmTest('a damaged, cut, foreign or mismatched snapshot is refused in one line, and left as it was', async () => {
  const state = join(dir, 'good.state');
  const memory = join(dir, 'good.mem');
  await countAndSnapshot(state, memory, 1);
  const refused = async (s: string, m: string, message: RegExp) => {
    const hashes = [s, m].filter(existsSync).map(hash);
    const r = await runCli(['run', '--restore', s, '--restore-mem', m]);
    assert.deepEqual({ status: r.status, stdout: r.stdout }, { status: 2, stdout: '' }, r.stderr);
    assert.match(r.stderr, new RegExp(`^tsvmm: ${message.source}\\n$`));
    assert.deepEqual([s, m].filter(existsSync).map(hash), hashes, 'nothing written to the snapshot files');
  };
  const copy = (name: string, edit: (b: Buffer) => Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, edit(Buffer.from(readFileSync(state))));
    return path;
  };
  await refused(copy('flipped.state', (b) => { b[b.length - 40] ^= 0xff; return b; }), memory, /snapshot '.*flipped.state' fails its checksum: it was changed or damaged/);
  await refused(copy('cut.state', (b) => b.subarray(0, b.length - 100)), memory, /snapshot '.*cut.state' is \d+ bytes, not the \d+ its header says: it was cut short or grew/);
  await refused(copy('v9.state', (b) => { b.writeUInt32LE(9, 8); return b; }), memory, /snapshot '.*v9.state' has format version 9; this tsvmm reads version 2/);
  await refused(copy('junk.state', () => Buffer.from('not a snapshot at all, just some words to fill the header and more')), memory, /snapshot '.*junk.state' is not a tsvmm snapshot \(no TSVMMSNP header\)/);
  await refused(state, join(dir, 'missing.mem'), /snapshot memory '.*missing.mem': no such file/);
  const shortMemory = join(dir, 'short.mem');
  writeFileSync(shortMemory, readFileSync(memory).subarray(0, 1 * MiB));
  await refused(state, shortMemory, /snapshot memory '.*short.mem' is shorter than the machine's RAM \(1048576 bytes, not 67108864\)/);
  truncateSync(shortMemory, 0);
  const flags = await runCli(['run', '--restore', state, '--restore-mem', memory, '--mem', '1G']);
  assert.deepEqual({ status: flags.status, stderr: flags.stderr }, { status: 2, stderr: 'tsvmm: --restore describes the VM; drop --mem\n' });
});
