/**
 * The test rig: a QEMU machine whose CPU, emulated by TCG, has AMD-V
 * (`-cpu EPYC,+svm,+npt`), so that the kernel inside loads kvm_amd and has
 * a hardware-style /dev/kvm on any host, even one with no KVM at all. The
 * host's root is shared into it over virtio-9p, so this checkout, Node and
 * the guest cache are there at the same paths; a job runs as root in the
 * current directory, its output streamed back and its exit status returned.
 *
 * Every instruction is translated: the rig is for correctness, never for
 * timing. Every run is bounded: past its time limit QEMU is killed and the
 * report says what the rig's kernel said last (a soft lockup makes that
 * kernel panic, so a vCPU stuck in KVM_RUN ends the run at once, with the
 * stuck task's stack in the report).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../../src/guest/guest-cache.js';
import { ensureGuest, type BuiltGuest } from '../../src/guest/initramfs-guest.js';
import type { Progress } from '../../src/guest/progress.js';
import { JOB_TAG, RIG_MACHINE, RIG_TMPDIR, ROOT_TAG } from './rig-machine.js';

export const QEMU = 'qemu-system-x86_64';
/** The rig's RAM: room for the largest guest a test boots, with the tests' own processes beside it. */
export const RIG_MEMORY_GIB = 8;


export class RigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RigError';
  }
}

export interface RigJob {
  argv: string[];
  /** Defaults to process.cwd(). */
  cwd?: string;
  /** Set in the job's environment, besides PATH, HOME and the tsvmm cache variables, which are the host's. */
  env?: Record<string, string>;
  timeoutMs: number;
  /** The job's stdout and stderr, as they arrive. */
  output: (chunk: Buffer) => void;
  /** A TCP port of the host's loopback that reaches `guestPort` in the rig. */
  forward?: { hostPort: number; guestPort: number };
  progress?: Progress;
  /** The rig's CPUs (default 1: see below); 2 for a benchmark whose VMM threads must not share one CPU. */
  cpus?: number;
  /**
   * Called before the rig boots with the host's path of the job's directory
   * (RIG_JOB_DIR in the rig, not cached there), for a caller that hands the
   * job more work while it runs.
   */
  jobDir?: (path: string) => void;
}

export interface RigResult {
  /** The job's exit status; undefined when it did not finish. */
  status?: number;
  /** Why the job did not finish, with the rig kernel's last words. */
  failure?: string;
  /** Milliseconds from QEMU's start to the job's start and to the end. */
  bootMs?: number;
  totalMs: number;
}

/** Why the rig cannot run here, in one line that says what to install; undefined when it can. */
export function rigUnavailableReason(): string | undefined {
  const probe = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  if (probe.error) return `the test rig needs ${QEMU}: install it with \`apt-get install qemu-system-x86\``;
  return undefined;
}

/** `s` as one word for sh: single-quoted, each ' closed, escaped and reopened. */
export const shellQuote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

/** Variables the job inherits from the host: where things are and where the caches live. */
const INHERITED = ['PATH', 'HOME', 'TSVMM_CACHE_DIR', 'XDG_CACHE_HOME', 'TERM', 'CI'];

