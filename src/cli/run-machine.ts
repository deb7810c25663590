/**
 * Runs a machine for the command line: console to stdout, Ctrl-C and
 * SIGTERM stop it in order, and at the end the outcome, the exit table and
 * the exit status.
 */
import { closeSync, openSync } from 'node:fs';
import { attachConsole } from '../console/attach-console.js';
import type { ConsoleMode } from '../console/console-mode.js';
import { ConsoleWatch } from '../guest/console-watch.js';
import { formatExitStats } from '../vcpu/exit-stats.js';
import { buildMachine } from '../vmm/builder.js';
import type { MachineConfig } from '../vmm/config.js';
import { formatMemoryMap } from '../vmm/memory-map.js';
import { ExitStatus } from '../vmm/stop.js';

export interface RunFlags {
  console?: ConsoleMode;
  stats?: boolean;
  traceExits?: string | boolean;
  memoryMap?: boolean;
  /** A Linux guest: watch its console for a panic and the default guest's exit marker. */
  linux?: boolean;
}

/** Returns the process exit status. */
export async function runMachine(config: Omit<MachineConfig, 'console' | 'timeExits' | 'traceFd'>, flags: RunFlags): Promise<number> {
  const traceFd = typeof flags.traceExits === 'string' ? openSync(flags.traceExits, 'w') : flags.traceExits ? 2 : -1;
  const machine = buildMachine({
    ...config,
    timeExits: flags.stats,
    traceFd,
  });
  if (flags.memoryMap) process.stderr.write(`guest-physical memory map:\n${formatMemoryMap(machine.memoryMap())}\n`);

  const consoleLink = attachConsole(machine, flags.console ?? { kind: 'stdio' }, () =>
    void machine.stop({ kind: 'stopped', exitCode: ExitStatus.OK, message: 'stopped from the console (Ctrl-A x)' }),
  );
  let commandStatus: number | undefined;
  if (flags.linux) {
    const watch = new ConsoleWatch({
      commandExit: (status) => (commandStatus = status),
      panic: (reason) =>
        void machine.stop({ kind: 'guest-error', exitCode: ExitStatus.GUEST_PANIC, message: `the guest kernel panicked: ${reason}` }),
    });
    const sink = machine.console;
    machine.console = (data) => {
      sink(data);
      watch.feed(data);
    };
  }
  const onSignal = (signal: NodeJS.Signals) => {
    const exitCode = signal === 'SIGINT' ? ExitStatus.SIGNAL_INT : ExitStatus.SIGNAL_TERM;
    void machine.stop({ kind: 'stopped', exitCode, message: `stopped by ${signal}` });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const stop = await machine.run();
    await machine.stop();
    if (stop.kind !== 'debug-exit' && stop.kind !== 'shutdown') {
      process.stderr.write(`tsvmm: ${stop.message}${stop.vcpu !== undefined ? ` (vCPU ${stop.vcpu})` : ''}\n`);
      if (stop.report) process.stderr.write(`${stop.report}\n`);
    }
    if (flags.stats) process.stderr.write(`\nVM exits:\n${formatExitStats(machine.exitStats())}\n`);
    // The default guest's command reports its status before powering off.
    return stop.kind === 'shutdown' && commandStatus !== undefined ? commandStatus : stop.exitCode;
  } finally {
    consoleLink.detach();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await machine.destroy();
    if (traceFd > 2) closeSync(traceFd);
  }
}
