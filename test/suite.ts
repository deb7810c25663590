/**
 * `npm test`: every test, each where it can run, and one summary.
 *
 * - Unit and integration tests run on the host: they need no KVM.
 * - End-to-end tests need KVM. On a host with hardware KVM they run on it.
 *   Elsewhere (no /dev/kvm, or a software backend such as kvm_pvm that
 *   cannot run guest user space) they run in the test rig (test/rig), in
 *   one boot, and on a software backend the tests about that backend (see
 *   test/helpers/kvm.ts) also run on the host.
 * - TSVMM_SKIP_KVM_TESTS=1 runs the end-to-end tests on the host, where
 *   those that need KVM skip, each saying so.
 *
 * The rig reaches no network but the host: the default guest is built on
 * the host first, into the cache the rig shares, and the web console's
 * tests in the rig use a browser on the host (test/helpers/browser.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDefaultGuest } from '../src/guest/default-guest.js';
import { stderrProgress } from '../src/guest/progress.js';
import { hostBackend } from '../src/host/backend-kind.js';
import { BACKEND_SPECIFIC_SCOPE, kvmUnavailableReason } from './helpers/kvm.js';
import { ensureRigMachine, RIG_MEMORY_GIB, rigUnavailableReason } from './rig/rig.js';
import { runInLanes } from './rig/rig-lanes.js';
import { CHROMIUM, startBrowserService } from './helpers/browser.js';

/** The rig's whole run of end-to-end tests must end within this, or it is stopped with a report. */
const RIG_TIMEOUT_MS = 60 * 60_000;
/** How many rig boots may die, in all, before the test files left are given up. */
const RIG_RETRIES = 2;

const dist = fileURLToPath(new URL('.', import.meta.url));
const testFiles = (dir: string): string[] =>
  readdirSync(join(dist, dir))
    .filter((f) => f.endsWith('.test.js'))
    .sort()
    .map((f) => join(dist, dir, f));

interface Part {
  where: string;
  counts: Map<string, number>;
  seconds: number;
  /** Why the part did not finish, when it did not. */
  failure?: string;
  /** What went wrong on the way and was made up for. */
  notes?: string[];
  status: number | undefined;
}

const nodeTestArgs = (files: string[]) => ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files];

