/**
 * A Linux guest snapshotted while it works with its disks and its network,
 * and restored in a new process, as a clone is, in a network namespace of
 * its own on a tap of its own (--net-override): the loop it was running
 * goes on from where it stood, reading the disk through the device (caches
 * dropped), writing the other and pinging the host over the new tap, until
 * it ends and reports its status. A restore whose disk has gone is refused in one line.
 * A vsock stream open across a snapshot is reset in the restored guest
 * (the transport reset event, through the userspace device and vhost),
 * and the restored guest takes new streams.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FirecrackerClient } from '../../src/api/firecracker-client.js';
import { execFileSync } from 'node:child_process';
import { startCli, startProcess } from '../helpers/cli.js';
import { kvmTest } from '../helpers/kvm.js';
import { GUEST_IP_PARAMETER, HOST_IP, tapNamespace } from '../helpers/netns.js';
import { PY_SEND, udsCall, udsConnect, vsockToolDisk } from '../helpers/vsock-host.js';

const GUEST_TIMEOUT_MS = 10 * 60_000;
const LAST_TICK = 8;
const SNAPSHOT_AFTER = 3;

/**
 * Each tick: the first block of vda as the device gives it, the tick written to vdb, a ping of the host,
 * and how many interrupts the ACPI Generic Event Device has had (the VM generation ID's, raised by a restore).
 */
const TICKS = [
  'n=0',
  `while [ $n -lt ${LAST_TICK} ]; do n=$((n+1))`,
  'echo 3 > /proc/sys/vm/drop_caches',
  'd=$(head -c 4096 /dev/vda | sha256sum | cut -c1-64)',
  'echo "$n" | dd of=/dev/vdb conv=fsync 2>/dev/null',
  `if ping -c 1 -W 10 ${HOST_IP} >/dev/null 2>&1; then p=up; else p=down; fi`,
  'g=$(awk \'/ACPI:Ged/ { print $2 }\' /proc/interrupts)',
  'echo "tick $n $d $p ged=$g"',
  'sleep 1',
  'done',
].join('; ');

const ticks = (text: string) =>
  [...text.matchAll(/^tick (\d+) ([0-9a-f]{64}) (up|down) ged=(\d*)\s*$/gm)].map((m) => ({ n: Number(m[1]), disk: m[2], net: m[3], ged: m[4] }));

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

  const clone = tapNamespace(t, 'tsvmmclone0');
  const restored = startCli(['run', '--restore', state, '--restore-mem', memory, '--net-override', `net0=${clone.tap}`], { timeoutMs: GUEST_TIMEOUT_MS, prefix: clone.prefix });
  t.after(() => restored.child.kill('SIGKILL'));
  const { status, stdout, stderr } = await restored.done;
  assert.equal(status, 0, `the guest's loop ended well after the restore\nstdout: ${stdout.slice(-3000)}\nstderr: ${stderr}`);
  const after = ticks(stdout);
  const last = before.at(-1)!.n;
  assert.ok(after.length > 0 && after[0].n > last && after[0].n <= last + 2, `the loop goes on from tick ${last}: ${stdout.slice(-2000)}`);
  assert.equal(after.at(-1)!.n, LAST_TICK);
  const expected = createHash('sha256').update(given.subarray(0, 4096)).digest('hex');
  for (const tick of [...before, ...after]) assert.deepEqual({ disk: tick.disk, net: tick.net }, { disk: expected, net: 'up' }, `tick ${tick.n}`);
  assert.deepEqual(new Set(before.map((tick) => tick.ged)), new Set(['0']), 'the generation ID device\'s event waits for a restore');
  assert.deepEqual(new Set(after.map((tick) => tick.ged)), new Set(['1']), 'the restore changed the generation ID, and told the guest');
  assert.equal(readFileSync(writePath).subarray(0, 2).toString(), `${LAST_TICK}\n`, 'the restored guest wrote its last tick to the disk');

  const unknown = startCli(['run', '--restore', state, '--restore-mem', memory, '--net-override', `eth9=${clone.tap}`], { timeoutMs: GUEST_TIMEOUT_MS });
  const unknownRun = await unknown.done;
  assert.equal(unknownRun.status, 2, unknownRun.stderr);
  assert.match(unknownRun.stderr, /^tsvmm: snapshot '[^']*vm\.state' has no network interface 'eth9' \(it has net0\)\n$/);

  rmSync(readPath);
  const gone = startCli(['run', '--restore', state, '--restore-mem', memory], { timeoutMs: GUEST_TIMEOUT_MS, prefix: ns.prefix });
  const refused = await gone.done;
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /^tsvmm: [^\n]*given\.img[^\n]*\n$/, 'one line, naming the missing disk');
  assert.ok(existsSync(state) && existsSync(memory));
});

