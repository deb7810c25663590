/**
 * Serves a virtio device's queues through a vhost device: the host kernel
 * takes buffers from the guest's rings and returns them, woken by the same
 * ioeventfds KVM signals on the guest's notifications, so neither a vCPU
 * nor this thread sees the data.
 *
 * It runs on the device's I/O thread. Until the driver sets DRIVER_OK the
 * thread watches the queue eventfds; the first notification after it hands
 * the rings to the kernel, which from then on owns those eventfds.
 *
 * The kernel signals a call eventfd per queue when it used buffers. While
 * the queue's MSI-X vector is deliverable that is the vector's own irqfd,
 * so the interrupt goes from the kernel to the guest with no hop here;
 * otherwise (the vector masked, MSI-X off) it is a relay eventfd this
 * thread watches and turns into interruptQueue(), which keeps the pending
 * bit or raises INTx. The transport wakes this thread (control eventfd)
 * whenever the guest changes the MSI-X table, and the choice is made again.
 *
 * While the kernel has the rings the transport is marked busy, so a reset
 * the driver asks for waits until this thread has taken them back. When
 * the thread pauses or ends, the kernel stops and each ring's next
 * available index goes into the transport's state, where the next start
 * (after a resume, or in a restored VM) hands it back to the kernel.
 */
import { close, drainEventfd, eventfd, POLLIN, signalEventfd } from '../../kvm/libc.js';
import type { HostGuestMemory } from '../../memory/mapping.js';
import type { VhostFd, VhostRegion, VhostRing } from '../../vhost/vhost.js';
import { VirtioBackend } from './backend.js';
import type { VirtioDevice } from './device.js';
import type { VirtioPciDevice } from './pci-transport.js';
import { SplitQueue, type QueueConfig } from './queue.js';

/** What differs between vhost devices: the first `queues` queues go to the kernel; start and stop its work. */
export interface VhostDevice {
  readonly vhost: VhostFd;
  readonly queues: number;
  /** The device's other queues (vsock's event queue), served here in userspace. */
  readonly vmmQueues?: VirtioDevice;
  /** Features the kernel serves itself; the others (offloads) are the device's business, in start(). */
  readonly ringFeatures: bigint;
  start(driverFeatures: bigint): void;
  stop(): void;
}

export class VhostBackend {
  private running = false;
  /** Per queue: the relay eventfd, and the eventfd the kernel signals now (the relay, or the vector's irqfd). */
  private readonly relayFds: number[];
  private readonly callFds: number[];
  private readonly vmmSide?: VirtioBackend;

  constructor(
    private readonly fn: VirtioPciDevice,
    private readonly memory: HostGuestMemory,
    private readonly device: VhostDevice,
    private readonly queueFds: readonly number[],
    private readonly controlFd: number,
    private readonly report: (message: string) => void,
  ) {
    this.relayFds = Array.from({ length: device.queues }, () => eventfd());
    this.callFds = [...this.relayFds];
    if (device.vmmQueues) this.vmmSide = new VirtioBackend(fn, memory, device.vmmQueues, report);
  }

  /** The VM was restored from a snapshot: the device may owe the guest an event. */
  restored(): void {
    this.device.vmmQueues?.restored?.();
  }

  /**
   * Rings a driver had set up already (a resume, a restored VM) go to the kernel now, after the
   * queues kept here are served (while the kernel has the rings, the transport is its).
   */
  start(): void {
    if (this.running) return;
    for (let q = this.device.queues; q < this.fn.info.queueSizes.length; q++) this.vmmSide?.notify(q);
    this.tryStart();
  }

  /** The kernel lets go of the rings until start(). */
  pause(): void {
    this.stop();
  }

  /** The fds this thread waits on now, for reading. */
  watched(): { fd: number; events: number }[] {
    return [this.controlFd, ...(this.running ? this.relayFds : this.queueFds)].map((fd) => ({ fd, events: POLLIN }));
  }

  readable(fd: number): void {
    drainEventfd(fd);
    if (fd === this.controlFd) return this.controlSignalled();
    const relay = this.relayFds.indexOf(fd);
    if (relay >= 0) return this.fn.state.locked(() => this.fn.interruptQueue(relay));
    if (!this.running) this.tryStart();
  }

