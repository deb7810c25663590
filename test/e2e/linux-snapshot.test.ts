/**
 * A Linux guest snapshotted while it works with its disks and its network,
 * and restored in a new process: the loop it was running goes on from
 * where it stood, reading the disk through the device (caches dropped),
 * writing the other and pinging the host over the tap, until it ends and
 * reports its status. A restore whose disk has gone is refused in one line.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FirecrackerClient } from '../../src/api/firecracker-client.js';
import { startCli } from '../helpers/cli.js';
import { kvmTest } from '../helpers/kvm.js';
import { GUEST_IP_PARAMETER, HOST_IP, tapNamespace } from '../helpers/netns.js';

const GUEST_TIMEOUT_MS = 10 * 60_000;
const LAST_TICK = 8;
const SNAPSHOT_AFTER = 3;

/** Each tick: the first block of vda as the device gives it, the tick written to vdb, a ping of the host. */
const TICKS = [
  'n=0',
  `while [ $n -lt ${LAST_TICK} ]; do n=$((n+1))`,
  'echo 3 > /proc/sys/vm/drop_caches',
  'd=$(head -c 4096 /dev/vda | sha256sum | cut -c1-64)',
  'echo "$n" | dd of=/dev/vdb conv=fsync 2>/dev/null',
  `if ping -c 1 -W 10 ${HOST_IP} >/dev/null 2>&1; then p=up; else p=down; fi`,
  'echo "tick $n $d $p"',
  'sleep 1',
  'done',
].join('; ');

const ticks = (text: string) => [...text.matchAll(/^tick (\d+) ([0-9a-f]{64}) (up|down)\s*$/gm)].map((m) => ({ n: Number(m[1]), disk: m[2], net: m[3] }));

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-linux-snapshot-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

kvmTest('a Linux guest snapshotted mid-loop goes on in a new process: its disks and its network still work', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
  const dir = scratch(t);
  const ns = tapNamespace(t);
  const given = randomBytes(1 << 20);
  const [readPath, writePath] = ['given.img', 'ticks.img'].map((f) => join(dir, f));
  writeFileSync(readPath, given);
  writeFileSync(writePath, new Uint8Array(1 << 20));
  const sock = join(dir, 'api.sock');
  const run = startCli(
    ['run', '--mem', '256M', '--disk', readPath, '--disk', writePath, '--net', `tap=${ns.tap}`, '--append', GUEST_IP_PARAMETER, '--api-sock', sock, '--', 'sh', '-c', TICKS],
    { timeoutMs: GUEST_TIMEOUT_MS, prefix: ns.prefix },
  );
  t.after(() => run.child.kill('SIGKILL'));
  await run.waitFor(new RegExp(`^tick ${SNAPSHOT_AFTER} `, 'm'));
  const client = new FirecrackerClient(sock);
  await client.pause();
  await sleep(300); // what the guest printed before the pause reaches the console
  const [state, memory] = [join(dir, 'vm.state'), join(dir, 'vm.mem')];
  await client.createSnapshot(state, memory);
  const before = ticks(run.output().stdout);
  run.child.kill('SIGTERM');
  await run.done;

  const restored = startCli(['run', '--restore', state, '--restore-mem', memory], { timeoutMs: GUEST_TIMEOUT_MS, prefix: ns.prefix });
  t.after(() => restored.child.kill('SIGKILL'));
  const { status, stdout, stderr } = await restored.done;
  assert.equal(status, 0, `the guest's loop ended well after the restore\nstdout: ${stdout.slice(-3000)}\nstderr: ${stderr}`);
  const after = ticks(stdout);
  const last = before.at(-1)!.n;
  assert.ok(after.length > 0 && after[0].n > last && after[0].n <= last + 2, `the loop goes on from tick ${last}: ${stdout.slice(-2000)}`);
  assert.equal(after.at(-1)!.n, LAST_TICK);
  const expected = createHash('sha256').update(given.subarray(0, 4096)).digest('hex');
  for (const tick of [...before, ...after]) assert.deepEqual({ disk: tick.disk, net: tick.net }, { disk: expected, net: 'up' }, `tick ${tick.n}`);
  assert.equal(readFileSync(writePath).subarray(0, 2).toString(), `${LAST_TICK}\n`, 'the restored guest wrote its last tick to the disk');

  rmSync(readPath);
  const gone = startCli(['run', '--restore', state, '--restore-mem', memory], { timeoutMs: GUEST_TIMEOUT_MS, prefix: ns.prefix });
  const refused = await gone.done;
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /^tsvmm: [^\n]*given\.img[^\n]*\n$/, 'one line, naming the missing disk');
  assert.ok(existsSync(state) && existsSync(memory));
});
