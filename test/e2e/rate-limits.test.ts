/**
 * Rate limiters from inside Linux: a disk read through its bandwidth limit
 * takes at least what the limit makes it take, and again after the API
 * changed the limit while the guest ran; a TCP transfer each way over a
 * tap limited in each direction. The data arrives whole every time. Only
 * lower bounds are asserted: a limit makes I/O slower, never faster, and
 * the rig is slow enough without one.
 *
 * Times are the guest's own (/proc/uptime, its clock kvmclock, the host's)
 * or, for what the guest sends, the host's from first byte to last.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connectApi, defaultGuestBootSource } from '../helpers/api-client.js';
import { startCli } from '../helpers/cli.js';
import { kvmTest } from '../helpers/kvm.js';
import { GUEST_IP_PARAMETER, HOST_IP, SINK_PORT, SOURCE_PORT, tapNamespace } from '../helpers/netns.js';
import { startTcpPeer } from '../helpers/tcp-transfer.js';

const GUEST_TIMEOUT_MS = 10 * 60_000;
const LINUX = { backend: 'hardware', timeout: GUEST_TIMEOUT_MS } as const;
const MiB = 1 << 20;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** sh: the guest's uptime in seconds, to the hundredth. */
const UPTIME = 't() { cut -d" " -f1 /proc/uptime; }';

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-rate-limits-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A line `NAME start end sha` the guest printed. */
function timed(stdout: string, name: string): { seconds: number; sha: string } {
  const m = new RegExp(`^${name} ([\\d.]+) ([\\d.]+) ([0-9a-f]{64})`, 'm').exec(stdout);
  assert.ok(m, `the guest printed no ${name} line:\n${stdout.slice(-3000)}`);
  return { seconds: Number(m[2]) - Number(m[1]), sha: m[3] };
}

kvmTest('a disk read at 1 MiB/s takes its time, and at 512 KiB/s once PATCH /drives changed the limit under the running guest; the data is whole', LINUX, async (t) => {
  const dir = scratch(t);
  const data = randomBytes(4 * MiB);
  const disk = join(dir, 'data.img');
  writeFileSync(disk, data);
  const sock = join(dir, 'api.sock');
  const cli = startCli(['serve', '--api-sock', sock], { timeoutMs: GUEST_TIMEOUT_MS });
  t.after(() => cli.child.kill('SIGKILL'));
  const client = await connectApi(sock, cli);
  // Each read starts with an empty page cache; between them, the host changes the limit.
  const read = (name: string) => `echo 3 > /proc/sys/vm/drop_caches; a=$(t); s=$(sha256sum < /dev/vda); echo "${name} $a $(t) $s"`;
  const script = [UPTIME, read('READ1'), 'echo PATCH-NOW', 'sleep 8', read('READ2')].join('; ');
  await client.putBootSource(await defaultGuestBootSource(['sh', '-c', script]));
  await client.putDrive({ drive_id: 'data', path_on_host: disk, is_root_device: false, is_read_only: true, rate_limiter: { bandwidth: { size: MiB, refill_time: 1000 } } });
  await client.startInstance();
  await cli.waitFor(/^PATCH-NOW/m);
  await client.call('PATCH', '/drives/data', { drive_id: 'data', rate_limiter: { bandwidth: { size: MiB / 2, refill_time: 1000 } } });
  const { status, stdout, stderr } = await cli.done;
  assert.equal(status, 0, stderr);
  const [first, second] = [timed(stdout, 'READ1'), timed(stdout, 'READ2')];
  assert.equal(first.sha, sha256(data));
  assert.equal(second.sha, sha256(data));
  t.diagnostic(`4 MiB read at 1 MiB/s in ${first.seconds.toFixed(2)} s, at 512 KiB/s in ${second.seconds.toFixed(2)} s`);
  // A full bucket pays for the first part: 3 MiB at 1 MiB/s, then 3.5 MiB at 0.5 MiB/s.
  assert.ok(first.seconds >= 2.8, `4 MiB at 1 MiB/s took ${first.seconds} s`);
  assert.ok(second.seconds >= 6.8, `4 MiB at 512 KiB/s took ${second.seconds} s`);
});

kvmTest('TCP over a tap limited to 512 KiB/s each way: 2 MiB takes its time in both directions and arrives whole', LINUX, async (t) => {
  const bytes = 2 * MiB;
  const ns = tapNamespace(t);
  const peer = startTcpPeer(ns.prefix, bytes, GUEST_TIMEOUT_MS);
  t.after(() => peer.kill());
  await peer.next();
  const limit = `${MiB / 2}`;
  const run = startCli([
    'run', '--net', `tap=${ns.tap},tx_bw_size=${limit},rx_bw_size=${limit}`, '--append', GUEST_IP_PARAMETER, '--',
    'sh', '-c', [
      UPTIME,
      `head -c ${bytes} /dev/urandom > /tmp/out`,
      'echo "OUT $(sha256sum < /tmp/out)"',
      `nc ${HOST_IP} ${SINK_PORT} < /tmp/out`,
      `a=$(t); nc ${HOST_IP} ${SOURCE_PORT} > /tmp/in; echo "IN $a $(t) $(sha256sum < /tmp/in) $(wc -c < /tmp/in)"`,
    ].join('; '),
  ], { timeoutMs: GUEST_TIMEOUT_MS, prefix: ns.prefix });
  const { status, stdout, stderr } = await run.done;
  assert.equal(status, 0, stderr);
  const results = [await peer.next(), await peer.next()];
  const sink = results.find((r) => 'sink' in r)!;
  const source = results.find((r) => 'source' in r)!;
  const sent = /^OUT ([0-9a-f]{64})/m.exec(stdout);
  assert.ok(sent, stdout);
  assert.deepEqual([sink.sink, sink.bytes], [sent[1], bytes], 'guest to host, whole');
  const received = timed(stdout, 'IN');
  assert.equal(received.sha, source.source, 'host to guest, whole');
  t.diagnostic(`2 MiB out in ${sink.ms} ms, in in ${received.seconds.toFixed(2)} s, at 512 KiB/s each way`);
  // 1.5 MiB past the full bucket at 0.5 MiB/s, each way.
  assert.ok(Number(sink.ms) >= 2800, `2 MiB out at 512 KiB/s took ${sink.ms} ms on the host`);
  assert.ok(received.seconds >= 2.8, `2 MiB in at 512 KiB/s took ${received.seconds} s in the guest`);
});
