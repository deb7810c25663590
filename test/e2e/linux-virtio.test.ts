/**
 * Every virtio device proved from inside Linux: the default guest's own
 * drivers use tsvmm's disk, entropy and network devices, and the host
 * checks what arrived (a file, a tap in a network namespace of the test's).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext } from 'node:test';
import { runCli, startCli, startProcess } from '../helpers/cli.js';
import { startTcpPeer } from '../helpers/tcp-transfer.js';
import { kvmTest } from '../helpers/kvm.js';
import { GUEST_IP, GUEST_IP_PARAMETER, HOST_IP, SINK_PORT, SOURCE_PORT, tapNamespace } from '../helpers/netns.js';
import { PY_SEND, udsCall, vsockToolDisk } from '../helpers/vsock-host.js';

const GUEST_TIMEOUT_MS = 10 * 60_000;
const HOST_PORT = 5000;
const GUEST_PORT = 6000;
/** The host's side of the vsock test, with Python's AF_VSOCK (Node has none). */
const PY_SERVE = `import socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, int(sys.argv[1])))
s.listen(1)
print('listening', flush=True)
c, _ = s.accept()
data = b''
while True:
    d = c.recv(4096)
    if not d: break
    data += d
print('got ' + data.decode(), flush=True)
c.sendall(sys.argv[2].encode())
c.close()`;
const TCP_BYTES = 64 << 20;

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-linux-virtio-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `tsvmm run [args] -- sh -c SCRIPT`; resolves with the run's stdout once it has ended, status 0. */
async function runInGuest(args: string[], script: string, prefix?: string[]): Promise<string> {
  const run = startCli(['run', ...args, '--', 'sh', '-c', script], { timeoutMs: GUEST_TIMEOUT_MS, prefix });
  const { status, stdout, stderr } = await run.done;
  assert.equal(status, 0, `tsvmm failed\nstdout: ${stdout.slice(-3000)}\nstderr: ${stderr}`);
  return stdout;
}

