/**
 * Runs the tsvmm command line as a user would, capturing its output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs tsvmm to its end (killed after timeoutMs, default 60 s). */
export function runCli(args: string[], options: StartOptions = {}): Promise<CliResult> {
  return startCli(args, { timeoutMs: 60_000, ...options }).done;
}

/** A process in progress (tsvmm, or a test's peer): its output so far, a wait for a line of it, and its end. */
export interface RunningProcess {
  readonly child: ChildProcess;
  output(): { stdout: string; stderr: string };
  /** Resolves with the first match of `pattern` on stdout (or stderr); rejects if the process ends first. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  readonly done: Promise<CliResult>;
}

export interface StartOptions {
  timeoutMs?: number;
  /** Put before the command, e.g. `ip netns exec NS`. */
  prefix?: string[];
  /** Added to the environment. */
  env?: NodeJS.ProcessEnv;
}

/** Starts tsvmm; killed after timeoutMs. */
export function startCli(args: string[], options: StartOptions = {}): RunningProcess {
  return startProcess([process.execPath, CLI, ...args], options);
}

/** Starts `argv`; killed after timeoutMs. */
export function startProcess(argv: string[], options: StartOptions = {}): RunningProcess {
  const [command, ...rest] = [...(options.prefix ?? []), ...argv];
  const child = spawn(command, rest, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d) => {
    stdout += d;
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
    waiters.forEach((w) => w());
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 5 * 60_000);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      waiters.forEach((w) => w());
      resolve({ status, signal, stdout, stderr });
    });
  });
  let ended = false;
  void done.then(() => (ended = true));
  return {
    child,
    output: () => ({ stdout, stderr }),
    done,
    waitFor: (pattern, stream = 'stdout') =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = (stream === 'stdout' ? stdout : stderr).match(pattern);
          if (match) resolve(match);
          else if (ended || child.exitCode !== null || child.signalCode !== null) {
            reject(new Error(`${argv.join(' ')} ended before printing ${pattern}\nstdout: ${stdout.slice(-3000)}\nstderr: ${stderr.slice(-2000)}`));
          } else return;
          waiters.splice(waiters.indexOf(check), 1);
        };
        waiters.push(check);
        check();
      }),
  };
}
