/**
 * `npm run bench:watch [-- --json]`: what the web console's dashboard costs
 * a guest that does nothing but exit. The exit guest (bench/exit-guest.s)
 * runs its port I/O and MMIO loops through the library twice over, in
 * alternating runs: alone, and with the dashboard open and a page (a
 * WebSocket client here) taking its samples, which kick each vCPU out of
 * KVM_RUN twice a second and, once watched, count every exit by address.
 * The ratio is time per exit watched over time per exit alone, in the same
 * run; the goal is a few percent at most.
 *
 *   --json           one JSON line instead of the table
 *   --runs N         timed runs per side and kind (default 5), after a warm-up
 *   --seconds S      aim each run at about S seconds (default 3: several samples a run)
 *   --mode M         cpl0 or cpl3 (default cpl0)
 */
import WebSocket from 'ws';
import { Dashboard } from '../src/web/dashboard.js';
import type { ServerMessage } from '../src/web/messages.js';
import { AssemblerError } from '../src/tools/assembler.js';
import { BenchSetupError } from './lib/c-loop.js';
import { assembleExitGuest, buildExitMachine, EXIT_KINDS, type ExitKind, type ExitRun, type Privilege } from './lib/exit-machine.js';
import { hostInfo } from './lib/host.js';
import { parseBenchOptions, positiveNumber, UsageError } from './lib/options.js';
import { median, perExit, type Sample } from './lib/sample.js';
import { runTsvmm } from './lib/tsvmm-loop.js';

const OPTIONS = {
  json: { type: 'boolean', default: false },
  runs: { type: 'string', default: '5' },
  seconds: { type: 'string', default: '3' },
  mode: { type: 'string', default: 'cpl0' },
} as const;

/** Round trips of the short runs that size the timed ones. */
const CALIBRATION_ITERATIONS = 20_000;

interface KindFigures {
  kind: ExitKind;
  iterations: number;
  aloneNsPerExit: number;
  watchedNsPerExit: number;
  /** Median over the runs of watched over alone, each pair back to back. */
  ratio: number;
  /** Samples the page got in the median watched run: proof that it was watched. */
  samples: number;
}

/** One run with the dashboard open and a page connected to it. */
async function watchedRun(image: Uint8Array, run: ExitRun): Promise<{ sample: Sample; samples: number }> {
  const dashboard = await Dashboard.open({ host: '127.0.0.1', port: 0 });
  const page = new WebSocket(new URL('/ws', dashboard.server.url).href.replace(/^http/, 'ws'));
  let samples = 0;
  page.on('message', (raw) => {
    if ((JSON.parse(raw.toString()) as ServerMessage).type === 'sample') samples++;
  });
  await new Promise((resolve, reject) => page.once('open', resolve).once('error', reject));
  const machine = await buildExitMachine(image, run);
  const detach = dashboard.attach(machine);
  try {
    return { sample: await runTsvmm(machine), samples };
  } finally {
    detach();
    page.close();
    await dashboard.close();
  }
}

async function measureKind(image: Uint8Array, kind: ExitKind, privilege: Privilege, runs: number, seconds: number): Promise<KindFigures> {
  const probe = await runTsvmm(await buildExitMachine(image, { kind, privilege, iterations: CALIBRATION_ITERATIONS }));
  const iterations = Math.max(CALIBRATION_ITERATIONS, Math.round((seconds * 1e9) / perExit(probe) / 1000) * 1000);
  const run: ExitRun = { kind, privilege, iterations };
  await watchedRun(image, run);
  const alone: Sample[] = [];
  const watched: { sample: Sample; samples: number }[] = [];
  for (let i = 0; i < runs; i++) {
    alone.push(await runTsvmm(await buildExitMachine(image, run)));
    watched.push(await watchedRun(image, run));
  }
  const ratios = watched.map((w, i) => perExit(w.sample) / perExit(alone[i]));
  const samples = median(watched.map((w) => w.samples));
  if (samples === 0) throw new BenchSetupError('the page got no samples: the watched runs were not watched (make --seconds longer)');
  return {
    kind,
    iterations,
    aloneNsPerExit: median(alone.map(perExit)),
    watchedNsPerExit: median(watched.map((w) => perExit(w.sample))),
    ratio: median(ratios),
    samples,
  };
}

async function main(): Promise<void> {
  const values = parseBenchOptions(process.argv.slice(2), OPTIONS);
  const privilege = values.mode as Privilege;
  if (privilege !== 'cpl0' && privilege !== 'cpl3') throw new UsageError(`--mode must be cpl0 or cpl3, got '${values.mode}'`);
  const runs = positiveNumber(values.runs, 'runs', true);
  const seconds = positiveNumber(values.seconds, 'seconds', false);
  const host = hostInfo();
  const image = assembleExitGuest();
  const figures: KindFigures[] = [];
  for (const kind of EXIT_KINDS) {
    if (!values.json) process.stderr.write(`measuring ${kind} at ${privilege.toUpperCase()}, alone and watched...\n`);
    figures.push(await measureKind(image, kind, privilege, runs, seconds));
  }
  if (values.json) {
    console.log(JSON.stringify({ bench: 'watch', host, privilege, runs, figures }));
    return;
  }
  console.log(`The web console's cost to a guest that only exits (${host.backend}, ${host.cpuModel}, ${host.cpuCount} CPUs, load ${host.loadAverage.toFixed(2)}), ${privilege.toUpperCase()}, median of ${runs} runs:`);
  console.log('kind   exits/s alone   exits/s watched   watched/alone   samples a run');
  for (const f of figures) {
    console.log(`${f.kind.padEnd(6)} ${(1e9 / f.aloneNsPerExit).toFixed(0).padStart(15)} ${(1e9 / f.watchedNsPerExit).toFixed(0).padStart(17)} ${f.ratio.toFixed(3).padStart(15)} ${String(f.samples).padStart(15)}`);
  }
}

main().catch((e: Error) => {
  const known = e instanceof UsageError || e instanceof BenchSetupError || e instanceof AssemblerError;
  console.error(`bench:watch: ${known ? e.message : e.stack ?? e.message}`);
  process.exitCode = 1;
});