describe('virtio devices from inside Linux', () => {
  kvmTest('the guest reads a disk the host wrote, writes one the host reads after poweroff, is refused a read-only one, and reads /dev/hwrng', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
    const dir = scratch(t);
    const given = randomBytes(1 << 20);
    const [readPath, writePath, roPath] = ['given.img', 'written.img', 'ro.img'].map((f) => join(dir, f));
    writeFileSync(readPath, given);
    writeFileSync(writePath, new Uint8Array(1 << 20));
    writeFileSync(roPath, given);
    const stdout = await runInGuest(
      ['--disk', readPath, '--disk', writePath, '--disk', `${roPath},ro`],
      [
        'echo "READ $(sha256sum < /dev/vda)"',
        'head -c 1048576 /dev/urandom > /tmp/w',
        'dd if=/tmp/w of=/dev/vdb bs=65536 conv=fsync 2>/dev/null && echo "WROTE $(sha256sum < /tmp/w)"',
        'echo "RO-SYSFS $(cat /sys/block/vdc/ro)"',
        'dd if=/dev/zero of=/dev/vdc bs=512 count=1 conv=fsync 2>/dev/null; echo "RO-WRITE $?"',
        'echo "RNG $(cat /sys/class/misc/hw_random/rng_current) $(head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n")"',
      ].join('; '),
    );
    assert.match(stdout, new RegExp(`^READ ${sha256(given)}  -\\s*$`, 'm'), 'the guest read what the host wrote');
    const wrote = stdout.match(/^WROTE ([0-9a-f]{64}) {2}-\s*$/m);
    assert.ok(wrote, stdout);
    assert.equal(sha256(readFileSync(writePath)), wrote[1], 'the host reads what the guest wrote and synced');
    assert.match(stdout, /^RO-SYSFS 1\s*$/m, 'the guest sees the disk read-only');
    assert.doesNotMatch(stdout, /^RO-WRITE 0\s*$/m, 'a write to the read-only disk fails');
    assert.deepEqual(readFileSync(roPath), given, 'the read-only image is untouched');
    const rng = stdout.match(/^RNG (\S+) ([0-9a-f]*)\s*$/m);
    assert.ok(rng, stdout);
    assert.match(rng[1], /^virtio_rng/);
    assert.equal(rng[2].length, 64, '32 bytes from /dev/hwrng');
    assert.notEqual(rng[2], '0'.repeat(64));
  });

  kvmTest('what the guest wrote and flushed is in the image after kill -9 of tsvmm', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
    const dir = scratch(t);
    const path = join(dir, 'disk.img');
    writeFileSync(path, new Uint8Array(1 << 20));
    const run = startCli(
      ['run', '--disk', path, '--', 'sh', '-c', 'head -c 524288 /dev/urandom > /tmp/w; dd if=/tmp/w of=/dev/vda bs=65536 conv=fsync 2>/dev/null; echo "FLUSHED $(sha256sum < /tmp/w)"; sleep 600'],
      { timeoutMs: GUEST_TIMEOUT_MS },
    );
    const [, hash] = await run.waitFor(/^FLUSHED ([0-9a-f]{64}) {2}-\s*$/m);
    run.child.kill('SIGKILL');
    const { signal } = await run.done;
    assert.equal(signal, 'SIGKILL');
    assert.equal(sha256(readFileSync(path).subarray(0, 524288)), hash);
  });

  kvmTest('the guest and the host ping each other over a tap', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
    const ns = tapNamespace(t);
    const run = startCli(
      ['run', '--net', `tap=${ns.tap}`, '--append', GUEST_IP_PARAMETER, '--', 'sh', '-c', `ping -c 3 -W 10 ${HOST_IP} && echo GUEST-PINGED; sleep 600`],
      { timeoutMs: GUEST_TIMEOUT_MS, prefix: ns.prefix },
    );
    t.after(() => run.child.kill('SIGKILL'));
    await run.waitFor(/^GUEST-PINGED\s*$/m);
    assert.match(run.output().stdout, /3 packets transmitted, 3 packets received/);
    assert.match(ns.run('ping', '-c', '3', '-W', '10', GUEST_IP), /3 packets transmitted, 3 received/);
    run.child.kill('SIGTERM');
    await run.done;
  });

  kvmTest('a tap that goes away while the guest uses it: tsvmm says so once and keeps running', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
    const ns = tapNamespace(t);
    const run = startCli(
      ['run', '--net', `tap=${ns.tap},vhost=off`, '--append', GUEST_IP_PARAMETER, '--', 'sh', '-c',
        `ping -c 1 -W 10 ${HOST_IP} >/dev/null && echo TAP-USED; ping -i 0.5 ${HOST_IP} >/dev/null 2>&1 & sleep 600`],
      { timeoutMs: GUEST_TIMEOUT_MS, prefix: ns.prefix },
    );
    t.after(() => run.child.kill('SIGKILL'));
    await run.waitFor(/^TAP-USED\s*$/m);
    ns.run('ip', 'link', 'del', ns.tap);
    await run.waitFor(/network tap: (read|write) failed/, 'stderr');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(run.child.exitCode, null, 'still running');
    run.child.kill('SIGTERM');
    const { status, stderr } = await run.done;
    assert.equal(stderr.match(/network tap: /g)?.length, 1, `told once: ${stderr}`);
    assert.notEqual(status, null, 'tsvmm ended on its own terms, not by a crash');
  });

  for (const vhost of ['on', 'off'] as const) {
    kvmTest(`64 MiB go over TCP each way with matching checksums (vhost=${vhost}: the data path in the ${vhost === 'on' ? 'host kernel' : 'VMM'})`, { timeout: GUEST_TIMEOUT_MS }, async (t) => {
      const ns = tapNamespace(t);
      const peer = startTcpPeer(ns.prefix, TCP_BYTES, GUEST_TIMEOUT_MS);
      t.after(() => peer.kill());
      await peer.next();
      const stdout = await runInGuest(
        ['--net', `tap=${ns.tap},vhost=${vhost}`, '--append', GUEST_IP_PARAMETER],
        [
          `head -c ${TCP_BYTES} /dev/urandom > /tmp/out`,
          'echo "OUT $(sha256sum < /tmp/out)"',
          `nc ${HOST_IP} ${SINK_PORT} < /tmp/out`,
          `nc ${HOST_IP} ${SOURCE_PORT} > /tmp/in`,
          'echo "IN $(sha256sum < /tmp/in) $(wc -c < /tmp/in)"',
        ].join('; '),
        ns.prefix,
      );
      const sent = stdout.match(/^OUT ([0-9a-f]{64})/m);
      // Not anchored at the end: a kernel message (a soft-lockup warning in the rig's slow guest) may follow on the line.
      const received = stdout.match(/^IN ([0-9a-f]{64}) {2}- (\d+)/m);
      assert.ok(sent && received, stdout);
      const results = [await peer.next(), await peer.next()];
      const sink = results.find((r) => 'sink' in r)!;
      const source = results.find((r) => 'source' in r)!;
      assert.deepEqual([sink.sink, sink.bytes], [sent[1], TCP_BYTES], 'guest to host');
      assert.equal(received[1], source.source, 'host to guest');
      assert.equal(Number(received[2]), TCP_BYTES);
    });
  }

  kvmTest('a vsock round trip each way through vhost-vsock: the guest calls the host\'s AF_VSOCK socket, the host calls the guest', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
    const cid = 10_000 + (process.pid % 100_000);
    await vsockRoundTrip(t, {
      flag: `cid=${cid}`,
      serveHost: async () => {
        const server = startProcess(['python3', '-c', PY_SERVE, String(HOST_PORT), 'pong from the host'], { timeoutMs: GUEST_TIMEOUT_MS });
        t.after(() => server.child.kill('SIGKILL'));
        await server.waitFor(/^listening$/m);
        return { got: server.done.then((r) => r.stdout.match(/^got (.*)$/m)?.[1]) };
      },
      callGuest: async (message) => execFileSync('python3', ['-c', PY_SEND, String(cid), String(GUEST_PORT), message], { encoding: 'utf8' }),
    });
  });

  kvmTest('a vsock round trip each way over Unix sockets (uds=): CONNECT <port> from the host, <path>_<port> for the guest', { timeout: GUEST_TIMEOUT_MS }, async (t) => {
    const uds = join(scratch(t), 'vsock.sock');
    await vsockRoundTrip(t, {
      flag: `cid=${10_000 + (process.pid % 100_000)},uds=${uds}`,
      serveHost: async () => {
        let gotIt: (data: string) => void = () => {};
        const got = new Promise<string>((resolve) => (gotIt = resolve));
        const server = createServer((socket) => {
          let data = '';
          socket.on('data', (d) => (data += d));
          socket.on('end', () => {
            socket.end('pong from the host');
            server.close();
            gotIt(data);
          });
        });
        t.after(() => server.close());
        await new Promise<void>((resolve) => server.listen(`${uds}_${HOST_PORT}`, resolve));
        return { got };
      },
      callGuest: (message) => udsCall(uds, GUEST_PORT, message),
    });
  });
});

