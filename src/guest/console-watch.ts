/**
 * Watches a Linux guest's console for the lines that matter to the VMM:
 * the default guest's TSVMM-READY and TSVMM-EXIT markers, a kernel panic,
 * and the kernel's report of a fault that killed init (PID 1) in user mode.
 */
import { EXIT_LINE, READY_LINE } from './init-script.js';

const PANIC_LINE = /Kernel panic - not syncing: (.*)$/;
/**
 * What x86 Linux prints when a user-mode fault kills a process (unless
 * show_unhandled_signals is off): "traps: init[1] general protection fault
 * ip:ffffffff81a00040 sp:7ffc... error:0" for #GP, "init[1]: segfault at
 * ffffffff81a00040 ip ffffffff81a00040 sp ... error 15" for #PF.
 */
const INIT_FAULT_LINE = /\b\S+\[1\]:? (?:general protection fault|segfault|trap).*?\bip[: ]([0-9a-f]{1,16})\b/;
const MAX_LINE = 4096;

export interface ConsoleEvents {
  ready?(cpus: number): void;
  commandExit?(status: number): void;
  panic?(reason: string): void;
  /** Init (PID 1) took a fault in user mode at instruction address `ip`. */
  initFault?(ip: bigint): void;
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
      else if ((m = INIT_FAULT_LINE.exec(line))) this.events.initFault?.(BigInt(`0x${m[1]}`));
    }
  }
}
