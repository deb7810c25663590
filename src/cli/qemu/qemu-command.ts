/**
 * `tsvmm qemu ARGS...` and the `tsvmm-qemu` program: a QEMU command line,
 * as test harnesses write it for `qemu-system-x86_64 -kernel ...`, run on
 * tsvmm with QEMU's exit statuses: the guest's debug-exit value
 * ((v << 1) | 1), 0 when it powers off or resets under -no-reboot (or is
 * stopped by a signal), 1 for a bad command line or a VM that cannot run.
 */
import type { VmStop } from '../../devices/vm-stop.js';
import { reportError } from '../fail.js';
import { runMachine } from '../run-machine.js';
import { parseQemuArgs } from './qemu-args.js';
import { qemuMachine } from './qemu-machine.js';

const QEMU_ERROR = 1;

/** QEMU's status for how the VM ended. */
function qemuStatus(stop: VmStop): number {
  switch (stop.kind) {
    case 'debug-exit': return stop.exitCode;
    case 'shutdown': case 'reset': case 'triple-fault': case 'stopped': return 0;
    default: return QEMU_ERROR;
  }
}

export async function qemuCommand(argv: readonly string[]): Promise<number> {
  let machine;
  try {
    machine = qemuMachine(parseQemuArgs(argv));
  } catch (e) {
    reportError(e);
    return QEMU_ERROR;
  }
  if (machine.consoleNote) process.stderr.write(`tsvmm qemu: ${machine.consoleNote}\n`);
  let last: VmStop | undefined;
  let status: number;
  try {
    status = await runMachine(machine.config, {
      console: machine.console,
      onReboot: machine.noReboot ? 'exit' : 'restart',
      tripleFaultResets: true,
      exitStatus: (stop) => {
        last = stop;
        return qemuStatus(stop);
      },
    });
  } catch (e) {
    reportError(e);
    return QEMU_ERROR;
  }
  if (machine.noShutdown && last?.kind === 'shutdown') await untilSignal();
  return status;
}

/** -no-shutdown: QEMU keeps running, the guest paused, until it is told to quit. */
function untilSignal(): Promise<void> {
  process.stderr.write('tsvmm qemu: the guest powered off; -no-shutdown keeps tsvmm here until SIGINT or SIGTERM\n');
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
