/**
 * `tsvmm serve --api-sock PATH [--config-file FILE]`: a VMM driven through
 * Firecracker's API on a Unix socket. Idle until InstanceStart (or started
 * at once from the configuration file, as Firecracker does with
 * --config-file); it ends when the VM ends, with run's exit statuses, or
 * on SIGINT or SIGTERM before a VM was started.
 */
import { readFileSync } from 'node:fs';
import { handleFirecrackerRequest } from '../api/firecracker-api.js';
import { HttpUnixServer } from '../api/http-unix-server.js';
import { VmmController, type Launcher } from '../api/vmm-controller.js';
import { VmResources } from '../config/vm-resources.js';
import type { Machine } from '../vmm/machine.js';
import type { WebAddress } from '../web/web-address.js';
import { UsageError } from './fail.js';
import { parseWebFlags } from './parse.js';
import { runMachine } from './run-machine.js';

export interface ServeOptions {
  apiSock: string;
  configFile?: string;
  web?: string;
  webToken?: string;
}

/** Runs each machine the controller starts as `tsvmm run` does: console on stdio or the serial file, signals, exit status, the web console. */
const runMachineLauncher = (web: WebAddress | undefined): Launcher => (config, serialOutPath, restore) => {
  let built!: (machine: Machine) => void;
  let failed!: (e: unknown) => void;
  // Made first: runMachine hears of the machine before its first await.
  const machine = new Promise<Machine>((resolve, reject) => {
    built = resolve;
    failed = reject;
  });
  const ended = runMachine(config, {
    console: serialOutPath === undefined ? { kind: 'stdio' } : { kind: 'file', path: serialOutPath },
    linux: config.boot.kind === 'linux',
    snapshot: restore?.snapshot,
    startPaused: restore?.paused,
    onMachine: (m) => built(m),
    web,
  });
  ended.catch(failed);
  return { machine, ended };
};

/** The configuration file's resources, or a one-line error. */
export function readConfigFile(path: string): VmResources {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--config-file '${path}': ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
  return VmResources.fromConfigFile(text, path);
}

export async function serveCommand(opts: ServeOptions): Promise<number> {
  const resources = opts.configFile === undefined ? new VmResources() : readConfigFile(opts.configFile);
  const vmm = new VmmController(resources, runMachineLauncher(parseWebFlags(opts)));
  const server = await HttpUnixServer.listen(opts.apiSock, (request) => handleFirecrackerRequest(vmm, request));
  try {
    if (opts.configFile !== undefined) await vmm.start();
    return await untilEnded(vmm);
  } finally {
    vmm.metrics.flush();
    vmm.metrics.close();
    await server.close();
  }
}

/** The VM's exit status once one was started and ended; 0 on a signal while none runs (a running machine handles its own). */
function untilEnded(vmm: VmmController): Promise<number> {
  let onSignal = () => {};
  const signalled = new Promise<number>((resolve) => {
    onSignal = () => {
      if (!vmm.started) resolve(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return Promise.race([vmm.ended, signalled]).finally(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
}
