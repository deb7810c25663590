/**
 * `tsvmm jail`: runs tsvmm the way Firecracker's jailer runs Firecracker.
 * As root, step by step, each step checked and named in its error:
 *
 *  1. a chroot, <base>/<id>/root, holding the files the VM needs (hard
 *     links, or copies across file systems), owned by the jail's user;
 *  2. the device nodes tsvmm opens there (/dev/kvm, and /dev/net/tun and
 *     the vhost devices where the host has them), the host's own device
 *     numbers, owned by the jail's user and no one else;
 *  3. a cgroup v2, <cgroup2 mount>/tsvmm/<id>, with the limits asked for
 *     (`memory.max=512M`, `cpu.max=50000 100000`, `pids.max=64`);
 *  4. new mount, PID, IPC and UTS namespaces (util-linux's unshare), and
 *     the network namespace given, if one is (nsenter);
 *  5. in the new mount namespace: /usr (and what /lib is), what Node reads
 *     of tsvmm's package and the node_modules it imports from, bind-mounted read-only,
 *     since Node, unlike Firecracker, is not one static binary; a fresh
 *     /proc of the new PID namespace;
 *  6. chroot, then setpriv: the jail's uid and gid, no supplementary
 *     groups, no capabilities (inheritable, ambient or bounding), and
 *     no_new_privs, before Node starts tsvmm with the arguments given.
 *
 * tsvmm itself then opens /dev/kvm (and a tap, which must belong to the
 * jail's user: `ip tuntap add NAME mode tap user UID`, as Firecracker
 * asks) as that user. The cgroup is removed when the jail ends; the
 * chroot stays, for its files (disk images, sockets).
 */
import { spawn } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mknodChar } from '../kvm/libc.js';

export interface JailConfig {
  id: string;
  uid: number;
  gid: number;
  /** Where jails are made (default /srv/tsvmm). */
  chrootBase: string;
  /** Host files put in the chroot: `to` is the path inside it. */
  files: { from: string; to: string }[];
  /** A network namespace to join (a path such as /var/run/netns/NAME). */
  netns?: string;
  /** cgroup v2 files and the values written to them. */
  cgroup: { file: string; value: string }[];
  /** tsvmm's arguments inside the jail (its paths are the chroot's). */
  args: string[];
}

export class JailError extends Error {
  constructor(step: string, why: string) {
    super(`jail: ${step}: ${why}`);
    this.name = 'JailError';
  }
}

