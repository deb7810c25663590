/**
 * `tsvmm jail`, as root: a guest runs in the jail from a file linked into
 * it; a running jailed tsvmm is looked at from outside (/proc): its user,
 * its capabilities, no_new_privs, its root, its namespaces, its cgroup and
 * the limit written there; SIGTERM stops it in order and the cgroup goes.
 * Bad input, and a step the host refuses, end in one line naming the step.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { runCli, startCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const UID = 4242;
let jails = 0;

/** A chroot base of the test's own, and a fresh jail id. */
function jailPlace(t: TestContext): { base: string; id: string; flags: string[] } {
  const base = mkdtempSync(join(tmpdir(), 'tsvmm-jail-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const id = `test-${process.pid}-${jails++}`;
  return { base, id, flags: ['jail', '--id', id, '--uid', String(UID), '--gid', String(UID), '--chroot-base', base] };
}

/** Where cgroup v2 is mounted, as the jail finds it. */
function cgroup2(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => / - cgroup2 /.test(l))!.split(' ')[4];
}

/** The jailed Node process: the one in the jail's cgroup running Node (the other is unshare, waiting for it). */
async function jailedNode(cgroup: string): Promise<number> {
  for (let i = 0; i < 1200; i++) {
    if (existsSync(join(cgroup, 'cgroup.procs'))) {
      for (const pid of readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean)) {
        try {
          // Its exe link is in the jail's mount namespace, not ours: the command line tells.
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === process.execPath) return Number(pid);
        } catch {
          // gone, or not yet exec'd
        }
      }
    }
    await sleep(100);
  }
  throw new Error(`no Node process appeared in ${cgroup}`);
}

const statusField = (pid: number, name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1].trim();

kvmTest('a raw guest runs in a jail from a file linked into it; its output and status are tsvmm\'s', async (t) => {
  const { flags } = jailPlace(t);
  const image = guestFile('long-hello.s', { address: 0x100000 });
  const r = await runCli([...flags, '--file', `${image}:/guest/hello.bin`, '--', 'run', '--raw', '/guest/hello.bin', '--mode', 'long', '--load-addr', '0x100000'], { timeoutMs: 120_000 });
  assert.deepEqual({ stdout: r.stdout, status: r.status }, { stdout: 'hello from long mode\n', status: (0x2a << 1) | 1 }, r.stderr);
});

