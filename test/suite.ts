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
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDefaultGuest } from '../src/guest/default-guest.js';
import { stderrProgress } from '../src/guest/progress.js';
import { hostBackend } from '../src/host/backend-kind.js';
import { BACKEND_SPECIFIC_SCOPE, kvmUnavailableReason } from './helpers/kvm.js';
import { ensureRigMachine, rigUnavailableReason, runInRig, shellQuote } from './rig/rig.js';
import { CHROMIUM, startBrowserService } from './helpers/browser.js';

/** The rig's whole run of end-to-end tests must end within this, or it is stopped with a report. */
const RIG_TIMEOUT_MS = 60 * 60_000;
/** How many times the rig is booted at most, when its own kernel dies before the tests are done. */
const RIG_BOOTS = 3;

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

/** What the rig's job prints after each test file: the file and the runner's status. */
const FILE_DONE = /^rig-suite: done (\S+) status=(\d+)$/gm;

/**
 * The rig's job: each test file in a runner of its own, and a line after
 * each, so that the files a crashed rig did not finish are known.
 */
function rigScript(files: string[]): string {
  const node = shellQuote(process.execPath);
  return files.map((f) => `${node} ${nodeTestArgs([f]).map(shellQuote).join(' ')}; echo "rig-suite: done ${f} status=$?"`).join('\n');
}

async function inRig(where: string, about: string, files: string[]): Promise<Part> {
  banner(`${where}: ${about}`);
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
  // A rig whose own kernel dies (emulated AMD-V is not flawless: see docs/testing.md) is booted
  // again for the files it did not finish, a few times at most and within one time budget.
  let remaining = files;
  let output = '';
  const failures: string[] = [];
  const statuses: number[] = [];
  // Without chromium the browser tests fail, saying what to install.
  const browser = existsSync(CHROMIUM) ? await startBrowserService() : undefined;
  for (let boot = 1; remaining.length > 0 && boot <= RIG_BOOTS; boot++) {
    const budget = RIG_TIMEOUT_MS - (performance.now() - started);
    if (budget <= 0) break;
    let bootOutput = '';
    const result = await runInRig({
      argv: ['/bin/sh', '-c', rigScript(remaining)],
      env: { TSVMM_TEST_PLACE: 'rig', ...browser?.env },
      forward: browser?.forward,
      timeoutMs: budget,
      output: (chunk) => {
        bootOutput += chunk.toString('utf8');
        process.stdout.write(chunk);
      },
    });
    output += bootOutput;
    const done = new Set<string>();
    for (const [, file, status] of bootOutput.matchAll(FILE_DONE)) {
      done.add(file);
      statuses.push(Number(status));
    }
    remaining = remaining.filter((f) => !done.has(f));
    process.stdout.write(`\nrig boot ${boot}: booted in ${((result.bootMs ?? 0) / 1000).toFixed(1)} s; ${(result.totalMs / 1000).toFixed(0)} s in all; ${done.size} test files done\n`);
    if (result.failure) {
      failures.push(`boot ${boot}: ${result.failure}`);
      process.stdout.write(`\nrig boot ${boot} did not finish: ${result.failure}\n`);
      if (remaining.length > 0 && boot < RIG_BOOTS) process.stdout.write(`\nrig: booting a fresh rig for the ${remaining.length} test files left, from ${remaining[0]}\n\n`);
    }
  }
  await browser?.server.close();
  if (remaining.length > 0) failures.push(`${remaining.length} test files never finished: ${remaining.join(', ')}`);
  return {
    where,
    counts: countsOf(output),
    seconds: (performance.now() - started) / 1000,
    status: Math.max(0, ...statuses),
    // Rig boots that died and were made up for by a later one are reported, but fail nothing.
    failure: remaining.length > 0 ? failures.join('\n') : undefined,
    notes: remaining.length > 0 ? [] : failures,
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
