/**
 * Runs a machine for the command line: console on the terminal (or a
 * file), Ctrl-C and SIGTERM stop it in order, a guest reboot ends the run
 * or restarts the guest, and at the end the outcome, the exit table and the
 * exit status.
 */
import { closeSync, openSync } from 'node:fs';
import { attachConsole } from '../console/attach-console.js';
import type { ConsoleMode } from '../console/console-mode.js';
import { ConsoleWatch } from '../guest/console-watch.js';
import { formatExitStats } from '../vcpu/exit-stats.js';
import { buildMachine } from '../vmm/builder.js';
import type { MachineConfig } from '../vmm/config.js';
import type { Machine } from '../vmm/machine.js';
import { formatMemoryMap } from '../vmm/memory-map.js';
import { ExitStatus, type VmStop } from '../devices/vm-stop.js';
import type { LoadedSnapshot } from '../snapshot/vm-snapshot.js';
import type { WebAddress } from '../web/web-address.js';
import type { Dashboard } from '../web/dashboard.js';

export interface RunFlags {
  console?: ConsoleMode;
  stats?: boolean;
  traceExits?: string | boolean;
  memoryMap?: boolean;
  /** What a guest reboot does: end the run (as QEMU's -no-reboot) or start the guest again. */
  onReboot?: 'exit' | 'restart';
  /** A Linux guest: watch its console for a panic and the default guest's exit marker. */
  linux?: boolean;
  /** As on a PC (and in QEMU): a triple fault resets the machine, as a reset request does. */
  tripleFaultResets?: boolean;
  /** The process status for how the VM ended (default: the stop's own, or the default guest's command's). */
  exitStatus?: (stop: VmStop) => number;
  /** The first machine is this snapshot's, not one booted afresh. */
  snapshot?: LoadedSnapshot;
  /** The first machine starts paused, until something (the API) resumes it. */
  startPaused?: boolean;
  /** Serve the web console and dashboard here, for every machine of the run. */
  web?: WebAddress;
  /** Hears each machine once it is built (the API server pauses and resumes it). */
  onMachine?: (machine: Machine) => void;
}

/** Addresses from here up are the kernel's half of a 4-level x86-64 address space. */
const KERNEL_HALF = 0xffff_8000_0000_0000n;

/**
 * Why init died, when the kernel says it faulted in user mode at a kernel address on a software backend.
 * Measured on kvm_pvm: a SYSCALL from guest ring 3 lands on the kernel's entry point still in ring 3,
 * so the kernel's entry code faults in user mode and the first process dies on its first system call.
 */
const softwareBackendUserSpace = (ip: bigint): string =>
  `init (pid 1) faulted in user mode at 0x${ip.toString(16)}, a kernel address: the host KVM backend is a software one, ` +
  'and on it a system call from guest user space reaches the kernel\'s entry point without switching the vCPU to ring 0, ' +
  'so the first process dies on its first system call. The kernel itself booted; user space needs hardware KVM.';

type RunConfig = Omit<MachineConfig, 'console' | 'timeExits' | 'traceFd'>;

