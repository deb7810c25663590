/**
 * The boot benchmark's results as one JSON line (for scripts) or as tables
 * with a bar per row.
 */
import type { LinuxFigures } from './boot-linux.js';
import { PHASE_MEANINGS, type PhaseTimes } from './boot-phases.js';
import type { HostInfo } from './host.js';

export interface BootRow {
  key: string;
  label: string;
  /** The command, shortened for the table. */
  command: string;
  medianMs: number;
  minMs: number;
}

export type LinuxOutcome = { figures: LinuxFigures } | { skipped: string } | { failed: string };

export interface BootResults {
  runs: number;
  host: HostInfo;
  qemuVersion: string;
  /** Every contender that ran, in the order of the table. */
  rows: BootRow[];
  /** Why QEMU -M microvm is not in the rows, when it is not. */
  microvmNote?: string;
  phases: PhaseTimes;
  /** Median over the probe's runs of process start to the guest's first instruction (no teardown, no exit). */
  firstExitMs: number;
  linux: LinuxOutcome;
}

const round = (n: number) => Number(n.toFixed(1));

function row(r: BootResults, key: string): BootRow | undefined {
  return r.rows.find((x) => x.key === key);
}

function must(r: BootResults, key: string): BootRow {
  const found = row(r, key);
  if (found === undefined) throw new Error(`no result for ${key}`);
  return found;
}

export function bootBenchJson(r: BootResults): string {
  const tsvmm = must(r, 'tsvmm').medianMs;
  const qemu = must(r, 'qemu_pc').medianMs;
  const c = must(r, 'c').medianMs;
  const microvm = row(r, 'qemu_microvm');
  return JSON.stringify({
    tsvmm_ms: round(tsvmm),
    qemu_ms: round(qemu),
    c_ms: round(c),
    ratio_vs_qemu: Number((tsvmm / qemu).toFixed(3)),
    ratio_vs_c: Number((tsvmm / c).toFixed(3)),
    runs: r.runs,
    host_backend: r.host.backend,
    phases: Object.fromEntries(Object.entries(r.phases).map(([k, v]) => [k, round(v)])),
    measured: 'spawn to process exit; the guest exits at its first instruction',
    tsvmm_first_instruction_ms: round(r.firstExitMs),
    qemu_microvm_ms: microvm ? round(microvm.medianMs) : null,
    ratio_vs_qemu_microvm: microvm ? Number((tsvmm / microvm.medianMs).toFixed(3)) : null,
    ...(r.microvmNote ? { qemu_microvm_note: r.microvmNote } : {}),
    median_ms: Object.fromEntries(r.rows.map((x) => [x.key, round(x.medianMs)])),
    min_ms: Object.fromEntries(r.rows.map((x) => [x.key, round(x.minMs)])),
    qemu_version: r.qemuVersion,
    cpu: r.host.cpuModel,
    load_avg: Number(r.host.loadAverage.toFixed(2)),
    linux_to_ready: 'figures' in r.linux ? roundAll(r.linux.figures) : r.linux,
  });
}

function roundAll(f: LinuxFigures): Record<string, number | string> {
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(k.startsWith('ratio') ? 3 : 1)) : v]));
}

const MAX_MARKS = 50;

/** A round number of milliseconds per mark that fits the largest value in MAX_MARKS. */
function msPerMark(values: number[]): number {
  const wanted = Math.max(...values) / MAX_MARKS;
  for (let unit = 0.1; ; unit *= 10) {
    for (const step of [1, 2, 5]) if (step * unit >= wanted) return Number((step * unit).toPrecision(1));
  }
}

const bar = (ms: number, scale: number) => '#'.repeat(Math.max(0, Math.round(ms / scale)));

function table(header: string[], rows: string[][], numeric: Set<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((cells) => cells[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

const ratio = (a: number, b: number) => (a / b >= 10 ? (a / b).toFixed(1) : (a / b).toFixed(2));

export function bootBenchTable(r: BootResults): string {
  const scale = msPerMark(r.rows.map((x) => x.medianMs));
  const tsvmm = must(r, 'tsvmm').medianMs;
  const vs = r.rows.filter((x) => ['qemu_pc', 'qemu_microvm', 'c'].includes(x.key));
  const phaseEntries = Object.entries(r.phases) as [keyof PhaseTimes, number][];
  const phaseScale = msPerMark(phaseEntries.map(([, ms]) => ms));
  const phaseSum = phaseEntries.reduce((s, [, ms]) => s + ms, 0);
  return [
    "Boot time: from spawning a fresh process to the guest's first instruction",
    "The guest's first instruction writes the debug-exit port, so each figure is spawn to process exit.",
    `host: ${r.host.backend} on ${r.host.cpuCount} x ${r.host.cpuModel}, load average ${r.host.loadAverage.toFixed(2)} at the start; ${r.qemuVersion}`,
    `median and min of ${r.runs} runs each after a warm-up, the contenders taking turns; one # per ${scale} ms of the median`,
    '',
    ...table(
      ['VMM', 'command', 'median ms', 'min ms', ''],
      r.rows.map((x) => [x.label, x.command, x.medianMs.toFixed(1), x.minMs.toFixed(1), bar(x.medianMs, scale)]),
      new Set([2, 3]),
    ),
    ...(r.microvmNote ? ['', `QEMU -M microvm is left out: ${r.microvmNote}`] : []),
    '',
    `tsvmm run --kernel over: ${vs.map((x) => `${x.label} ${ratio(tsvmm, x.medianMs)}`).join(', ')} (below 1: tsvmm is faster)`,
    '',
    `Where tsvmm's time goes: median of each phase over the ${r.runs} runs of the library probe (they sum to ${phaseSum.toFixed(1)} ms); one # per ${phaseScale} ms`,
    `From process start to the guest's first instruction, without teardown and exit: ${r.firstExitMs.toFixed(1)} ms (median over the runs)`,
    '',
    ...table(
      ['phase', 'ms', '', 'what it is'],
      phaseEntries.map(([name, ms]) => [name, ms.toFixed(1), bar(ms, phaseScale), PHASE_MEANINGS[name]]),
      new Set([1]),
    ),
    '',
    'Linux, spawn to TSVMM-READY on the console:',
    ...('figures' in r.linux ? linuxLines(r.linux.figures) : 'skipped' in r.linux ? [`  skipped: ${r.linux.skipped}`] : [`  failed: ${r.linux.failed}`]),
  ].join('\n');
}

function linuxLines(f: LinuxFigures): string[] {
  return [
    `  tsvmm run (default guest)  median ${f.tsvmm_ms.toFixed(0)} ms, min ${f.tsvmm_min_ms.toFixed(0)} ms`,
    `  QEMU -M microvm            median ${f.qemu_microvm_ms.toFixed(0)} ms, min ${f.qemu_microvm_min_ms.toFixed(0)} ms`,
    `  tsvmm over QEMU ${ratio(f.tsvmm_ms, f.qemu_microvm_ms)}, ${f.runs} runs each, kernel ${f.kernel}`,
  ];
}
