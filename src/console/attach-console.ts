/**
 * Connects a machine's serial console to the host: output to the terminal,
 * a file or nowhere, and in terminal mode the keys typed to the guest's
 * UART, with QEMU's Ctrl-A commands (Ctrl-A x quits, Ctrl-A h helps).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Machine } from '../vmm/machine.js';
import type { ConsoleMode } from './console-mode.js';
import { ESCAPE_HELP, EscapeKeys } from './escape-keys.js';
import { serialInputOf } from './serial-input.js';
import { readTerminalKeys, type KeyInput } from './terminal-keys.js';

export interface AttachedConsole {
  /** Disconnects: input stops, the terminal is restored, a console file is closed, later output is dropped. */
  detach(): void;
}

/** The streams of terminal mode; the process's own unless a test passes others. */
export interface ConsoleStreams {
  input: KeyInput;
  output: Writable;
  /** Where the console's own messages (Ctrl-A h) go. */
  messages: Writable;
}

/** Keys keep coming while the guest is slow to read, so Ctrl-A x always works; only a flood this large pauses them. */
const PAUSE_INPUT_ABOVE = 1 << 20;

const processStreams = (): ConsoleStreams => ({ input: process.stdin, output: process.stdout, messages: process.stderr });
const discard = () => {};

export function attachConsole(machine: Machine, mode: ConsoleMode, onQuit: () => void, streams?: ConsoleStreams): AttachedConsole {
  switch (mode.kind) {
    case 'none':
      machine.console = discard;
      return { detach: discard };
    case 'file':
      return attachFile(machine, mode.path);
    case 'stdio':
      return attachTerminal(machine, onQuit, streams ?? processStreams());
  }
}

function attachFile(machine: Machine, path: string): AttachedConsole {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    throw new Error(`cannot open the console file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  machine.console = (data) => writeSync(fd, data);
  return {
    detach() {
      machine.console = discard;
      closeSync(fd);
    },
  };
}

function attachTerminal(machine: Machine, onQuit: () => void, { input, output, messages }: ConsoleStreams): AttachedConsole {
  // Whoever reads our output went away (`tsvmm run | head`): stop writing and end the run, as QEMU does.
  const onOutputError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    machine.console = discard;
    onQuit();
  };
  output.on('error', onOutputError);
  machine.console = (data) => output.write(data);
  const serial = serialInputOf(machine, () => keys.resume());
  const escapes = new EscapeKeys({
    guest: (bytes) => {
      serial?.send(bytes);
      if (serial !== undefined && serial.pending > PAUSE_INPUT_ABOVE) keys.pause();
    },
    quit: onQuit,
    help: () => messages.write(`\n${ESCAPE_HELP}\n`),
    // The API's pause: every vCPU out of KVM_RUN, the guest's clock stopped with it.
    pauseOrResume: () => {
      if (machine.state === 'paused') {
        machine.resume();
        messages.write('\ntsvmm: resumed\n');
      } else if (machine.state === 'running') {
        void machine.pause().then(() => messages.write('\ntsvmm: paused (Ctrl-A p resumes)\n'));
      }
    },
  });
  const keys = readTerminalKeys(input, (bytes) => escapes.feed(bytes));
  // Ctrl-C now goes to the guest: say how to get out.
  if (input.isTTY) messages.write('tsvmm: keys go to the guest; Ctrl-A x quits, Ctrl-A h helps\n');
  return {
    detach() {
      keys.close();
      serial?.close();
      output.off('error', onOutputError);
      machine.console = discard;
    },
  };
}