/** How one vsock test reaches the guest: the --vsock value, the host's server (resolves with what it got), the host's call. */
interface VsockHost {
  flag: string;
  serveHost(): Promise<{ got: Promise<string | undefined> }>;
  callGuest(message: string): Promise<string>;
}

/** The guest calls the host's port HOST_PORT, then serves GUEST_PORT for the host's call; each side checks what the other sent. */
async function vsockRoundTrip(t: TestContext, host: VsockHost): Promise<void> {
  const { disk, install } = vsockToolDisk(scratch(t));
  const { got: hostGot } = await host.serveHost();
  const run = startCli(
    ['run', '--vsock', host.flag, '--disk', `${disk},ro`, '--', 'sh', '-c',
      `${install} && ` +
      `echo "GUEST-GOT $(/tmp/vt send 2 ${HOST_PORT} 'ping from the guest')" && /tmp/vt serve ${GUEST_PORT} 'pong from the guest'`],
    { timeoutMs: GUEST_TIMEOUT_MS },
  );
  t.after(() => run.child.kill('SIGKILL'));
  await run.waitFor(/^vsock-tool: listening\s*$/m);
  assert.match(run.output().stdout, /^GUEST-GOT pong from the host\s*$/m, 'guest to host and back');
  assert.equal(await hostGot, 'ping from the guest');
  assert.equal(await host.callGuest('hello from the host'), 'pong from the guest', 'host to guest and back');
  const { status, stdout } = await run.done;
  assert.equal(status, 0);
  assert.match(stdout, /hello from the host/, 'the guest got the host\'s message');
}


