/**
 * Progress of the long steps of building the guest (download, unpack,
 * archive), shown on stderr: on a terminal one line repainted with a
 * percentage, elsewhere (logs, CI) only the line that ends each step.
 */

export interface Progress {
  /** `fraction` of `step` is done, 0 to 1. */
  update(step: string, fraction: number): void;
  /** `step` has ended; `detail` says what it produced. */
  done(step: string, detail: string): void;
}

export const silentProgress: Progress = { update() {}, done() {} };

/** Progress on stderr; `clear` erases a step left unfinished (before an error message). */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): Progress & { clear(): void } {
  let shown = '';
  return {
    update(step, fraction) {
      if (!stream.isTTY) return;
      const line = `${step} ${Math.floor(Math.min(1, Math.max(0, fraction)) * 100)}%`;
      if (line === shown) return;
      shown = line;
      stream.write(`\r\x1b[K${line}`);
    },
    done(step, detail) {
      stream.write(`${stream.isTTY ? '\r\x1b[K' : ''}${step}: ${detail}\n`);
      shown = '';
    },
    clear() {
      if (shown !== '') stream.write('\r\x1b[K');
      shown = '';
    },
  };
}

/** A size for progress lines: "12.3 MiB". */
export const formatMiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Time since a performance.now() reading, for progress lines: "1.2 s". */
export const secondsSince = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`;
