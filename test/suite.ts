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
 * The rig has no network: the default guest is built on the host first,
 * into the cache the rig shares.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDefaultGuest } from '../src/guest/default-guest.js';
import { stderrProgress } from '../src/guest/progress.js';
import { hostBackend } from '../src/host/backend-kind.js';
import { BACKEND_SPECIFIC_SCOPE, kvmUnavailableReason } from './helpers/kvm.js';
import { ensureRigMachine, rigUnavailableReason, runInRig } from './rig/rig.js';

/** The rig's whole run of end-to-end tests must end within this, or it is stopped with a report. */
const RIG_TIMEOUT_MS = 35 * 60_000;

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
  status: number | undefined;
}

const nodeTestArgs = (files: string[]) => ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files];

/** The runner's closing counts ("ℹ pass 12"), read from its output. */
function countsOf(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [, name, n] of output.matchAll(/^[ℹ#] (tests|pass|fail|cancelled|skipped|todo) (\d+)\s*$/gmu)) counts.set(name, Number(n));
  return counts;
}

const banner = (text: string) => process.stdout.write(`\n=== ${text} ===\n\n`);

async function onHost(where: string, files: string[], env: Record<string, string> = {}): Promise<Part> {
  banner(where);
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

async function inRig(where: string, files: string[]): Promise<Part> {
  banner(where);
  const started = performance.now();
  const progress = stderrProgress();
  const unavailable = rigUnavailableReason();
  if (unavailable) return { where, counts: new Map(), seconds: 0, status: undefined, failure: unavailable };
  try {
    // The rig has no network: what the tests boot is built here, into the cache it shares.
    await ensureDefaultGuest({ progress });
    await ensureRigMachine(progress);
  } catch (e) {
    progress.clear();
    return { where, counts: new Map(), seconds: 0, status: undefined, failure: `cannot build what the rig needs: ${e instanceof Error ? e.message : String(e)}` };
  }
  let output = '';
  const result = await runInRig({
    argv: [process.execPath, ...nodeTestArgs(files)],
    env: { TSVMM_TEST_PLACE: 'rig' },
    timeoutMs: RIG_TIMEOUT_MS,
    output: (chunk) => {
      output += chunk.toString('utf8');
      process.stdout.write(chunk);
    },
  });
  process.stdout.write(`\nrig: booted in ${((result.bootMs ?? 0) / 1000).toFixed(1)} s; ${(result.totalMs / 1000).toFixed(0)} s in all\n`);
  return { where, counts: countsOf(output), seconds: (performance.now() - started) / 1000, status: result.status, failure: result.failure };
}

function summarize(parts: Part[]): number {
  const columns = ['tests', 'pass', 'fail', 'skipped'] as const;
  const width = Math.max(...parts.map((p) => p.where.length));
  process.stdout.write(`\n${'where'.padEnd(width)}  ${columns.map((c) => c.padStart(7)).join('')}  seconds\n`);
  for (const p of parts) process.stdout.write(`${p.where.padEnd(width)}  ${columns.map((c) => String(p.counts.get(c) ?? 0).padStart(7)).join('')}  ${p.seconds.toFixed(0).padStart(7)}\n`);
  let failed = false;
  for (const p of parts) {
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
  parts.push(await onHost('host: unit and integration tests', hostFiles));
  parts.push(await onHost(`host: end-to-end tests (TSVMM_SKIP_KVM_TESTS=1${noKvm ? `: ${noKvm}, so those that need KVM skip` : ''})`, e2eFiles));
} else if (!noKvm && backend.kind === 'hardware') {
  parts.push(await onHost(`host: unit, integration and end-to-end tests (hardware KVM, ${backend.module})`, [...hostFiles, ...e2eFiles]));
} else {
  parts.push(await onHost('host: unit and integration tests', hostFiles));
  if (!noKvm) {
    parts.push(await onHost(`host: end-to-end tests about this host's ${backend.kind} backend (${backend.module})`, e2eFiles, { TSVMM_E2E_SCOPE: BACKEND_SPECIFIC_SCOPE }));
  }
  const why = noKvm ?? `${backend.module} is a ${backend.kind} backend`;
  parts.push(await inRig(`rig: end-to-end tests on kvm_amd under QEMU's emulated AMD-V (here ${why})`, e2eFiles));
}
process.exitCode = summarize(parts);
