/**
 * Keys from the user's terminal for the guest. A terminal is put in raw
 * mode, so every key (Ctrl-C included) reaches the guest unprocessed, and
 * put back on close, at exit, after a crash, and on SIGHUP or SIGQUIT
 * (Node restores it itself when SIGINT or SIGTERM ends the process).
 */
import type { Readable } from 'node:stream';

export type KeyInput = Readable & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };

export interface TerminalKeys {
  pause(): void;
  resume(): void;
  close(): void;
}

const FATAL_SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGQUIT'];

export function readTerminalKeys(input: KeyInput, onKeys: (bytes: Uint8Array) => void): TerminalKeys {
  const terminal = input.isTTY === true && input.setRawMode !== undefined;
  const restore = () => input.setRawMode!(false);
  const onFatalSignal = (signal: NodeJS.Signals) => {
    close();
    process.kill(process.pid, signal); // again, now with the default action
  };
  const close = () => {
    input.off('data', onKeys);
    input.pause();
    if (!terminal) return;
    restore();
    process.off('exit', restore);
    process.off('uncaughtExceptionMonitor', restore);
    for (const s of FATAL_SIGNALS) process.off(s, onFatalSignal);
  };

  if (terminal) {
    input.setRawMode!(true);
    process.once('exit', restore);
    process.once('uncaughtExceptionMonitor', restore);
    for (const s of FATAL_SIGNALS) process.once(s, onFatalSignal);
  }
  input.on('data', onKeys);
  input.resume();
  return { pause: () => input.pause(), resume: () => input.resume(), close };
}