/** Runs `work`; what it throws becomes a JailError naming `step`. */
function step<T>(name: string, work: () => T): T {
  try {
    return work();
  } catch (e) {
    if (e instanceof JailError) throw e;
    throw new JailError(name, (e as Error).message);
  }
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Devices tsvmm may open: /dev/kvm it must have; the others where the host has them. */
const DEVICES = [
  { path: '/dev/kvm', needed: true },
  { path: '/dev/net/tun', needed: false },
  { path: '/dev/vhost-net', needed: false },
  { path: '/dev/vhost-vsock', needed: false },
  { path: '/dev/null', needed: true },
  { path: '/dev/urandom', needed: true },
];
/** tsvmm's package: dist/src/host/jail.js is three levels down. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const CLI = join(PACKAGE_ROOT, 'dist/src/cli/main.js');

/**
 * What of tsvmm's package Node reads. Each is mounted on its own, not the
 * package's directory: that may be one the jail's user cannot enter (a
 * checkout in `mktemp -d`, mode 700), while what npm and tsc write in it
 * is readable by all.
 */
const PACKAGE_ENTRIES = ['package.json', 'dist', 'guests', 'web', 'node_modules'];

/**
 * What Node needs in the jail to run tsvmm: /usr (and /lib, /lib64 where
 * they are directories, not links into /usr), tsvmm's package, and every
 * node_modules its imports may be found in (its own and its ancestors',
 * where npm hoists them), each where its real path is, outermost first.
 */
function systemDirs(): { path: string; link?: string }[] {
  const candidates = ['/usr', '/lib', '/lib64', ...PACKAGE_ENTRIES.map((e) => join(PACKAGE_ROOT, e))];
  for (let dir = PACKAGE_ROOT; dir !== '/'; dir = dirname(dir)) candidates.push(join(dir, 'node_modules'));
  const dirs = new Map<string, string | undefined>();
  for (const d of candidates.filter((c) => existsSync(c))) {
    if (!lstatSync(d).isSymbolicLink()) {
      dirs.set(d, undefined);
      continue;
    }
    // A link is made the same in the jail; what it leads to is mounted where it really is (/lib and /lib64 lead into /usr).
    dirs.set(d, readlinkSync(d));
    if (d !== '/lib' && d !== '/lib64') dirs.set(realpathSync(d), undefined);
  }
  // What lies inside a mounted directory comes with it.
  const mounts = [...dirs].filter(([, link]) => link === undefined).map(([path]) => path);
  return [...dirs]
    .filter(([path]) => !mounts.some((outer) => path.startsWith(`${outer}/`)))
    .sort(([a], [b]) => a.length - b.length)
    .map(([path, link]) => ({ path, link }));
}

const CGROUP_CONTROLLERS = ['cpu', 'memory', 'pids', 'io', 'cpuset'];

/** `s` as one word for sh. */
const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Checks what can be checked before anything is made; throws a JailError. */
export function checkJail(c: JailConfig): void {
  if (!ID.test(c.id)) throw new JailError('--id', `'${c.id}' is not 1 to 64 letters, digits, '-' or '_'`);
  for (const [flag, n] of [['--uid', c.uid], ['--gid', c.gid]] as const) {
    if (!Number.isSafeInteger(n) || n <= 0 || n >= 2 ** 32 - 1) throw new JailError(flag, `${n} is not a user's number: give one above 0 (root is what the jail drops)`);
  }
  if (process.getuid?.() !== 0) throw new JailError('privileges', 'tsvmm jail sets up namespaces, a chroot and a cgroup: run it as root');
  for (const f of c.files) {
    step(`--file ${f.from}`, () => {
      if (!statSync(f.from).isFile()) throw new Error('not a regular file');
    });
    if (!f.to.startsWith('/') || f.to.split('/').includes('..')) throw new JailError(`--file ${f.from}`, `'${f.to}' must be an absolute path inside the jail, without '..'`);
  }
  if (c.netns !== undefined) step(`--netns ${c.netns}`, () => statSync(c.netns!));
  for (const { file } of c.cgroup) {
    if (!/^[a-z]+\.[a-z_.]+$/.test(file) || !CGROUP_CONTROLLERS.includes(file.split('.')[0])) {
      throw new JailError('--cgroup', `'${file}' is not a file of the ${CGROUP_CONTROLLERS.join(', ')} controllers (such as memory.max)`);
    }
  }
  if (c.args.length === 0) throw new JailError('command', 'give the tsvmm command to run in the jail after --, e.g. -- run --kernel /vmlinux');
}

/** Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo. */
function cgroup2Mount(): string {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => / - cgroup2 /.test(l));
  if (line === undefined) throw new Error('no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)');
  return line.split(' ')[4];
}

export interface PreparedJail {
  root: string;
  cgroup: string;
  /** Host directories mounted read-only at the same paths in the jail. */
  binds: string[];
}