/** Returns the process exit status. */
export async function runMachine(config: RunConfig, flags: RunFlags): Promise<number> {
  const traceFd = typeof flags.traceExits === 'string' ? openSync(flags.traceExits, 'w') : flags.traceExits ? 2 : -1;
  // Signals stop whichever machine is running, and any restart that would follow it.
  const signals: { stop?: VmStop; machine?: Machine } = {};
  const onSignal = (signal: NodeJS.Signals) => {
    const exitCode = signal === 'SIGINT' ? ExitStatus.SIGNAL_INT : ExitStatus.SIGNAL_TERM;
    signals.stop ??= { kind: 'stopped', exitCode, message: `stopped by ${signal}` };
    void signals.machine?.stop(signals.stop);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let dashboard: Dashboard | undefined;
  try {
    if (flags.web) {
      dashboard = await (await import('../web/dashboard.js')).Dashboard.open(flags.web);
      process.stderr.write(`tsvmm: web console at ${dashboard.server.url}\n`);
    }
    for (let boot = 1; ; boot++) {
      const { stop, status } = await runOnce(config, flags, traceFd, boot === 1, signals, dashboard);
      const resets = stop.kind === 'reset' || (flags.tripleFaultResets === true && stop.kind === 'triple-fault');
      if (!resets || flags.onReboot !== 'restart' || signals.stop) {
        return flags.exitStatus?.(signals.stop ?? stop) ?? signals.stop?.exitCode ?? status;
      }
      process.stderr.write(`tsvmm: the guest rebooted; starting it again (boot ${boot + 1})\n`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (traceFd > 2) closeSync(traceFd);
    await dashboard?.close();
  }
}

async function runOnce(
  config: RunConfig,
  flags: RunFlags,
  traceFd: number,
  first: boolean,
  signals: { stop?: VmStop; machine?: Machine },
  dashboard: Dashboard | undefined,
): Promise<{ stop: VmStop; status: number }> {
  const options = { timeExits: flags.stats, traceFd };
  const machine = first && flags.snapshot ? flags.snapshot.build(options) : buildMachine({ ...config, ...options });
  signals.machine = machine;
  try {
    flags.onMachine?.(machine);
  } catch (e) {
    // Its workers would keep the process alive.
    signals.machine = undefined;
    await machine.destroy();
    throw e;
  }
  if (signals.stop) void machine.stop(signals.stop);
  if (flags.memoryMap && first) process.stderr.write(`guest-physical memory map:\n${formatMemoryMap(machine.memoryMap())}\n`);

  const consoleLink = attachConsole(machine, flags.console ?? { kind: 'stdio' }, () =>
    void machine.stop({ kind: 'stopped', exitCode: ExitStatus.OK, message: 'stopped from the console (Ctrl-A x)' }),
  );
  const commandStatus = flags.linux ? watchLinuxConsole(machine) : () => undefined;
  const webLink = dashboard?.attach(machine);
  try {
    const stop = signals.stop ?? (await machine.run({ paused: first && flags.startPaused }));
    await machine.stop();
    dashboard?.machineEnded(machine, stop);
    if (stop.kind !== 'debug-exit' && stop.kind !== 'shutdown') {
      process.stderr.write(`tsvmm: ${stop.message}${stop.vcpu !== undefined ? ` (vCPU ${stop.vcpu})` : ''}\n`);
      if (stop.report) process.stderr.write(`${stop.report}\n`);
    }
    if (flags.stats) process.stderr.write(`\nVM exits:\n${formatExitStats(machine.exitStats())}\n`);
    // The default guest's command reports its status before powering off.
    const status = commandStatus();
    return { stop, status: stop.kind === 'shutdown' && status !== undefined ? status : stop.exitCode };
  } finally {
    webLink?.();
    consoleLink.detach();
    signals.machine = undefined;
    await machine.destroy();
  }
}

/** Ends the run on a kernel panic; returns a getter for the default guest's command status. */
function watchLinuxConsole(machine: Machine): () => number | undefined {
  let commandStatus: number | undefined;
  let initFaultIp: bigint | undefined;
  const watch = new ConsoleWatch({
    commandExit: (status) => (commandStatus = status),
    initFault: (ip) => (initFaultIp = ip),
    panic: (reason) =>
      void machine.stop({
        kind: 'guest-error', exitCode: ExitStatus.GUEST_PANIC, message: `the guest kernel panicked: ${reason}`,
        report:
          machine.emulationAssist && /kill init/.test(reason) && initFaultIp !== undefined && initFaultIp >= KERNEL_HALF
            ? softwareBackendUserSpace(initFaultIp)
            : undefined,
      }),
  });
  const sink = machine.console;
  machine.console = (data) => {
    sink(data);
    watch.feed(data);
  };
  return () => commandStatus;
}