function jobScript(job: RigJob): string {
  const env: Record<string, string> = {};
  for (const name of INHERITED) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  env.TMPDIR = RIG_TMPDIR;
  Object.assign(env, job.env);
  return [
    ...Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    `cd ${shellQuote(job.cwd ?? process.cwd())} || exit 125`,
    `exec ${job.argv.map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
}

/** The last `lines` lines of a file, or '' when it is missing. */
function tail(path: string, lines: number): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'latin1').replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '').split(/\r?\n/).filter((l) => l.trim() !== '').slice(-lines).join('\n');
}

/** Follows a file that another process creates and appends to: `created` once it exists, then new bytes to `sink`. */
function follower(path: string, created: () => void, sink: (chunk: Buffer) => void): () => void {
  let offset = 0;
  let exists = false;
  const buffer = Buffer.alloc(1 << 16);
  return () => {
    if (!exists) {
      if (!existsSync(path)) return;
      exists = true;
      created();
    }
    const fd = openSync(path, 'r');
    try {
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, offset);
        if (n <= 0) break;
        offset += n;
        sink(Buffer.from(buffer.subarray(0, n)));
      }
    } finally {
      closeSync(fd);
    }
  };
}

export const ensureRigMachine = (progress?: Progress): Promise<BuiltGuest> => ensureGuest(RIG_MACHINE, { progress });

/** Boots the rig, runs `job` in it and powers it off. */
export async function runInRig(job: RigJob): Promise<RigResult> {
  const unavailable = rigUnavailableReason();
  if (unavailable) throw new RigError(unavailable);
  const machine = await ensureRigMachine(job.progress);

  const jobsDir = join(cacheRoot(), 'test-rig-jobs');
  mkdirSync(jobsDir, { recursive: true });
  const dir = mkdtempSync(join(jobsDir, 'job-'));
  writeFileSync(join(dir, 'job.sh'), jobScript(job));
  job.jobDir?.(dir);
  const consoleLog = join(dir, 'console.log');
  const started = performance.now();
  const qemu = spawn(
    QEMU,
    [
      '-accel', 'tcg',
      '-machine', 'q35',
      '-cpu', 'EPYC,+svm,+npt',
      // One CPU: with two, the rig's kernel died in 3 of 12 runs that booted Linux (a soft lockup waiting on
      // an IPI in kvm_destroy_vm; a page-fault loop at kernel entry); with one, in none of 9 (docs/testing.md).
      '-smp', String(job.cpus ?? 1),
      '-m', `${RIG_MEMORY_GIB}G`,
      '-nodefaults', '-nographic', '-no-reboot',
      '-serial', `file:${consoleLog}`,
      '-kernel', machine.kernel,
      '-initrd', machine.initrd,
      // A soft lockup panics the rig's kernel, and a panic ends QEMU (-no-reboot): a hang becomes a report.
      // watchdog_thresh=60 (a lockup after 120 s, not 20): TCG's clock is the host's, and a busy host
      // stalled the rig's one CPU for 22 s under a user-mode process (a false lockup, measured).
      '-append', 'console=ttyS0 panic=-1 softlockup_panic=1 watchdog_thresh=60',
      '-virtfs', `local,path=/,mount_tag=${ROOT_TAG},security_model=none,multidevs=remap`,
      '-virtfs', `local,path=${dir},mount_tag=${JOB_TAG},security_model=none`,
      '-netdev', `user,id=net0${job.forward ? `,hostfwd=tcp:127.0.0.1:${job.forward.hostPort}-:${job.forward.guestPort}` : ''}`,
      '-device', 'virtio-net-pci,netdev=net0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let qemuErrors = '';
  qemu.stderr.on('data', (d) => (qemuErrors += d));

  let bootMs: number | undefined;
  // /init creates the output file as it starts the job: the rig has booted.
  const follow = follower(join(dir, 'output'), () => (bootMs ??= performance.now() - started), job.output);
  const poll = setInterval(follow, 100);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    qemu.kill('SIGKILL');
  }, job.timeoutMs);
  const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
    qemu.on('error', (error) => resolve({ code: null, error }));
    qemu.on('close', (code) => resolve({ code }));
  });
  clearInterval(poll);
  clearTimeout(timer);
  follow();
  const totalMs = performance.now() - started;

  const statusFile = join(dir, 'status');
  const status = existsSync(statusFile) ? Number(readFileSync(statusFile, 'utf8').trim()) : undefined;
  let failure: string | undefined;
  if (status === undefined) {
    const why = timedOut
      ? `the job did not finish in ${Math.round(job.timeoutMs / 1000)} s; QEMU was killed`
      : exit.error
        ? `${QEMU} could not start: ${exit.error.message}`
        : `the rig stopped before the job finished (QEMU status ${exit.code}${qemuErrors.trim() ? `: ${qemuErrors.trim().split('\n').at(-1)}` : ''})`;
    const said = tail(consoleLog, 40);
    failure = `${why}.${said ? `\nThe rig's console, last lines:\n${said}` : ''}\n(kept in ${dir})`;
  } else {
    rmSync(dir, { recursive: true, force: true });
  }
  return { status, failure, bootMs, totalMs };
}

/** Whether `path` is a file of at least one byte: a cheap check that a cached part is there. */
