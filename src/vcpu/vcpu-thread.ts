/**
 * The main thread's handle on a vCPU worker: start it, pause and resume
 * it, kick it out of KVM_RUN, and stop it.
 *
 * A kick sets kvm_run.immediate_exit and then signals the worker thread:
 * the flag covers a worker that is about to enter KVM_RUN, the signal one
 * that is already inside.
 */
import { Worker } from 'node:worker_threads';
import { pthreadKill } from '../kvm/libc.js';
import type { KvmRun } from '../kvm/kvm-run.js';
import type { VmStop } from '../devices/vm-stop.js';
import { MP_STATE_HALTED, MP_STATE_RUNNABLE } from '../kvm/vcpu.js';
import {
  Control, CONTROL_SLOTS, HOT_ENTRIES, Kick, MAX_EXIT_REASON, Probe, PROBE_SLOTS, ProbeSlot, Request, State, STATS_SLOTS,
  type VcpuWorkerData, type WorkerMessage,
} from './protocol.js';

const KICK_SIGNAL = 'SIGUSR2';
const SIGUSR2 = 12;
let signalHandlerInstalled = false;

/** KVM_RUN only returns -EINTR for a signal that has a handler; the default action would kill the process. */
function installKickHandler(): void {
  if (signalHandlerInstalled) return;
  process.on(KICK_SIGNAL, () => {});
  signalHandlerInstalled = true;
}

/** Where a vCPU stands, as a probe found it. */
export interface VcpuSample {
  /** 'waiting': for an INIT or SIPI (an AP the guest has not started); 'busy': it did not answer in time. */
  state: 'running' | 'halted' | 'waiting' | 'paused' | 'stopped' | 'busy';
  rip?: bigint;
  /** The busiest ports and MMIO addresses since the first sample, [address, exits], busiest first. */
  ports: [number, number][];
  mmio: [number, number][];
}

export interface VcpuThreadEvents {
  console(data: Uint8Array, seq: number): void;
  stop(stop: VmStop): void;
}

export class VcpuThread {
  readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
  readonly stats = new Float64Array(new SharedArrayBuffer(STATS_SLOTS * 2 * 8));
  private readonly probe = new Float64Array(new SharedArrayBuffer(PROBE_SLOTS * 8));
  private thread?: bigint;
  private exited?: Promise<void>;
  private ready?: Promise<void>;

  constructor(
    readonly id: number,
    private readonly run: KvmRun,
  ) {
    // The worker starts paused: spawning it (~50 ms) happens when the machine is built, running it on start().
    Atomics.store(this.control, Control.REQUEST, Request.PAUSE);
  }

  /** Creates the worker thread, which waits, paused, for start(). */
  spawn(data: Omit<VcpuWorkerData, 'control' | 'stats' | 'probe'>, events: VcpuThreadEvents): void {
    this.ready = this.createWorker(data, events);
    this.ready.catch(() => {}); // reported through events.stop; started() rethrows
  }

  /** Resolves once the thread waits, paused, for its first resume(). */
  async started(): Promise<void> {
    if (this.ready === undefined) throw new Error(`vCPU ${this.id} has no thread`);
    await this.ready;
  }

