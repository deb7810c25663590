/**
 * VM exit statistics: per reason, how many exits and how long the VMM
 * spent handling them, summed over vCPUs, and printed as a table.
 */
import { exitReasonName } from '../kvm/kvm-run.js';
import { assistMnemonics } from '../arch/x86/emulator/mnemonics.js';
import { ASSIST_SLOT_BASE, GUEST_TIME_SLOT, MAX_EXIT_REASON } from './protocol.js';

export interface ExitStatsRow {
  reason: string;
  count: number;
  /** Nanoseconds spent in the VMM handling these exits (0 when not timed). */
  handlingNs: number;
}

export interface ExitStats {
  rows: ExitStatsRow[];
  total: number;
  /** Nanoseconds spent inside KVM_RUN, across vCPUs (0 when not timed). */
  guestNs: number;
  /** Instructions the emulation assist ran, by mnemonic. */
  assisted: Record<string, number>;
}

export function collectExitStats(perVcpu: Float64Array[]): ExitStats {
  const rows: ExitStatsRow[] = [];
  for (let reason = 0; reason < MAX_EXIT_REASON; reason++) {
    let count = 0;
    let handlingNs = 0;
    for (const s of perVcpu) {
      count += s[reason * 2];
      handlingNs += s[reason * 2 + 1];
    }
    if (count > 0) rows.push({ reason: exitReasonName(reason), count, handlingNs });
  }
  rows.sort((a, b) => b.count - a.count);
  const guestNs = perVcpu.reduce((n, s) => n + s[GUEST_TIME_SLOT * 2 + 1], 0);
  const assisted: Record<string, number> = {};
  assistMnemonics.forEach((m, i) => {
    const n = perVcpu.reduce((sum, s) => sum + s[(ASSIST_SLOT_BASE + i) * 2], 0);
    if (n > 0) assisted[m] = n;
  });
  return { rows, total: rows.reduce((n, r) => n + r.count, 0), guestNs, assisted };
}

const BAR_WIDTH = 30;

export function formatExitStats(stats: ExitStats): string {
  const timed = stats.guestNs > 0;
  const header = ['exit reason', 'count', '%', ...(timed ? ['handling', 'per exit'] : []), ''];
  const bar = (count: number) => '#'.repeat(Math.max(1, Math.round((BAR_WIDTH * count) / Math.max(stats.total, 1))));
  const ms = (ns: number) => `${(ns / 1e6).toFixed(3)} ms`;
  const body = stats.rows.map((r) => [
    r.reason,
    String(r.count),
    ((100 * r.count) / Math.max(stats.total, 1)).toFixed(1),
    ...(timed ? [ms(r.handlingNs), `${(r.handlingNs / r.count / 1000).toFixed(2)} us`] : []),
    bar(r.count),
  ]);
  body.push(['total', String(stats.total), '100.0', ...(timed ? [ms(stats.rows.reduce((n, r) => n + r.handlingNs, 0)), ''] : []), '']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const last = header.length - 1;
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === last ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  if (timed) out.push(`time inside KVM_RUN: ${ms(stats.guestNs)}`);
  const assisted = Object.entries(stats.assisted).sort((a, b) => b[1] - a[1]);
  if (assisted.length > 0) out.push(`emulation assist: ${assisted.map(([m, n]) => `${m} ${n}`).join(', ')}`);
  return out.join('\n');
}
