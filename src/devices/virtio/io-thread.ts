/**
 * The main thread's handle on a virtio device's I/O thread: a worker that
 * waits on the device's queue eventfds (which KVM signals on the guest's
 * notifications, with no VM exit) and serves the queues, so a slow device
 * never holds up a vCPU.
 */
import { Worker } from 'node:worker_threads';
import { signalEventfd } from '../../kvm/libc.js';
import type { RamRange } from '../../memory/layout.js';
import type { PlacedVirtioSpec } from '../pci-functions.js';

export interface VirtioWorkerData {
  spec: PlacedVirtioSpec;
  /** The function's shared state, as the vCPU threads see it. */
  state: SharedArrayBuffer;
  memfd: number;
  ram: RamRange[];
  /** Signalled to end the thread. */
  stopFd: number;
}

export type VirtioWorkerMessage = { type: 'ready' } | { type: 'report'; message: string };

export class VirtioIoThread {
  private exited?: Promise<void>;

  constructor(private readonly data: VirtioWorkerData) {}

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

  /** Ends the thread and waits until it has. */
  async stop(): Promise<void> {
    if (this.exited === undefined) return;
    signalEventfd(this.data.stopFd);
    await this.exited;
  }
}