/** Steps 1 to 3: the chroot, its devices and files, the cgroup. */
export function prepareJail(c: JailConfig): PreparedJail {
  const dir = join(c.chrootBase, c.id);
  const root = join(dir, 'root');
  step('chroot', () => {
    if (existsSync(dir)) throw new Error(`${dir} exists already (an earlier jail with this id?): remove it or give another --id`);
    mkdirSync(root, { recursive: true, mode: 0o755 });
    for (const d of ['dev/net', 'proc', 'tmp']) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    chownSync(join(root, 'tmp'), c.uid, c.gid);
  });
  for (const device of DEVICES) {
    step(device.path, () => {
      if (!existsSync(device.path)) {
        if (device.needed) throw new Error('this host has no such device');
        return;
      }
      const inJail = join(root, device.path);
      mknodChar(inJail, statSync(device.path).rdev, 0o600);
      chownSync(inJail, c.uid, c.gid);
    });
  }
  for (const f of c.files) {
    step(`--file ${f.from}`, () => {
      const to = join(root, f.to);
      mkdirSync(dirname(to), { recursive: true });
      try {
        linkSync(f.from, to);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
        copyFileSync(f.from, to);
      }
      chownSync(to, c.uid, c.gid);
    });
  }
  // What Node needs to run: /usr read-only, /lib and /lib64 as the host has them (symlinks into /usr, or directories).
  const binds = step('system directories', () => {
    const dirs = systemDirs();
    for (const { path, link } of dirs) {
      const inJail = join(root, path);
      mkdirSync(dirname(inJail), { recursive: true });
      if (link !== undefined) symlinkSync(link, inJail);
      else if (statSync(path).isFile()) writeFileSync(inJail, '');
      else mkdirSync(inJail);
    }
    return dirs.filter((d) => d.link === undefined).map((d) => d.path);
  });
  const cgroup = step('cgroup', () => {
    const mount = cgroup2Mount();
    const parent = join(mount, 'tsvmm');
    mkdirSync(parent, { recursive: true });
    const wanted = [...new Set(c.cgroup.map((g) => g.file.split('.')[0]))];
    const offered = readFileSync(join(mount, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    const missing = wanted.filter((w) => !offered.includes(w));
    if (missing.length > 0) throw new Error(`the ${missing.join(', ')} controller${missing.length > 1 ? 's are' : ' is'} not available in ${mount}`);
    for (const at of [mount, parent]) if (wanted.length > 0) writeFileSync(join(at, 'cgroup.subtree_control'), wanted.map((w) => `+${w}`).join(' '));
    const own = join(parent, c.id);
    mkdirSync(own);
    for (const g of c.cgroup) {
      try {
        writeFileSync(join(own, g.file), g.value);
      } catch (e) {
        throw new Error(`${g.file}=${g.value}: ${(e as NodeJS.ErrnoException).code === 'EINVAL' ? 'the kernel refused the value' : (e as Error).message}`);
      }
    }
    return own;
  });
  return { root, cgroup, binds };
}

/** Steps 4 to 6, as the sh command line that does them: into the cgroup, the namespaces, the mounts, chroot and setpriv. */
export function jailCommandLine(c: JailConfig, jail: PreparedJail): string {
  const { root } = jail;
  const binds = jail.binds.map((d) => `mount --bind -o ro ${q(d)} ${q(join(root, d))}`);
  const node = resolve(process.execPath);
  const inside = [
    'set -e',
    ...binds,
    `mount -t proc -o nosuid,nodev,noexec proc ${q(join(root, 'proc'))}`,
    `exec chroot ${q(root)} /usr/bin/setpriv --reuid=${c.uid} --regid=${c.gid} --clear-groups --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs -- ${[node, CLI, ...c.args].map(q).join(' ')}`,
  ].join('\n');
  const joinNetns = c.netns === undefined ? '' : `nsenter --net=${q(c.netns)} `;
  return `echo $$ > ${q(join(jail.cgroup, 'cgroup.procs'))} && exec ${joinNetns}unshare --mount --pid --ipc --uts --fork --kill-child -- /bin/sh -c ${q(inside)}`;
}

/** Signals every process in the jail's cgroup. */
function signalJail(jail: PreparedJail, signal: NodeJS.Signals): void {
  for (const pid of readFileSync(join(jail.cgroup, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), signal);
    } catch {
      // already gone
    }
  }
}

/** Sets the jail up, runs tsvmm in it with this process's stdio, and returns its exit status. */
export async function runJail(c: JailConfig): Promise<number> {
  checkJail(c);
  const jail = prepareJail(c);
  const child = spawn('/bin/sh', ['-c', jailCommandLine(c, jail)], {
    stdio: 'inherit',
    env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', HOME: '/tmp', TSVMM_CACHE_DIR: '/tmp/tsvmm-cache', ...(process.env.TERM && { TERM: process.env.TERM }) },
  });
  const forward = (signal: NodeJS.Signals) => () => signalJail(jail, signal);
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const status = await new Promise<number>((done, fail) => {
    child.on('error', (e) => fail(new JailError('start', e.message)));
    child.on('close', (code, signal) => done(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  }).finally(() => {
    for (const [s, h] of handlers) process.off(s, h);
  });
  step('cgroup removal', () => rmdirSync(jail.cgroup));
  return status;
}
