/**
 * One VMM as the API sees it: the user's configuration (VmResources) until
 * InstanceStart, then the running machine, its state (Not started,
 * Running, Paused), and the logger and metrics the API sets up. How a
 * machine is run (console, signals, reboots) is the caller's: it hands
 * the controller a `launch` function.
 */
import type { Machine } from '../vmm/machine.js';
import type { RateLimiterConfig } from '../devices/virtio/rate-limiter.js';
import type { LimiterTarget } from '../vmm/rate-limits.js';
import type { MachineConfig } from '../vmm/config.js';
import { configViewOf, type VmResources } from '../config/vm-resources.js';
import { ApiError } from './http-unix-server.js';
import { Metrics } from './metrics.js';
import { ApiLogger } from './api-logger.js';
import { loadSnapshot, snapshotMachine, type LoadedSnapshot, type RestoreOverrides, type SnapshotKind } from '../snapshot/vm-snapshot.js';

export type InstanceState = 'Not started' | 'Running' | 'Paused';

export interface Launch {
  /** Resolves with the machine once it is built and starting; rejects if it cannot be built. */
  machine: Promise<Machine>;
  /** Resolves with the process status once the VM has ended. */
  ended: Promise<number>;
}

/** A snapshot to restore instead of booting, whether the restored VM waits for PATCH /vm Resumed, and whether it tracks dirty pages. */
export interface Restore {
  snapshot: LoadedSnapshot;
  paused: boolean;
}

export type Launcher = (config: Omit<MachineConfig, 'console'>, serialOutPath: string | undefined, restore?: Restore) => Launch;

export const NOT_AFTER_START = 'The requested operation is not supported after starting the microVM.';
export const NOT_BEFORE_START = 'The requested operation is not supported before starting the microVM.';

export class VmmController {
  private machine?: Machine;
  private launched?: Launch;
  private settleEnded!: { resolve: (status: number) => void; reject: (e: unknown) => void };
  /** Resolves with the process status once a started VM has ended. */
  readonly ended = new Promise<number>((resolve, reject) => (this.settleEnded = { resolve, reject }));
  readonly metrics = new Metrics(() => this.machine?.exitStats(), () => this.machine?.deviceStats());
  readonly logger = new ApiLogger();

  constructor(
    readonly resources: VmResources,
    private readonly launcher: Launcher,
    readonly instanceId = 'anonymous-instance',
  ) {}

  private adoptedView?: ReturnType<typeof configViewOf>;
  /** What the running machine was built from, for snapshots. */
  private config?: Omit<MachineConfig, 'console'>;

  /** A machine started elsewhere (`tsvmm run --api-sock`) from `config`: the API sees it running from the first request. */
  adopt(machine: Machine, config: Omit<MachineConfig, 'console'>): void {
    this.machine = machine;
    this.config = config;
    this.adoptedView = configViewOf(config);
  }

  /** PUT /snapshot/create: the paused VM's state and memory to files. */
  snapshot(statePath: string, memoryPath: string, kind: SnapshotKind): void {
    const { machine, config } = this;
    if (machine === undefined || config === undefined) throw new ApiError(NOT_BEFORE_START);
    if (machine.state !== 'paused') throw new ApiError('Cannot create a snapshot of a running microVM: pause it first (PATCH /vm Paused).');
    try {
      snapshotMachine(machine, config, statePath, memoryPath, kind);
    } catch (e) {
      throw new ApiError(`Cannot create the snapshot: ${(e as Error).message}`);
    }
    this.logger.info(`snapshot written to ${statePath} and ${memoryPath}`);
  }

  machineConfigView(): unknown {
    return this.adoptedView?.machine ?? this.resources.machineConfigView();
  }

  fullConfigView(): unknown {
    return this.adoptedView?.full ?? this.resources.fullConfigView();
  }

  get state(): InstanceState {
    if (this.machine === undefined) return 'Not started';
    return this.machine.state === 'paused' ? 'Paused' : 'Running';
  }

  get started(): boolean {
    return this.machine !== undefined;
  }

  /** InstanceStart: builds the machine from the configuration and lets it run. */
  async start(): Promise<void> {
    if (this.started || this.launched) throw new ApiError(NOT_AFTER_START);
    await this.launch(this.resources.machineConfig());
    this.logger.info('the microVM started');
  }

  /** PUT /snapshot/load: the snapshot's machine instead of one booted; paused unless `resume`. */
  async load(statePath: string, memoryPath: string, resume: boolean, overrides: RestoreOverrides = {}): Promise<void> {
    if (this.started || this.launched) throw new ApiError('Loading a microVM snapshot is not allowed after the microVM started.');
    if (this.resources.configured) throw new ApiError('Loading a microVM snapshot is not allowed after configuring boot-specific resources.');
    let snapshot: LoadedSnapshot;
    try {
      snapshot = loadSnapshot(statePath, memoryPath).withOverrides(overrides);
    } catch (e) {
      throw new ApiError(`Cannot load the snapshot: ${(e as Error).message}`);
    }
    await this.launch(snapshot.config, { snapshot, paused: !resume });
    this.logger.info(`the microVM was restored from ${statePath} and ${memoryPath}`);
  }

  private async launch(config: Omit<MachineConfig, 'console'>, restore?: Restore): Promise<void> {
    this.config = config;
    const launch = this.launcher(config, this.resources.serialOutPath, restore);
    this.launched = launch;
    try {
      const machine = await launch.machine;
      // Answered once the VM runs (or, restored, waits paused), as Firecracker answers.
      await Promise.race([machine.started, launch.ended]);
      this.machine = machine;
      launch.ended.then(this.settleEnded.resolve, this.settleEnded.reject);
    } catch (e) {
      this.launched = undefined;
      throw new ApiError(`Failed to start microVM: ${(e as Error).message}`);
    }
  }

  async setState(state: 'Paused' | 'Resumed'): Promise<void> {
    const machine = this.machine;
    if (machine === undefined) throw new ApiError(NOT_BEFORE_START);
    if (state === 'Paused') await machine.pause();
    else machine.resume();
    this.logger.info(`the microVM is ${state.toLowerCase()}`);
  }

  /** PATCH /drives/{id} and /network-interfaces/{id}: a running device's rate limiter changes. */
  updateRateLimiter(target: LimiterTarget, update: RateLimiterConfig): void {
    if (this.machine === undefined) throw new ApiError(NOT_BEFORE_START);
    try {
      this.machine.updateRateLimiter(target, update);
    } catch (e) {
      throw new ApiError((e as Error).message);
    }
    this.logger.info(`the rate limiter of ${'disk' in target ? `drive ${target.disk}` : `network interface ${target.net} (${target.direction})`} changed`);
  }

  exitStats() {
    return this.machine?.exitStats();
  }
}
