/**
 * The raw C launcher (bench/boot/launch.c), compiled with gcc -O2 into a
 * temporary folder when the benchmark starts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BenchSetupError } from './c-loop.js';
import { MULTIBOOT_STATUS } from './boot-guest.js';
import type { Contender } from './boot-spawn.js';
import { benchSource } from './sources.js';

const SOURCE = 'boot/launch.c';

/** Compiles the launcher into `dir` and returns the contender that runs it on `elf`. */
export function compileLauncher(dir: string, elf: string): Contender {
  const program = join(dir, 'launch');
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', program, benchSource(SOURCE)], { encoding: 'utf8' });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new BenchSetupError(missing ? 'gcc was not found: apt-get install gcc linux-libc-dev' : `gcc could not run: ${r.error.message}`);
  }
  if (r.status !== 0) throw new BenchSetupError(`gcc failed to build bench/${SOURCE}:\n${r.stderr.trim()}`);
  return { key: 'c', label: 'C launcher', command: program, args: [elf], status: MULTIBOOT_STATUS };
}
