/**
 * One comparison of the exit benchmark: for each kind of exit, tsvmm and
 * the C loop run the same guest from the same state, a warm-up each, then
 * alternating timed runs (so a busy spell on the host hits both sides).
 */
import { join } from 'node:path';
import { runCLoop } from './c-loop.js';
import { buildExitMachine, EXIT_KINDS, type ExitKind, type ExitRun, type Privilege } from './exit-machine.js';
import { writeGuestState } from './guest-state.js';
import { median, perExit, summarize, type Sample, type Summary } from './sample.js';
import { runTsvmm } from './tsvmm-loop.js';

export interface ComparisonSetup {
  image: Uint8Array;
  /** The compiled C loop. */
  program: string;
  /** A scratch folder for state files. */
  dir: string;
  /** Timed runs per side, after one warm-up. */
  runs: number;
}

export interface KindResult {
  kind: ExitKind;
  ours: Summary;
  c: Summary;
  /** Median over the runs of tsvmm's time per exit over the C loop's in the run right after it. */
  pairedRatio: number;
}

export interface ComparisonResult {
  privilege: Privilege;
  iterations: number;
  kinds: KindResult[];
}

const CALIBRATION_ITERATIONS = 5000;
const CALIBRATION_RUNS = 3;
const MIN_ITERATIONS = 20_000;
const MAX_ITERATIONS = 5_000_000;

export async function compareExits(setup: ComparisonSetup, privilege: Privilege, targetSeconds: number, fixedIterations?: number): Promise<ComparisonResult> {
  const iterations = fixedIterations ?? (await calibrate(setup, privilege, targetSeconds));
  const kinds: KindResult[] = [];
  for (const kind of EXIT_KINDS) kinds.push(await compareKind(setup, { kind, privilege, iterations }));
  return { privilege, iterations, kinds };
}

/** Iterations for a run of about `targetSeconds`, from short runs of the C loop (the slower kind decides; the best of a few, as a busy spell would make runs too short). */
async function calibrate(setup: ComparisonSetup, privilege: Privilege, targetSeconds: number): Promise<number> {
  let slowest = 0;
  for (const kind of EXIT_KINDS) {
    const state = await stateFile(setup, { kind, privilege, iterations: CALIBRATION_ITERATIONS });
    const samples = Array.from({ length: CALIBRATION_RUNS }, () => runCLoop(setup.program, state));
    slowest = Math.max(slowest, summarize(samples).bestNs);
  }
  const wanted = (targetSeconds * 1e9) / slowest;
  const step = 10 ** Math.max(0, Math.floor(Math.log10(wanted)) - 1); // two significant digits
  return Math.min(MAX_ITERATIONS, Math.max(MIN_ITERATIONS, Math.round(wanted / step) * step));
}

async function compareKind(setup: ComparisonSetup, run: ExitRun): Promise<KindResult> {
  const state = await stateFile(setup, run);
  const ours = async () => runTsvmm(await buildExitMachine(setup.image, run));
  const c = () => runCLoop(setup.program, state);
  await ours();
  c();
  const oursSamples: Sample[] = [];
  const cSamples: Sample[] = [];
  for (let i = 0; i < setup.runs; i++) {
    oursSamples.push(await ours());
    cSamples.push(c());
  }
  const result = {
    kind: run.kind,
    ours: summarize(oursSamples),
    c: summarize(cSamples),
    pairedRatio: median(oursSamples.map((s, i) => perExit(s) / perExit(cSamples[i]))),
  };
  if (result.ours.exits !== result.c.exits) {
    throw new Error(`${run.kind}: tsvmm took ${result.ours.exits} exits and the C loop ${result.c.exits}; they should run the same guest`);
  }
  return result;
}

/** Writes the state tsvmm builds for `run` to a file for the C loop. */
async function stateFile(setup: ComparisonSetup, run: ExitRun): Promise<string> {
  const path = join(setup.dir, `${run.privilege}-${run.kind}-${run.iterations}.state`);
  const machine = await buildExitMachine(setup.image, run);
  try {
    writeGuestState(machine, path);
  } finally {
    await machine.destroy();
  }
  return path;
}
