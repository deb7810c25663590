/**
 * The exit benchmark's results as one JSON line (for scripts) or a table
 * with a bar per row for tsvmm's overhead over the C loop.
 */
import type { ComparisonResult, KindResult } from './exit-comparison.js';
import type { HostInfo } from './host.js';

interface Figures {
  ours_ns: number;
  c_ns: number;
  ratio: number;
  /** Median time tsvmm took to start its vCPU thread, included in ours_ns. */
  ours_start_ms: number;
  /** Median of the ratios of back-to-back runs: steadier than best over best on a busy host. */
  paired_ratio: number;
}

interface ModeFigures extends Figures {
  /** Which kind of exit the top-level figures are (the one with the higher ratio). */
  worst: string;
  pio: Figures;
  mmio: Figures;
  exits: number;
  mode: string;
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));

function figures(k: KindResult): Figures {
  return {
    ours_ns: round(k.ours.bestNs, 1), c_ns: round(k.c.bestNs, 1), ratio: round(k.ours.bestNs / k.c.bestNs, 4),
    ours_start_ms: round(startMs(k), 1), paired_ratio: round(k.pairedRatio, 4),
  };
}

function startMs(k: KindResult): number {
  return (k.ours.medianStartNs ?? 0) / 1e6;
}

function modeName(r: ComparisonResult): string {
  return `long-${r.privilege}`;
}

function modeFigures(r: ComparisonResult): ModeFigures {
  const byKind = Object.fromEntries(r.kinds.map((k) => [k.kind, figures(k)])) as Record<'pio' | 'mmio', Figures>;
  const worst = byKind.mmio.ratio > byKind.pio.ratio ? 'mmio' : 'pio';
  return { ...byKind[worst], worst, pio: byKind.pio, mmio: byKind.mmio, exits: r.kinds[0].ours.exits, mode: modeName(r) };
}

/** The top level is the mode whose worse kind has the highest ratio; every mode is under `modes`. */
export function exitBenchJson(results: ComparisonResult[], host: HostInfo, runs: number): string {
  const modes = results.map(modeFigures);
  const headline = modes.reduce((a, b) => (b.ratio > a.ratio ? b : a));
  return JSON.stringify({
    ...headline,
    host_backend: host.backend,
    cpu: host.cpuModel,
    load_avg: round(host.loadAverage, 2),
    runs,
    modes: Object.fromEntries(modes.map((m) => [m.mode, m])),
  });
}

const PERCENT_PER_MARK = 1;
const MAX_MARKS = 40;

function overheadBar(ratio: number): string {
  const percent = (ratio - 1) * 100;
  const marks = Math.round(Math.abs(percent) / PERCENT_PER_MARK);
  const bar = (percent < 0 ? '-' : '#').repeat(Math.min(marks, MAX_MARKS)) + (marks > MAX_MARKS ? '>' : '');
  return `${percent >= 0 ? '+' : ''}${percent.toFixed(1)}% ${bar}`.trimEnd();
}

export function exitBenchTable(results: ComparisonResult[], host: HostInfo, runs: number): string {
  const perExit = (best: number, median: number) => `${(best / 1000).toFixed(2)} (${(median / 1000).toFixed(2)})`;
  const header = ['mode', 'exit', 'exits/run', 'tsvmm us/exit', 'C us/exit', 'ratio', 'paired', 'tsvmm start', 'tsvmm overhead'];
  const rows = results.flatMap((r) =>
    r.kinds.map((k) => [
      modeName(r), k.kind, String(k.ours.exits), perExit(k.ours.bestNs, k.ours.medianNs), perExit(k.c.bestNs, k.c.medianNs),
      (k.ours.bestNs / k.c.bestNs).toFixed(4), k.pairedRatio.toFixed(4), `${startMs(k).toFixed(0)} ms`, overheadBar(k.ours.bestNs / k.c.bestNs),
    ]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const numeric = new Set([2, 3, 4, 5, 6, 7]);
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const modes = results.map(modeFigures);
  return [
    'VM exit round trips: tsvmm vs a raw C loop on the same guest from the same vCPU state',
    `host: ${host.backend} on ${host.cpuCount} x ${host.cpuModel}, load average ${host.loadAverage.toFixed(2)} at the start`,
    `per exit: best of ${runs} run${runs === 1 ? '' : 's'} after a warm-up (median in brackets)`,
    `ratio: best over best; paired: median ratio of back-to-back runs; one # per ${PERCENT_PER_MARK}% of overhead`,
    "tsvmm's time per exit includes starting its vCPU worker thread (tsvmm start, median per run)",
    '',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    ...modes.map((m) => `${m.mode}: worst of PIO and MMIO is ${m.worst}, ratio ${m.ratio.toFixed(4)}`),
  ].join('\n');
}
