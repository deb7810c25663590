/**
 * One timed run of a VMM over the exit guest, and how several runs are
 * summed up.
 */
export interface Sample {
  /** VM exits the run took (the loop's round trips and the debug exit). */
  exits: number;
  /** Wall time of the run, in nanoseconds. */
  ns: number;
  /** Of which, starting the VMM's vCPU thread (tsvmm only; part of `ns`). */
  startNs?: number;
}

export interface Summary {
  exits: number;
  /** Nanoseconds per exit of the fastest run. */
  bestNs: number;
  /** Nanoseconds per exit of the median run. */
  medianNs: number;
  /** Median time to start the vCPU thread, when the runs report it. */
  medianStartNs?: number;
}

export function perExit(s: Sample): number {
  return s.ns / s.exits;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarize(samples: Sample[]): Summary {
  if (samples.length === 0) throw new Error('no samples to summarize');
  const starts = samples.flatMap((s) => (s.startNs === undefined ? [] : [s.startNs]));
  return {
    exits: samples[0].exits,
    bestNs: Math.min(...samples.map(perExit)),
    medianNs: median(samples.map(perExit)),
    medianStartNs: starts.length > 0 ? median(starts) : undefined,
  };
}
