/**
 * `tsvmm run`: a raw binary in a chosen CPU mode, or a multiboot kernel.
 */
import type { CpuMode } from '../arch/x86/cpu-modes.js';
import type { MultibootModule } from '../boot/multiboot.js';
import type { DeviceSpec } from '../devices/registry.js';
import { defaultDevices, MAX_CPUS, type BootSource } from '../vmm/config.js';
import { parseConsoleMode } from '../console/console-mode.js';
import { UsageError } from './fail.js';
import { parseAddress, parseCount, parseMemorySize, readUserFile } from './parse.js';
import { runMachine, type RunFlags } from './run-machine.js';

export interface RunOptions extends Omit<RunFlags, 'console'> {
  console: string;
  raw?: string;
  mode: CpuMode;
  loadAddr: string;
  entry?: string;
  user?: boolean;
  kernel?: string;
  append?: string;
  module: string[];
  mem: string;
  cpus: string;
  testDevice?: string;
}

export async function runCommand(opts: RunOptions): Promise<number> {
  const devices: DeviceSpec[] = [...defaultDevices];
  if (opts.testDevice !== undefined) devices.push({ kind: 'test-device', base: parseAddress('--test-device')(opts.testDevice) });
  return runMachine(
    { memory: parseMemorySize(opts.mem), cpus: parseCount('--cpus', MAX_CPUS)(opts.cpus), boot: bootSource(opts), devices },
    { ...opts, console: parseConsoleMode(opts.console) },
  );
}

function bootSource(opts: RunOptions): BootSource {
  if (opts.raw !== undefined && opts.kernel !== undefined) throw new UsageError('give either --raw or --kernel, not both');
  if (opts.raw !== undefined) {
    if (opts.user && opts.mode !== 'long') throw new UsageError('--user needs --mode long');
    return {
      kind: 'raw',
      image: readUserFile('raw image', opts.raw),
      mode: opts.mode,
      loadAddr: parseAddress('--load-addr')(opts.loadAddr),
      entry: opts.entry === undefined ? undefined : parseAddress('--entry')(opts.entry),
      user: opts.user,
    };
  }
  if (opts.kernel !== undefined) {
    const modules: MultibootModule[] = opts.module.map((spec) => {
      const [path, ...args] = spec.split(',');
      return { data: readUserFile('module', path), cmdline: [path, ...args].join(' ') };
    });
    return { kind: 'multiboot', image: readUserFile('kernel', opts.kernel), cmdline: opts.append ?? '', modules };
  }
  throw new UsageError('nothing to run: give --raw FILE or --kernel FILE (or try `tsvmm demo`)');
}
