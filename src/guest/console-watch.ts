/**
 * Watches a Linux guest's console for the lines that matter to the VMM:
 * the default guest's TSVMM-READY and TSVMM-EXIT markers, and a kernel panic.
 */
import { EXIT_LINE, READY_LINE } from './init-script.js';

const PANIC_LINE = /Kernel panic - not syncing: (.*)$/;
const MAX_LINE = 4096;

export interface ConsoleEvents {
  ready?(cpus: number): void;
  commandExit?(status: number): void;
  panic?(reason: string): void;
}

export class ConsoleWatch {
  private partial = '';

  constructor(private readonly events: ConsoleEvents) {}

  feed(data: Uint8Array): void {
    const lines = (this.partial + Buffer.from(data).toString('latin1')).split(/\r?\n/);
    this.partial = (lines.pop() ?? '').slice(-MAX_LINE);
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      let m: RegExpExecArray | null;
      if ((m = READY_LINE.exec(line))) this.events.ready?.(Number(m[1]));
      else if ((m = EXIT_LINE.exec(line))) this.events.commandExit?.(Number(m[1]));
      else if ((m = PANIC_LINE.exec(line))) this.events.panic?.(m[1]);
    }
  }
}
