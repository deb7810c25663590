/**
 * `npm run bench:snapshot [-- --json]`: what a snapshot costs and what a
 * restore saves, through the library, for a 128 MiB and a 1 GiB guest.
 *
 * The guest (bench/snapshot/go-flag.s) boots, prints one byte and spins on
 * a flag. The benchmark fills its RAM above the first 4 MiB (a guest that
 * has worked, not a sparse file), pauses it, sets the flag, and saves it:
 * pause-to-files is pause() plus the snapshot. A restore is load (read and
 * check the state file) + build (KVM, RAM mapped from the memory file,
 * vCPU threads) + start until the guest's first exit, which ends it. The
 * baseline is a cold boot of the same guest in the same run, from
 * buildMachine() to its first exit.
 *
 *   --json     one JSON line instead of the table
 *   --runs N   timed runs of each (default 5), after a warm-up
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssemblerError, assemble } from '../src/tools/assembler.js';
import { GiB, MiB } from '../src/memory/layout.js';
import { loadSnapshot, snapshotMachine, type SavedConfig } from '../src/snapshot/vm-snapshot.js';
import { buildMachine } from '../src/vmm/builder.js';
import type { Machine } from '../src/vmm/machine.js';
import { hostInfo } from './lib/host.js';
import { parseBenchOptions, positiveNumber, UsageError } from './lib/options.js';
import { median } from './lib/sample.js';
import { benchSource } from './lib/sources.js';

const LOAD = 0x100000;
const GO_OFFSET = 0x10;
/** What the guest writes to the debug-exit port once the flag is set. */
const DONE = 0x21;
/** Below this the loader keeps the guest's page tables and code: the fill starts above. */
const FILL_FROM = 4 * MiB;
const SIZES = [128 * MiB, 1 * GiB];

const OPTIONS = { json: { type: 'boolean', default: false }, runs: { type: 'string', default: '5' } } as const;

interface SizeFigures {
  memoryMiB: number;
  coldBootMs: number;
  pauseMs: number;
  snapshotMs: number;
  stateBytes: number;
  memoryBytes: number;
  restore: { loadMs: number; buildMs: number; firstExitMs: number; totalMs: number };
  /** Restore against the cold boot of the same guest, this run. */
  restoreVsColdBoot: number;
}

const now = () => performance.now();

/** A cold boot to the guest's first exit; the machine is left running, spinning on its flag. */
async function coldBoot(config: SavedConfig): Promise<{ machine: Machine; ms: number }> {
  const started = now();
  let printed!: () => void;
  const first = new Promise<void>((resolve) => (printed = resolve));
  const machine = buildMachine({ ...config, console: () => printed() });
  await machine.start();
  await first;
  return { machine, ms: now() - started };
}

async function measureSize(image: Uint8Array, memory: number, dir: string): Promise<Omit<SizeFigures, 'restoreVsColdBoot'>> {
  const config: SavedConfig = { memory, cpus: 1, boot: { kind: 'raw', image, mode: 'long', loadAddr: LOAD } };
  const { machine, ms: coldBootMs } = await coldBoot(config);
  const [state, memoryFile] = [join(dir, `${memory}.state`), join(dir, `${memory}.mem`)];
  let pauseMs: number;
  let snapshotMs: number;
  try {
    machine.memory.fill(FILL_FROM, memory - FILL_FROM, 0xa5);
    const paused = now();
    await machine.pause();
    pauseMs = now() - paused;
    machine.memory.writeU8(LOAD + GO_OFFSET, 1);
    const saving = now();
    snapshotMachine(machine, config, state, memoryFile);
    snapshotMs = now() - saving;
  } finally {
    await machine.destroy();
  }

  const t0 = now();
  const snapshot = loadSnapshot(state, memoryFile);
  const t1 = now();
  const restored = snapshot.build();
  const t2 = now();
  const stop = await restored.run();
  const t3 = now();
  await restored.destroy();
  if (stop.kind !== 'debug-exit' || stop.exitCode !== ((DONE << 1) | 1)) throw new Error(`the restored guest ended with '${stop.message}', not its debug-exit write`);
  return {
    memoryMiB: memory / MiB, coldBootMs, pauseMs, snapshotMs,
    stateBytes: statSync(state).size, memoryBytes: statSync(memoryFile).size,
    restore: { loadMs: t1 - t0, buildMs: t2 - t1, firstExitMs: t3 - t2, totalMs: t3 - t0 },
  };
}

