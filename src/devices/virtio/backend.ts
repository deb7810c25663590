/**
 * Serves a virtio device's queues: on a notification, takes the chains the
 * driver made available, lets the device fill them, returns them in the
 * used ring and interrupts the driver when it asked to be.
 *
 * It runs on the device's I/O thread, but knows nothing of threads: tests
 * call notify() directly. The shared registers are touched with the lock
 * held; guest memory is used outside it, with the transport marked busy so
 * a reset waits (the driver sees status 0 only once the buffers are back).
 *
 * A driver error (a bad ring or chain) sets NEEDS_RESET, is reported once,
 * and stops the queues until the driver resets the device; nothing thrown
 * while serving leaves notify().
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { VirtioDevice } from './device.js';
import { Feature } from './features.js';
import type { VirtioPciDevice } from './pci-transport.js';
import { SplitQueue } from './queue.js';

export class VirtioBackend {
  private queues: (SplitQueue | undefined)[] = [];
  private generation = -1;

  constructor(
    private readonly fn: VirtioPciDevice,
    private readonly memory: GuestMemory,
    private readonly device: VirtioDevice,
    /** Told, once per reset, why the device stopped. */
    private readonly report: (message: string) => void,
  ) {}

  /** The driver notified queue `queue`, or a source that feeds it became readable. */
  notify(queue: number): void {
    const ready = this.fn.state.locked(() => this.begin(queue));
    if (ready === undefined) {
      this.device.unserved?.(queue);
      return;
    }
    let interrupt = false;
    let failure: string | undefined;
    const usedBefore = ready.usedIndex;
    try {
      if (this.device.serveQueue) {
        this.device.serveQueue(queue, ready, this.memory);
      } else {
        const { device } = this;
        ready.serveAll((chain) => device.serve(queue, chain, this.memory), device.admit && ((chain) => device.admit!(queue, chain)));
      }
    } catch (e) {
      failure = (e as Error).message;
    }
    try {
      interrupt = ready.needsInterrupt(usedBefore);
    } catch (e) {
      failure ??= (e as Error).message;
    }
    this.fn.state.locked(() => this.end(queue, ready, interrupt, failure));
  }

  /** With the lock: the queue to serve, marked busy, or undefined when there is nothing to do. */
  private begin(queue: number): SplitQueue | undefined {
    const t = this.fn.transport;
    if (t.generation !== this.generation) {
      // The device was reset: the driver starts its rings again from index 0.
      if (this.generation !== -1) this.device.reset?.();
      this.queues = [];
      this.generation = t.generation;
    }
    if (!this.fn.canServe(queue)) return undefined;
    let ready = this.queues[queue];
    if (ready === undefined) {
      const r = t.queue(queue);
      const features = t.driverFeatures;
      try {
        ready = new SplitQueue(
          this.memory,
          { size: r.size, desc: Number(r.desc), driver: Number(r.driver), device: Number(r.device) },
          {
            maxSize: this.device.info.queueSizes[queue],
            eventIdx: (features & Feature.EVENT_IDX) !== 0n,
            indirect: (features & Feature.INDIRECT_DESC) !== 0n,
            // Where an earlier I/O thread (or process) left the ring; 0 and 0 after a reset.
            start: t.ringIndices(queue),
          },
        );
      } catch (e) {
        this.fail(queue, (e as Error).message);
        return undefined;
      }
      this.queues[queue] = ready;
      this.device.negotiated?.(features);
    }
    t.busy = true;
    return ready;
  }

  /** With the lock: hand the queue back, finish a reset the driver asked for meanwhile, interrupt. */
  private end(queue: number, ready: SplitQueue, interrupt: boolean, failure: string | undefined): void {
    const t = this.fn.transport;
    t.busy = false;
    t.addServed(queue, ready.takeServed());
    t.setRingIndices(queue, ready.indices());
    if (t.resetPending) {
      this.fn.completeReset();
      return;
    }
    if (failure !== undefined) this.fail(queue, failure);
    if (interrupt) this.fn.interruptQueue(queue);
  }

  private fail(queue: number, why: string): void {
    if (this.fn.markNeedsReset()) this.report(`${this.device.info.name}: queue ${queue}: ${why}; the device needs a reset`);
  }
}
