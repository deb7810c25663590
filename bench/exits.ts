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
import { BenchSetupError, compileCLoop } from './lib/c-loop.js';
import { compareExits, type ComparisonResult } from './lib/exit-comparison.js';
import { exitBenchJson, exitBenchTable } from './lib/exit-report.js';
import { assembleExitGuest, type Privilege } from './lib/exit-machine.js';
import { hostInfo } from './lib/host.js';
import { parseBenchOptions, positiveNumber, UsageError } from './lib/options.js';
import { AssemblerError } from '../src/tools/assembler.js';


interface Options {
  json: boolean;
  runs: number;
  seconds: number;
  iterations?: number;
  privileges: Privilege[];
}

const OPTIONS = {
  json: { type: 'boolean', default: false },
  runs: { type: 'string', default: '5' },
  seconds: { type: 'string', default: '1.5' },
  iterations: { type: 'string' },
  mode: { type: 'string', default: 'both' },
} as const;

function parseOptions(argv: string[]): Options {
  const values = parseBenchOptions(argv, OPTIONS);
  const modes: Record<string, Privilege[]> = { cpl0: ['cpl0'], cpl3: ['cpl3'], both: ['cpl0', 'cpl3'] };
  const privileges = modes[values.mode];
  if (!privileges) throw new UsageError(`--mode must be cpl0, cpl3 or both, got '${values.mode}'`);
  return {
    json: values.json,
    runs: positiveNumber(values.runs, 'runs', true),
    seconds: positiveNumber(values.seconds, 'seconds', false),
    iterations: values.iterations === undefined ? undefined : positiveNumber(values.iterations, 'iterations', true),
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
