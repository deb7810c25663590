/**
 * Where the benchmark's non-TypeScript sources live: beside the compiled
 * code's source, in the repository's bench/ folder.
 */
import { fileURLToPath } from 'node:url';

// This file runs as dist/bench/lib/sources.js.
const BENCH_DIR = new URL('../../../bench/', import.meta.url);

/** The absolute path of a file under bench/, e.g. 'c/exit-loop.c'. */
export function benchSource(relative: string): string {
  return fileURLToPath(new URL(relative, BENCH_DIR));
}