kvmTest('the jailed tsvmm: its own user, no capabilities, no_new_privs, the chroot, new namespaces, its cgroup and limits; SIGTERM stops it in order', async (t) => {
  const { base, id, flags } = jailPlace(t);
  const run = startCli([...flags, '--cgroup', 'memory.max=1G', '--cgroup', 'pids.max=200', '--', 'demo', '--rounds', '1000000000', '--console', 'none'], { timeoutMs: 300_000 });
  t.after(() => run.child.kill('SIGKILL'));
  const cgroup = join(cgroup2(), 'tsvmm', id);
  const pid = await jailedNode(cgroup);
  await run.waitFor(/tsvmm demo: running/, 'stderr');
  assert.deepEqual(statusField(pid, 'Uid').split(/\s+/), Array(4).fill(String(UID)), 'real, effective, saved and filesystem uid');
  assert.deepEqual(statusField(pid, 'Gid').split(/\s+/), Array(4).fill(String(UID)));
  assert.equal(statusField(pid, 'Groups'), '', 'no supplementary groups');
  for (const caps of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(statusField(pid, caps), '0000000000000000', caps);
  assert.equal(statusField(pid, 'NoNewPrivs'), '1');
  assert.equal(statusField(pid, 'NSpid').split(/\s+/).at(-1), '1', 'PID 1 of its own PID namespace');
  // Read from another mount namespace, the link is the chroot's path from the system's root (the rig's job runs in a chroot itself).
  const root = readlinkSync(`/proc/${pid}/root`);
  assert.ok(root.endsWith(join(base, id, 'root')), root);
  for (const ns of ['mnt', 'pid', 'ipc', 'uts']) assert.notEqual(readlinkSync(`/proc/${pid}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `its own ${ns} namespace`);
  assert.equal(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'the host\'s network: no --netns was given');
  assert.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^0::/tsvmm/${id}$`, 'm'));
  assert.equal(readFileSync(join(cgroup, 'memory.max'), 'utf8').trim(), String(1 << 30));
  assert.equal(readFileSync(join(cgroup, 'pids.max'), 'utf8').trim(), '200');
  // What the jail holds: the device nodes tsvmm opens, its user's alone, and no files of the host's.
  const dev = join(base, id, 'root', 'dev');
  assert.ok(existsSync(join(dev, 'kvm')));
  assert.ok(!existsSync(join(base, id, 'root', 'etc')), 'no /etc: only what the VM and Node need');
  run.child.kill('SIGTERM');
  const { status, stderr } = await run.done;
  assert.equal(status, 143, `stopped in order by SIGTERM: ${stderr}`);
  assert.ok(!existsSync(cgroup), 'the cgroup is removed');
});

kvmTest('a limit the kernel refuses, and a jail id already used: one line each, naming the step', async (t) => {
  const { flags, base, id } = jailPlace(t);
  const refused = await runCli([...flags, '--cgroup', 'memory.max=lots', '--', 'demo']);
  assert.deepEqual([refused.status, refused.stdout], [2, '']);
  assert.match(refused.stderr, /^tsvmm: jail: cgroup: memory\.max=lots: the kernel refused the value\n$/);
  rmSync(join(cgroup2(), 'tsvmm', id), { recursive: true, force: true });
  mkdirSync(join(base, 'taken'));
  const taken = await runCli(['jail', '--id', 'taken', '--uid', String(UID), '--gid', String(UID), '--chroot-base', base, '--', 'demo']);
  assert.match(taken.stderr, /^tsvmm: jail: chroot: .*taken exists already \(an earlier jail with this id\?\): remove it or give another --id\n$/);
  assert.equal(taken.status, 2);
});

test('bad jail flags are refused in one line before anything is made', async (t) => {
  const { base, flags } = jailPlace(t);
  const cases: [string[], RegExp][] = [
    [['jail', '--id', 'x', '--uid', '0', '--gid', '5', '--chroot-base', base, '--', 'demo'], /^tsvmm: jail: --uid: 0 is not a user's number: give one above 0 \(root is what the jail drops\)$/],
    [['jail', '--id', 'a/b', '--uid', '5', '--gid', '5', '--chroot-base', base, '--', 'demo'], /^tsvmm: jail: --id: 'a\/b' is not 1 to 64 letters, digits, '-' or '_'$/],
    [[...flags, '--file', '/no/such/kernel', '--', 'demo'], /^tsvmm: jail: --file \/no\/such\/kernel: ENOENT/],
    [[...flags, '--file', '/etc/hostname:../x', '--', 'demo'], /^tsvmm: jail: --file \/etc\/hostname: '\.\.\/x' must be an absolute path inside the jail/],
    [[...flags, '--cgroup', 'devices.allow=a', '--', 'demo'], /^tsvmm: jail: --cgroup: 'devices\.allow' is not a file of the cpu, memory, pids, io, cpuset controllers/],
    [[...flags, '--cgroup', 'memory.max', '--', 'demo'], /^tsvmm: --cgroup: 'memory\.max' is not FILE=VALUE/],
    [['jail', '--id', 'x', '--uid', 'me', '--gid', '5', '--', 'demo'], /^tsvmm: --uid: 'me' is not a number$/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.deepEqual([r.status, r.stdout], [2, ''], args.join(' '));
    assert.match(r.stderr.trimEnd(), message);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  }
  assert.deepEqual(readdirSync(base), [], 'nothing was made');
});