/** One line on stderr, status 2, no stack trace, nothing from a guest. */
function assertRefused(r: { status: number | null; stdout: string; stderr: string }, reason: RegExp): void {
  assert.equal(r.status, 2, `status ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^tsvmm: [^\n]*\n$/, 'exactly one line');
  assert.match(r.stderr, reason);
}

describe('a network or vsock the host cannot give is refused before the guest starts', () => {
  /** A raw guest that spins, so a first run holds its tap or CID while a second one tries. */
  const spinner = (t: TestContext) => {
    const path = join(scratch(t), 'spin.bin');
    writeFileSync(path, Buffer.from([0xeb, 0xfe])); // jmp $
    return ['run', '--raw', path, '--mode', 'real', '--load-addr', '0x7c00', '--console', 'none'];
  };

  kvmTest('a tap that does not exist, and one another VM holds', async (t) => {
    const ns = tapNamespace(t);
    const run = spinner(t);
    assertRefused(await runCli([...run, '--net', 'tap=tsvmmnosuch'], { prefix: ns.prefix }), /network tap 'tsvmmnosuch': no such interface \(create it first: ip tuntap add/);
    // --memory-map: printed once the machine is built, the tap open.
    const holder = startCli([...run, '--memory-map', '--net', `tap=${ns.tap}`], { prefix: ns.prefix });
    t.after(() => holder.child.kill('SIGKILL'));
    await holder.waitFor(/guest-physical memory map/, 'stderr');
    assertRefused(await runCli([...run, '--net', `tap=${ns.tap}`], { prefix: ns.prefix }), new RegExp(`network tap '${ns.tap}': in use by another process`));
  });

  kvmTest('a guest CID another VM holds, and a reserved one', async (t) => {
    const run = spinner(t);
    assertRefused(await runCli([...run, '--vsock', 'cid=2']), /--vsock: vsock cid 2: a guest CID is an integer from 3/);
    const cid = 20_000 + (process.pid % 100_000);
    const holder = startCli([...run, '--memory-map', '--vsock', `cid=${cid}`]);
    t.after(() => holder.child.kill('SIGKILL'));
    await holder.waitFor(/guest-physical memory map/, 'stderr');
    assertRefused(await runCli([...run, '--vsock', `cid=${cid}`]), new RegExp(`vsock cid=${cid}: the CID is in use by another VM on this host`));
  });

  kvmTest('a vsock socket path in use, or in a directory that does not exist', async (t) => {
    const run = spinner(t);
    const dir = scratch(t);
    const taken = join(dir, 'taken.sock');
    writeFileSync(taken, '');
    assertRefused(await runCli([...run, '--vsock', `cid=77,uds=${taken}`]), /vsock uds '.*taken\.sock': already in use/);
    assertRefused(await runCli([...run, '--vsock', `cid=77,uds=${join(dir, 'no', 'such', 'v.sock')}`]), /vsock uds '.*v\.sock': its directory does not exist/);
  });
});
