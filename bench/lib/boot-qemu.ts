/**
 * QEMU for the boot benchmark: found, or installed from Debian's
 * qemu-system-x86 package when the benchmark runs as root, and the
 * command lines that start the benchmark's guest on its `pc` and
 * `microvm` machines.
 */
import { spawnSync } from 'node:child_process';
import { BenchSetupError } from './c-loop.js';
import { MULTIBOOT_STATUS } from './boot-guest.js';
import type { Contender } from './boot-spawn.js';

export const QEMU = 'qemu-system-x86_64';
const QEMU_PACKAGE = 'qemu-system-x86';

export type QemuMachine = 'pc' | 'microvm';

/** The flags every QEMU run here shares: KVM, no default devices, no display, end instead of rebooting. */
export function qemuBaseArgs(machine: QemuMachine): string[] {
  return ['-accel', 'kvm', '-M', machine, '-nodefaults', '-nographic', '-no-reboot'];
}

export function qemuContender(machine: QemuMachine, elf: string): Contender {
  return {
    key: `qemu_${machine}`,
    label: `QEMU -M ${machine}`,
    command: QEMU,
    args: [...qemuBaseArgs(machine), '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x01', '-kernel', elf],
    // isa-debug-exit ends QEMU with (value << 1) | 1, as tsvmm's debug-exit port does.
    status: MULTIBOOT_STATUS,
  };
}

/** QEMU's version line; installs QEMU first when it is missing and we are root. */
export function ensureQemu(log: (line: string) => void): string {
  const version = qemuVersion();
  if (version !== undefined) return version;
  if (process.getuid?.() !== 0) {
    throw new BenchSetupError(`${QEMU} was not found: install it as root with 'apt-get install -y ${QEMU_PACKAGE}' and run the benchmark again`);
  }
  log(`${QEMU} was not found: running 'apt-get install -y ${QEMU_PACKAGE}'`);
  if (!aptGet(['install', '-y', QEMU_PACKAGE])) {
    log(`that failed: running 'apt-get update', then the install again`);
    if (!aptGet(['update']) || !aptGet(['install', '-y', QEMU_PACKAGE])) {
      throw new BenchSetupError(`'apt-get install -y ${QEMU_PACKAGE}' failed (its output is above): install QEMU and run the benchmark again`);
    }
  }
  const installed = qemuVersion();
  if (installed === undefined) throw new BenchSetupError(`${QEMU_PACKAGE} is installed but ${QEMU} still does not run`);
  return installed;
}

function qemuVersion(): string | undefined {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.split('\n')[0].trim();
}

/** apt-get's output goes to stderr, so that --json keeps stdout to its one line. */
function aptGet(args: string[]): boolean {
  const r = spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return !r.error && r.status === 0;
}
