/**
 * The C loop (bench/c/exit-loop.c): compiled with gcc -O2 into a temporary
 * folder when the benchmark starts, then run once per measurement.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { benchSource } from './sources.js';
import type { Sample } from './sample.js';

export class BenchSetupError extends Error {}

const INSTALL_HINT = 'install gcc and the kernel headers (apt-get install gcc linux-libc-dev)';

/** Compiles the C loop into `dir` and returns the program's path. */
export function compileCLoop(dir: string): string {
  const program = join(dir, 'exit-loop');
  const result = spawnSync('gcc', ['-O2', '-Wall', '-o', program, benchSource('c/exit-loop.c')], { encoding: 'utf8' });
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new BenchSetupError(missing ? `gcc was not found: ${INSTALL_HINT}` : `gcc could not run: ${result.error.message}`);
  }
  if (result.status !== 0) {
    if (result.stderr.includes('linux/kvm.h')) throw new BenchSetupError(`linux/kvm.h was not found: ${INSTALL_HINT}`);
    throw new BenchSetupError(`gcc failed to build bench/c/exit-loop.c:\n${result.stderr.trim()}`);
  }
  return program;
}

/** Runs the C loop on a state file written by writeGuestState. */
export function runCLoop(program: string, stateFile: string): Sample {
  let out: string;
  try {
    out = execFileSync(program, [stateFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`the C loop failed: ${err.stderr?.trim() || err.message}`);
  }
  const [exits, ns] = out.trim().split(' ').map(Number);
  if (!(exits > 0 && ns > 0)) throw new Error(`the C loop printed '${out.trim()}', not '<exits> <ns>'`);
  return { exits, ns };
}