/** The runner's closing counts ("ℹ pass 12"), added up over every run in the output. */
function countsOf(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [, name, n] of output.matchAll(/^[ℹ#] (tests|pass|fail|cancelled|skipped|todo) (\d+)\s*$/gmu)) counts.set(name, (counts.get(name) ?? 0) + Number(n));
  return counts;
}

const banner = (text: string) => process.stdout.write(`\n=== ${text} ===\n\n`);

async function onHost(where: string, about: string, files: string[], env: Record<string, string> = {}): Promise<Part> {
  banner(`${where}: ${about}`);
  const started = performance.now();
  let output = '';
  const child = spawn(process.execPath, nodeTestArgs(files), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString('utf8');
    process.stdout.write(d);
  });
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { where, counts: countsOf(output), seconds: (performance.now() - started) / 1000, status: status ?? undefined };
}

/**
 * The rig's longest files, longest first (measured: docs/testing.md): they
 * start first, so that the lanes end close together. The rest follow in
 * name order.
 */
const LONGEST_FIRST = ['linux-virtio', 'linux-snapshot', 'lifecycle', 'web-console', 'firecracker-api', 'emulator-vs-cpu', 'snapshot'];

function longestFirst(files: string[]): string[] {
  const rank = (f: string) => {
    const i = LONGEST_FIRST.indexOf(basename(f, '.test.js'));
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/**
 * How many rigs run side by side: one a core, each with its RAM and some to
 * spare (a rig's RAM is touched only as its guests use it: a full run peaks
 * far below it).
 */
function rigLanes(): number {
  const byMemory = Math.floor(totalmem() / ((RIG_MEMORY_GIB + 2) * 2 ** 30));
  return Math.max(1, Math.min(availableParallelism(), byMemory));
}

async function inRig(where: string, about: string, files: string[]): Promise<Part> {
  const lanes = rigLanes();
  banner(`${where}: ${about}; ${lanes} rig${lanes === 1 ? '' : 's'} side by side`);
  const started = performance.now();
  const progress = stderrProgress();
  const part: Part = { where, counts: new Map(), seconds: 0, status: undefined };
  const unavailable = rigUnavailableReason();
  if (unavailable) return { ...part, failure: unavailable };
  try {
    // The rig has no network: what the tests boot is built here, into the cache it shares.
    await ensureDefaultGuest({ progress });
    await ensureRigMachine(progress);
  } catch (e) {
    progress.clear();
    return { ...part, failure: `cannot build what the rig needs: ${e instanceof Error ? e.message : String(e)}` };
  }
  // Without chromium the browser tests fail, saying what to install.
  const browser = existsSync(CHROMIUM) ? await startBrowserService() : undefined;
  const run = await runInLanes({
    files: longestFirst(files),
    lanes,
    retries: RIG_RETRIES,
    timeoutMs: RIG_TIMEOUT_MS,
    command: [process.execPath, ...nodeTestArgs([])],
    env: { TSVMM_TEST_PLACE: 'rig' },
    forLane: browser?.forRig,
    print: (text) => process.stdout.write(text),
  });
  await browser?.server.close();
  const boots = run.bootSeconds.map((s) => s.toFixed(1)).join(', ');
  const perFile = [...run.results].sort((a, b) => b.seconds - a.seconds).map((r) => `${basename(r.file, '.test.js')} ${r.seconds.toFixed(0)}`);
  process.stdout.write(`\nrig: ${run.bootSeconds.length} boots (to the job in ${boots} s); per file, in seconds: ${perFile.join(', ')}\n`);
  const failures = [...run.failures];
  if (run.unfinished.length > 0) failures.push(`${run.unfinished.length} test files never finished: ${run.unfinished.join(', ')}`);
  return {
    where,
    counts: countsOf(run.output),
    seconds: (performance.now() - started) / 1000,
    status: Math.max(0, ...run.results.map((r) => r.status)),
    // Rig boots that died and were made up for by a later one are reported, but fail nothing.
    failure: run.unfinished.length > 0 ? failures.join('\n') : undefined,
    notes: run.unfinished.length > 0 ? [] : failures,
  };
}

function summarize(parts: Part[]): number {
  const columns = ['tests', 'pass', 'fail', 'skipped'] as const;
  process.stdout.write(`\n${'='.repeat(20)} summary ${'='.repeat(20)}\n`);
  const width = Math.max(...parts.map((p) => p.where.length));
  process.stdout.write(`\n${'where'.padEnd(width)}${columns.map((c) => c.padStart(8)).join('')}  seconds\n`);
  for (const p of parts) process.stdout.write(`${p.where.padEnd(width)}${columns.map((c) => String(p.counts.get(c) ?? 0).padStart(8)).join('')}  ${p.seconds.toFixed(0).padStart(7)}\n`);
  let failed = false;
  for (const p of parts) {
    for (const note of p.notes ?? []) process.stdout.write(`\n${p.where}: made up for by a later rig boot: ${note.split('\n')[0]}\n`);
    if (p.failure) process.stdout.write(`\n${p.where}: did not finish: ${p.failure}\n`);
    if (p.failure || p.status !== 0) failed = true;
  }
  const total = (name: string) => parts.reduce((sum, p) => sum + (p.counts.get(name) ?? 0), 0);
  const fail = total('fail') + total('cancelled') + (failed && total('fail') === 0 ? 1 : 0);
  process.stdout.write(`\nsuite: ${total('pass')} passed, ${fail} failed, ${total('skipped')} skipped\n`);
  return failed ? 1 : 0;
}

const hostFiles = [...testFiles('unit'), ...testFiles('integration')];
const e2eFiles = testFiles('e2e');
const noKvm = kvmUnavailableReason();
const backend = hostBackend();
const parts: Part[] = [];

if (process.env.TSVMM_SKIP_KVM_TESTS === '1') {
  parts.push(await onHost('host', 'unit and integration tests', hostFiles));
  parts.push(await onHost('host, e2e', `end-to-end tests with TSVMM_SKIP_KVM_TESTS=1${noKvm ? ` (${noKvm}: those that need KVM skip)` : ''}`, e2eFiles));
} else if (!noKvm && backend.kind === 'hardware') {
  parts.push(await onHost('host', `unit, integration and end-to-end tests on hardware KVM (${backend.module})`, [...hostFiles, ...e2eFiles]));
} else {
  parts.push(await onHost('host', 'unit and integration tests', hostFiles));
  if (!noKvm) {
    parts.push(await onHost(`host, ${backend.module}`, `the end-to-end tests about this host's ${backend.kind} backend (${backend.module})`, e2eFiles, { TSVMM_E2E_SCOPE: BACKEND_SPECIFIC_SCOPE }));
  }
  const why = noKvm ?? `${backend.module} is a ${backend.kind} backend`;
  parts.push(await inRig('rig', `end-to-end tests on kvm_amd under QEMU's emulated AMD-V (this host: ${why})`, e2eFiles));
}
process.exitCode = summarize(parts);
