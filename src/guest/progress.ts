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