  /** A reset to finish, or the MSI-X table changed. */
  private controlSignalled(): void {
    if (this.fn.state.locked(() => this.fn.transport.resetPending)) this.takeBack();
    else if (this.running) this.routeCalls();
  }

  /** Points each queue's call at its vector's irqfd when that is deliverable, else at the relay. */
  private routeCalls(): void {
    const wanted = this.fn.state.locked(() => this.relayFds.map((relay, q) => this.fn.directQueueInterrupt(q) ?? relay));
    wanted.forEach((fd, q) => {
      if (fd === this.callFds[q]) return;
      this.device.vhost.setCall(q, fd);
      this.callFds[q] = fd;
      // A signal the relay took before the switch is delivered now, through the transport.
      if (drainEventfd(this.relayFds[q]) > 0n) this.fn.state.locked(() => this.fn.interruptQueue(q));
    });
  }

  /** On a notification: once the driver is ready, the rings go to the kernel. */
  private tryStart(): void {
    const setup = this.fn.state.locked(() => {
      for (let q = 0; q < this.device.queues; q++) if (!this.fn.canServe(q)) return undefined;
      const t = this.fn.transport;
      t.busy = true;
      return {
        features: t.driverFeatures,
        rings: Array.from({ length: this.device.queues }, (_, q) => ({ ...t.queue(q), base: t.ringIndices(q).lastAvail })),
      };
    });
    if (setup === undefined) return;
    try {
      const { vhost } = this.device;
      vhost.setFeatures(setup.features & this.device.ringFeatures);
      vhost.setMemTable(this.regions());
      setup.rings.forEach((r, q) => {
        const ring = this.hostRing(q, { size: r.size, desc: Number(r.desc), driver: Number(r.driver), device: Number(r.device) });
        this.callFds[q] = this.relayFds[q];
        vhost.setRing(q, ring, r.base, this.queueFds[q], this.relayFds[q]);
      });
      this.device.start(setup.features);
      this.running = true;
      this.routeCalls();
      // Buffers made available before the kernel watched the eventfds.
      for (let q = 0; q < this.device.queues; q++) signalEventfd(this.queueFds[q]);
    } catch (e) {
      this.fn.state.locked(() => {
        this.fn.transport.busy = false;
        if (this.fn.markNeedsReset()) this.report(`${this.fn.info.name}: vhost: ${(e as Error).message}; the device needs a reset`);
      });
    }
  }

  /** The driver asked for a reset: stop the kernel, then let the reset finish. */
  private takeBack(): void {
    this.stop();
    this.fn.state.locked(() => {
      this.fn.transport.busy = false;
      this.fn.completeReset();
    });
  }

  private stop(): void {
    if (!this.running) return;
    this.running = false;
    try {
      this.device.stop();
      for (let q = 0; q < this.device.queues; q++) {
        const next = this.device.vhost.ringBase(q);
        this.fn.state.locked(() => this.fn.transport.setRingIndices(q, { lastAvail: next, used: next }));
      }
    } catch (e) {
      this.report(`${this.fn.info.name}: vhost: stopping failed: ${(e as Error).message}`);
    }
  }

  /** The thread ends: the kernel lets go of guest memory before it is unmapped. */
  close(): void {
    this.stop();
    this.relayFds.forEach(close);
  }

  private regions(): VhostRegion[] {
    return this.memory.ram.map((range) => ({ gpa: range.gpa, size: range.size, hostAddress: this.memory.hostAddress(range) }));
  }

  /** A queue's rings, checked as the userspace path checks them, at this thread's addresses. */
  private hostRing(queue: number, config: QueueConfig): VhostRing {
    new SplitQueue(this.memory, config, { maxSize: this.fn.info.queueSizes[queue], eventIdx: false, indirect: false });
    const host = (gpa: number) => {
      const range = this.memory.ram.find((r) => gpa >= r.gpa && gpa < r.gpa + r.size)!;
      return this.memory.hostAddress(range) + BigInt(gpa - range.gpa);
    };
    return { size: config.size, desc: host(config.desc), avail: host(config.driver), used: host(config.device) };
  }
}
