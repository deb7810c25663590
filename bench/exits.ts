/**
 * `npm run bench:exits [-- --json]`: VM exit round trips of tsvmm against
 * a raw C KVM_RUN loop, on the same guest (bench/exit-guest.s) from the
 * same vCPU state, for port I/O and MMIO, in long mode at CPL0 and CPL3.
 *
 *   --json           one JSON line instead of the table
 *   --runs N         timed runs per side and case (default 5), after a warm-up
 *   --seconds S      aim each run at about S seconds (default 1.5)
 *   --iterations N   round trips per run, instead of aiming at --seconds
 *   --mode M         cpl0, cpl3 or both (default both)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchSetupError, compileCLoop } from './lib/c-loop.js';
import { compareExits, type ComparisonResult } from './lib/exit-comparison.js';
import { exitBenchJson, exitBenchTable } from './lib/exit-report.js';
import { assembleExitGuest, type Privilege } from './lib/exit-machine.js';
import { hostInfo } from './lib/host.js';
import { AssemblerError } from '../src/tools/assembler.js';

class UsageError extends Error {}

interface Options {
  json: boolean;
  runs: number;
  seconds: number;
  iterations?: number;
  privileges: Privilege[];
}

function positive(text: string, name: string, integer: boolean): number {
  const n = Number(text);
  if (!(n > 0) || (integer && !Number.isSafeInteger(n))) throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  return n;
}

const OPTIONS = {
  json: { type: 'boolean', default: false },
  runs: { type: 'string', default: '5' },
  seconds: { type: 'string', default: '1.5' },
  iterations: { type: 'string' },
  mode: { type: 'string', default: 'both' },
} as const;

function parseOptions(argv: string[]): Options {
  let values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const modes: Record<string, Privilege[]> = { cpl0: ['cpl0'], cpl3: ['cpl3'], both: ['cpl0', 'cpl3'] };
  const privileges = modes[values.mode];
  if (!privileges) throw new UsageError(`--mode must be cpl0, cpl3 or both, got '${values.mode}'`);
  return {
    json: values.json,
    runs: positive(values.runs, 'runs', true),
    seconds: positive(values.seconds, 'seconds', false),
    iterations: values.iterations === undefined ? undefined : positive(values.iterations, 'iterations', true),
    privileges,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const host = hostInfo();
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-exits-'));
  try {
    const setup = { image: assembleExitGuest(), program: compileCLoop(dir), dir, runs: options.runs };
    const results: ComparisonResult[] = [];
    for (const privilege of options.privileges) {
      if (!options.json) process.stderr.write(`measuring long mode ${privilege.toUpperCase()}...\n`);
      results.push(await compareExits(setup, privilege, options.seconds, options.iterations));
    }
    console.log(options.json ? exitBenchJson(results, host, options.runs) : exitBenchTable(results, host, options.runs));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  const known = e instanceof UsageError || e instanceof BenchSetupError || e instanceof AssemblerError;
  console.error(`bench:exits: ${known ? e.message : e.stack ?? e.message}`);
  process.exitCode = 1;
});
