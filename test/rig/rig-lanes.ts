/**
 * Test files run in several rigs side by side ("lanes"), each rig on a
 * core of its own, all fed from one queue: a rig's job asks for its next
 * file through its job directory, and the host hands out the next one in
 * the queue as each file ends, so that the rigs end close together.
 *
 * A rig whose own kernel dies (emulated AMD-V is not flawless: see
 * docs/testing.md) puts the file it was running back at the head of the
 * queue and is booted again, a few times at most in all and within one
 * time budget.
 *
 * Each file's output is printed whole when the file ends, under a line
 * naming its rig, so that the lanes' outputs do not interleave.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { RIG_JOB_DIR } from './rig-machine.js';
import { runInRig, shellQuote } from './rig.js';

export interface LaneOptions {
  files: string[];
  lanes: number;
  /** How many rig boots may die, in all, before the files left are given up. */
  retries: number;
  timeoutMs: number;
  /** The command line that runs one test file, without the file. */
  command: string[];
  env: Record<string, string>;
  /** What the rig of a lane needs besides `env`, set up once a lane (a port forward of its own). */
  forLane?: () => Promise<{ env: Record<string, string>; forward: { hostPort: number; guestPort: number } }>;
  print: (text: string) => void;
}

export interface FileResult {
  file: string;
  status: number;
  seconds: number;
}

export interface LanesResult {
  /** Every file's output, as the runner printed it. */
  output: string;
  results: FileResult[];
  /** Rig boots that died, each with the rig's last words. */
  failures: string[];
  /** Files that were never finished. */
  unfinished: string[];
  bootSeconds: number[];
}

/** What the job prints after each file: the file, the runner's status and the seconds it took in the rig. */
const FILE_DONE = /^rig-suite: done (\S+) status=(\d+) seconds=(\d+)\n/m;

/**
 * The job of every lane's rig: wait for the file `next.<i>` in the job
 * directory, run the test file it names, say so, and ask for the next;
 * an empty name ends the job.
 */
function laneScript(command: string[]): string {
  const next = `${RIG_JOB_DIR}/next.$i`;
  return [
    'i=0',
    'while :; do',
    `  while [ ! -e ${next} ]; do sleep 0.2; done`,
    `  f=$(cat ${next})`,
    '  [ -n "$f" ] || exit 0',
    '  s=$(date +%s)',
    `  ${command.map(shellQuote).join(' ')} "$f"`,
    '  echo "rig-suite: done $f status=$? seconds=$(($(date +%s) - s))"',
    '  i=$((i+1))',
    'done',
  ].join('\n');
}

export async function runInLanes(options: LaneOptions): Promise<LanesResult> {
  const started = performance.now();
  const queue = [...options.files];
  const result: LanesResult = { output: '', results: [], failures: [], unfinished: [], bootSeconds: [] };
  let retries = options.retries;
  const budget = () => options.timeoutMs - (performance.now() - started);

  /** One boot of a lane's rig: it runs files from the queue until the queue is empty or the rig dies. */
  async function boot(lane: string): Promise<boolean> {
    const reach = await options.forLane?.();
    let dir = '';
    let asked = 0;
    let current: string | undefined;
    let pending = '';
    const handOut = () => {
      const file = queue.shift() ?? '';
      const path = join(dir, `next.${asked++}`);
      // Written whole, then renamed: the rig never reads half a name.
      writeFileSync(`${path}.new`, file);
      renameSync(`${path}.new`, path);
      current = file || undefined;
      if (file) options.print(`${lane}: ${basename(file)} started; ${queue.length} waiting\n`);
    };
    const outcome = await runInRig({
      argv: ['/bin/sh', '-c', laneScript(options.command)],
      env: { ...options.env, ...reach?.env },
      forward: reach?.forward,
      timeoutMs: budget(),
      jobDir: (path) => {
        dir = path;
        handOut();
      },
      output: (chunk) => {
        pending += chunk.toString('utf8');
        for (let done = FILE_DONE.exec(pending); done; done = FILE_DONE.exec(pending)) {
          const end = done.index + done[0].length;
          const text = pending.slice(0, end);
          pending = pending.slice(end);
          result.results.push({ file: done[1], status: Number(done[2]), seconds: Number(done[3]) });
          result.output += text;
          options.print(`\n--- ${lane}: ${basename(done[1])}, status ${done[2]}, ${done[3]} s ---\n${text}`);
          handOut();
        }
      },
    });
    result.output += pending;
    if (outcome.bootMs !== undefined) result.bootSeconds.push(outcome.bootMs / 1000);
    if (!outcome.failure) return true;
    if (pending) options.print(`\n--- ${lane}: ${current ? basename(current) : 'the job'}, unfinished ---\n${pending}`);
    result.failures.push(`${lane}${current ? ` (in ${basename(current)})` : ''}: ${outcome.failure}`);
    options.print(`\n${lane} did not finish: ${outcome.failure}\n`);
    if (current) queue.unshift(current);
    return false;
  }

  async function lane(n: number): Promise<void> {
    for (let k = 1; queue.length > 0 && budget() > 0; k++) {
      if (await boot(k === 1 ? `rig ${n}` : `rig ${n}, boot ${k}`)) return;
      if (retries-- <= 0) return;
      if (queue.length > 0) options.print(`\nrig ${n}: booting a fresh rig for the ${queue.length} test files left\n\n`);
    }
  }

  // A file put back by a rig that died after the other lanes had emptied the queue gets a round of its own.
  while (queue.length > 0 && retries >= 0 && budget() > 0) {
    await Promise.all(Array.from({ length: Math.min(options.lanes, queue.length) }, (_, i) => lane(i + 1)));
  }
  result.unfinished = queue;
  return result;
}