function medianFigures(runs: Omit<SizeFigures, 'restoreVsColdBoot'>[]): SizeFigures {
  const m = (pick: (r: (typeof runs)[number]) => number) => median(runs.map(pick));
  const restore = { loadMs: m((r) => r.restore.loadMs), buildMs: m((r) => r.restore.buildMs), firstExitMs: m((r) => r.restore.firstExitMs), totalMs: m((r) => r.restore.totalMs) };
  const coldBootMs = m((r) => r.coldBootMs);
  return {
    memoryMiB: runs[0].memoryMiB, coldBootMs, pauseMs: m((r) => r.pauseMs), snapshotMs: m((r) => r.snapshotMs),
    stateBytes: runs[0].stateBytes, memoryBytes: runs[0].memoryBytes, restore, restoreVsColdBoot: restore.totalMs / coldBootMs,
  };
}

const f = (ms: number) => ms.toFixed(1);

function table(host: ReturnType<typeof hostInfo>, runs: number, figures: SizeFigures[], sizeRatio: number): string {
  const rows = figures.map((s) =>
    `${`${s.memoryMiB} MiB`.padEnd(9)} ${f(s.coldBootMs).padStart(9)} ${f(s.pauseMs).padStart(7)} ${f(s.snapshotMs).padStart(9)} ${`${(s.memoryBytes / MiB).toFixed(0)} MiB + ${(s.stateBytes / 1024).toFixed(0)} KiB`.padStart(18)} ` +
    `${f(s.restore.loadMs).padStart(6)} ${f(s.restore.buildMs).padStart(7)} ${f(s.restore.firstExitMs).padStart(8)} ${f(s.restore.totalMs).padStart(9)} ${s.restoreVsColdBoot.toFixed(2).padStart(8)}`,
  );
  return [
    `snapshot and restore through the library, median of ${runs} runs; host backend ${host.backend}, ${host.cpuModel}, ${host.cpuCount} CPUs, load ${host.loadAverage.toFixed(2)}`,
    '',
    'guest     cold boot   pause  snapshot         files size   load   build  1st exit   restore  vs boot',
    ...rows,
    '',
    `restore time, 1 GiB against 128 MiB: ${sizeRatio.toFixed(2)}x (RAM is mapped from the memory file, not read)`,
    'all times in ms; cold boot: buildMachine() to the first exit; restore: load + build + start to the first exit',
  ].join('\n');
}

async function main(): Promise<void> {
  const values = parseBenchOptions(process.argv.slice(2), OPTIONS);
  const runs = positiveNumber(values.runs, 'runs', true);
  const log = (line: string) => process.stderr.write(`bench:snapshot: ${line}\n`);
  const host = hostInfo();
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-snapshot-'));
  try {
    const image = assemble(benchSource('snapshot/go-flag.s'), { address: LOAD });
    const figures: SizeFigures[] = [];
    for (const size of SIZES) {
      const measured = [];
      // Run 0 is the warm-up (page cache, KVM module state).
      for (let run = 0; run <= runs; run++) {
        if (!values.json) log(`${size / MiB} MiB: ${run === 0 ? 'warm-up' : `run ${run} of ${runs}`}`);
        const r = await measureSize(image, size, dir);
        if (run > 0) measured.push(r);
      }
      figures.push(medianFigures(measured));
    }
    const sizeRatio = figures[1].restore.totalMs / figures[0].restore.totalMs;
    console.log(values.json ? JSON.stringify({ bench: 'snapshot', runs, host, sizes: figures, restore1GiBVs128MiB: sizeRatio }) : table(host, runs, figures, sizeRatio));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  const known = e instanceof UsageError || e instanceof AssemblerError || e.name === 'ConfigError' || e.name === 'SystemError';
  console.error(`bench:snapshot: ${known ? e.message : e.stack ?? e.message}`);
  process.exitCode = 1;
});