  private createWorker(data: Omit<VcpuWorkerData, 'control' | 'stats' | 'probe'>, events: VcpuThreadEvents): Promise<void> {
    installKickHandler();
    const worker = new Worker(new URL('./vcpu-worker.js', import.meta.url), {
      workerData: { ...data, control: this.control.buffer, stats: this.stats.buffer, probe: this.probe.buffer } satisfies VcpuWorkerData,
    });
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          this.thread = m.thread;
          resolve();
        } else if (m.type === 'console') {
          events.console(m.data, m.seq);
        } else {
          events.stop(m.stop);
        }
      });
      worker.once('error', (e) => {
        reject(e);
        events.stop({ kind: 'guest-error', exitCode: 2, message: `vCPU ${this.id} thread failed: ${e.message}`, vcpu: this.id });
      });
    });
  }

  get state(): number {
    return Atomics.load(this.control, Control.STATE);
  }

  /** Forces the worker out of KVM_RUN so it looks at its request. */
  kick(): void {
    this.run.immediateExit = true;
    if (this.thread === undefined) return;
    if (Atomics.compareExchange(this.control, Control.KICK, Kick.IDLE, Kick.SIGNALLING) !== Kick.IDLE) return;
    try {
      pthreadKill(this.thread, SIGUSR2);
    } finally {
      Atomics.store(this.control, Control.KICK, Kick.IDLE);
      Atomics.notify(this.control, Control.KICK);
    }
  }

  /** Asks the worker whether its vCPU can still wake; resolves once it has answered (false if it did not). */
  async probeStuck(timeoutMs: number): Promise<boolean> {
    return (await this.askProbe(timeoutMs)) && Atomics.load(this.control, Control.STUCK) === 1;
  }

  /** Where the vCPU stands now: a running one is kicked out of KVM_RUN once to tell. */
  async sample(timeoutMs: number): Promise<VcpuSample> {
    // From the first sample on, the worker also counts exits by address (a Map update an exit, kept off the path till then).
    Atomics.store(this.control, Control.WATCHED, 1);
    const state = this.state;
    const busiest = (space: number) =>
      Array.from({ length: HOT_ENTRIES }, (_, i): [number, number] => {
        const at = ProbeSlot.HOT + (space * HOT_ENTRIES + i) * 2;
        return [this.probe[at], this.probe[at + 1]];
      }).filter(([, exits]) => exits > 0);
    const seen = { ports: busiest(0), mmio: busiest(1) };
    if (state === State.PAUSED) return { state: 'paused', ...seen };
    if (state !== State.RUNNING) return { state: state === State.STOPPED ? 'stopped' : 'waiting', ...seen };
    if (!(await this.askProbe(timeoutMs))) return { state: 'busy', ...seen };
    const mp = this.probe[ProbeSlot.MP_STATE];
    const rip = (BigInt(this.probe[ProbeSlot.RIP_HIGH]) << 32n) | BigInt(this.probe[ProbeSlot.RIP_LOW]);
    const now = mp === MP_STATE_RUNNABLE ? 'running' : mp === MP_STATE_HALTED ? 'halted' : 'waiting';
    return { state: now, rip, ports: busiest(0), mmio: busiest(1) };
  }

  /** Kicks the worker to answer a probe; true once it has. */
  private async askProbe(timeoutMs: number): Promise<boolean> {
    if (this.state !== State.RUNNING) return false;
    Atomics.store(this.control, Control.PROBE, Probe.ASKED);
    this.kick();
    return (await Atomics.waitAsync(this.control, Control.PROBE, Probe.ASKED, timeoutMs).value) !== 'timed-out';
  }

  /** Exits taken so far (all reasons). */
  get exitCount(): number {
    let n = 0;
    for (let reason = 0; reason < MAX_EXIT_REASON; reason++) n += this.stats[reason * 2];
    return n;
  }

  async pause(): Promise<void> {
    if (this.state === State.STOPPED) return;
    Atomics.store(this.control, Control.REQUEST, Request.PAUSE);
    this.kick();
    await this.waitForState(State.PAUSED);
  }

  resume(): void {
    Atomics.store(this.control, Control.REQUEST, Request.RUN);
    Atomics.notify(this.control, Control.REQUEST);
  }

  /** Stops the worker and waits until its thread has ended. */
  async stop(): Promise<void> {
    Atomics.store(this.control, Control.REQUEST, Request.STOP);
    Atomics.notify(this.control, Control.REQUEST);
    if (this.state !== State.STOPPED) this.kick();
    await this.exited;
  }

  private async waitForState(wanted: number): Promise<void> {
    for (;;) {
      const now = Atomics.load(this.control, Control.STATE);
      if (now === wanted || now === State.STOPPED) return;
      await Atomics.waitAsync(this.control, Control.STATE, now).value;
    }
  }
}