const HELD_PORT = 6000;
const NEW_PORT = 6001;
/** Python: connect to CID PORT, send MESSAGE, and keep the stream open. */
const PY_HOLD = `import socket, sys, time
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((int(sys.argv[1]), int(sys.argv[2])))
s.sendall(sys.argv[3].encode())
print('sent', flush=True)
time.sleep(3600)`;

/** How the host reaches the guest's vsock: the --vsock value, a stream it holds open, a call. */
interface VsockPeer {
  flag: string;
  hold(port: number, message: string): Promise<() => void>;
  call(port: number, message: string): Promise<string>;
}

/**
 * The guest serves a stream the host holds open when the snapshot is taken. Restored, the guest's read
 * fails (ECONNRESET: the transport reset), and it serves a new stream.
 */
async function vsockAcrossRestore(t: TestContext, dir: string, peer: VsockPeer): Promise<void> {
  const { disk, install } = vsockToolDisk(dir);
  const sock = join(dir, 'api.sock');
  const script = `${install}; /tmp/vt serve ${HELD_PORT} unused; echo "held-stream $?"; /tmp/vt serve ${NEW_PORT} 'after the restore'`;
  const run = startCli(['run', '--vsock', peer.flag, '--disk', `${disk},ro`, '--api-sock', sock, '--', 'sh', '-c', script], { timeoutMs: GUEST_TIMEOUT_MS });
  t.after(() => run.child.kill('SIGKILL'));
  await run.waitFor(/^vsock-tool: listening\s*$/m);
  const release = await peer.hold(HELD_PORT, 'before the snapshot');
  t.after(release);
  await run.waitFor(/before the snapshot/);
  const client = new FirecrackerClient(sock);
  await client.pause();
  const [state, memory] = [join(dir, 'vm.state'), join(dir, 'vm.mem')];
  await client.createSnapshot(state, memory);
  run.child.kill('SIGTERM');
  await run.done;

  const restored = startCli(['run', '--restore', state, '--restore-mem', memory], { timeoutMs: GUEST_TIMEOUT_MS });
  t.after(() => restored.child.kill('SIGKILL'));
  await restored.waitFor(/^vsock-tool: listening\s*$/m);
  assert.match(restored.output().stderr + restored.output().stdout, /vsock-tool: read: Connection reset by peer/);
  assert.match(restored.output().stdout, /^held-stream 1\s*$/m, 'the stream held across the snapshot was reset');
  assert.equal(await peer.call(NEW_PORT, 'hello'), 'after the restore', 'a new stream works');
  const { status, stdout, stderr } = await restored.done;
  assert.equal(status, 0, `${stdout.slice(-2000)}\n${stderr}`);
}

kvmTest('a vsock stream open across a snapshot is reset in the restored guest, over Unix sockets (uds=)', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
  const dir = scratch(t);
  const uds = join(dir, 'vsock.sock');
  await vsockAcrossRestore(t, dir, {
    flag: `cid=${20_000 + (process.pid % 100_000)},uds=${uds}`,
    hold: async (port, message) => {
      const socket = await udsConnect(uds, port);
      socket.on('error', () => {});
      socket.write(message);
      return () => socket.destroy();
    },
    call: (port, message) => udsCall(uds, port, message),
  });
});

kvmTest('a vsock stream open across a snapshot is reset in the restored guest, through vhost-vsock', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
  const cid = 30_000 + (process.pid % 100_000);
  await vsockAcrossRestore(t, scratch(t), {
    flag: `cid=${cid}`,
    hold: async (port, message) => {
      const holder = startProcess(['python3', '-c', PY_HOLD, String(cid), String(port), message], { timeoutMs: GUEST_TIMEOUT_MS });
      await holder.waitFor(/^sent$/m);
      return () => holder.child.kill('SIGKILL');
    },
    call: async (port, message) => execFileSync('python3', ['-c', PY_SEND, String(cid), String(port), message], { encoding: 'utf8' }),
  });
});
