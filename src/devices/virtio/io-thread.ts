/**
 * The main thread's handle on a virtio device's I/O thread: a worker that
 * waits on the device's queue eventfds (which KVM signals on the guest's
 * notifications, with no VM exit) and serves the queues, so a slow device
 * never holds up a vCPU.
 *
 * The main thread asks the thread to pause, run or stop through a control
 * word and wakes it with an eventfd (it sleeps in poll()); a paused thread
 * touches neither guest memory nor the queues (nor does the host kernel,
 * for a vhost device), so a snapshot sees the device at rest.
 */
import { Worker } from 'node:worker_threads';
import { signalEventfd } from '../../kvm/libc.js';
import type { RamAddresses } from '../../memory/mapping.js';
import type { PlacedVirtioSpec } from '../pci-functions.js';

export interface VirtioWorkerData {
  spec: PlacedVirtioSpec;
  /** The function's shared state, as the vCPU threads see it. */
  state: SharedArrayBuffer;
  ram: RamAddresses;
  /** Signalled when the control word changes. */
  wakeFd: number;
  /** Int32Array over this, indexed by IoControl. */
  control: SharedArrayBuffer;
  /** The VM was restored from a snapshot: the device starts over state a process before this one served. */
  restored: boolean;
}

/** The control word: what the main thread asks for (IoRequest), and where the thread stands (PAUSED or not). */
export const IoControl = { REQUEST: 0, PAUSED: 1 } as const;
export const IoRequest = { RUN: 0, PAUSE: 1, STOP: 2 } as const;

export function ioControl(): SharedArrayBuffer {
  return new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
}

export type VirtioWorkerMessage = { type: 'ready' } | { type: 'report'; message: string };

export class VirtioIoThread {
  private exited?: Promise<void>;
  private readonly control: Int32Array;

  constructor(private readonly data: VirtioWorkerData) {
    this.control = new Int32Array(data.control);
  }

  /** Starts the thread; resolves once it waits for notifications. `report` hears the device's errors. */
  start(report: (message: string) => void): Promise<void> {
    const worker = new Worker(new URL('./io-worker.js', import.meta.url), { workerData: this.data });
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      worker.on('message', (m: VirtioWorkerMessage) => {
        if (m.type === 'ready') resolve();
        else report(m.message);
      });
      worker.once('error', (e) => {
        report(`${this.data.spec.kind} I/O thread failed: ${e.message}`);
        reject(e);
      });
    });
  }

  /** Resolves once the thread has stopped serving (or ended). */
  async pause(): Promise<void> {
    if (this.exited === undefined) return;
    Atomics.store(this.control, IoControl.PAUSED, 0);
    this.request(IoRequest.PAUSE);
    let ended = false;
    void this.exited.then(() => (ended = true));
    while (!ended && Atomics.load(this.control, IoControl.PAUSED) === 0) {
      const { value } = Atomics.waitAsync(this.control, IoControl.PAUSED, 0, 50);
      await value;
    }
  }

  resume(): void {
    Atomics.store(this.control, IoControl.PAUSED, 0);
    this.request(IoRequest.RUN);
  }

  /** Ends the thread and waits until it has. */
  async stop(): Promise<void> {
    if (this.exited === undefined) return;
    this.request(IoRequest.STOP);
    await this.exited;
  }

  /** A paused thread waits on the word, a running one in poll() on the eventfd: both are woken. */
  private request(request: number): void {
    Atomics.store(this.control, IoControl.REQUEST, request);
    Atomics.notify(this.control, IoControl.REQUEST);
    signalEventfd(this.data.wakeFd);
  }
}
