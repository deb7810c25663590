/**
 * Entry point of a virtio device's I/O thread: sees guest RAM through the
 * main thread's mapping, builds the device over the shared state, and waits on its fds
 * until told to stop: the queue eventfds (the guest's notifications), the
 * control eventfd (a reset while the queues are in use), and the device's
 * own sources (a tap) or, for a vhost device, the kernel's call eventfds.
 * Told to pause, it lets go of the queues (a vhost device's kernel side
 * stops) and waits on its control word until told to run or stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { drainEventfd, poll, POLLIN, POLLOUT } from '../../kvm/libc.js';
import { HostGuestMemory } from '../../memory/mapping.js';
import { DeviceState } from '../device-state.js';
import { createVirtioFunction } from '../pci-functions.js';
import { VirtioBackend } from './backend.js';
import type { DeviceSource } from './device.js';
import { IoControl, IoRequest, type VirtioWorkerData, type VirtioWorkerMessage } from './io-thread.js';
import { VhostBackend } from './vhost-backend.js';
import { createVhostDevice, createVirtioDevice } from './virtio-devices.js';

const data = workerData as VirtioWorkerData;
const post = (m: VirtioWorkerMessage) => parentPort!.postMessage(m);
const report = (message: string) => post({ type: 'report', message });

/** What the thread waits on (readable, unless a source waits to write), and what it does when one is ready. */
interface QueueServer {
  /** The VM was restored from a snapshot (told once, before start()). */
  restored(): void;
  /** Takes up the queues as the transport's state has them: what the driver made available before this thread (or a restore) is served. */
  start(): void;
  watched(): { fd: number; events: number }[];
  readable(fd: number): void;
  /** Lets go of the queues until start(). */
  pause(): void;
  /** Milliseconds until the server wants to run without an fd being ready (a rate limiter's wait); -1: never. */
  timeoutMs?(): number;
  /** Serves what that wait held back. */
  wake?(): void;
  close(): void;
}

/** The device served here, in userspace. */
function userspaceServer(): QueueServer {
  const device = createVirtioDevice(data.spec, report);
  const backend = new VirtioBackend(fn, memory, device, report);
  const { queueEventfds, controlEventfd } = data.spec.pci;
  // A device's own sources (a tap) are watched only while it can take their data.
  let sources: readonly DeviceSource[] = [];
  const serveEvery = () => device.info.queueSizes.forEach((_, queue) => backend.notify(queue));
  return {
    restored: () => device.restored?.(),
    start: serveEvery,
    // Between two polls nothing is in flight here.
    pause: () => {},
    watched: () => {
      sources = device.sources?.() ?? [];
      return [
        ...[controlEventfd, ...queueEventfds].map((fd) => ({ fd, events: POLLIN })),
        ...sources.map((s) => ({ fd: s.fd, events: s.writable ? POLLOUT : POLLIN })),
      ];
    },
    readable: (fd) => {
      const queue = queueEventfds.indexOf(fd);
      if (queue >= 0 || fd === controlEventfd) drainEventfd(fd);
      if (queue >= 0) backend.notify(queue);
      else if (fd !== controlEventfd) for (const s of sources) if (s.fd === fd) backend.notify(s.queue);
    },
    timeoutMs: () => {
      const next = Math.min(...(device.wakeups?.() ?? []).map((w) => w.atMs));
      return next === Infinity ? -1 : Math.max(0, Math.ceil(next - performance.now()));
    },
    wake: () => {
      const now = performance.now();
      for (const w of device.wakeups?.() ?? []) if (w.atMs <= now) backend.notify(w.queue);
    },
    close: () => device.close?.(),
  };
}

const memory = new HostGuestMemory(data.ram);
const fn = createVirtioFunction(data.spec, new DeviceState(data.state));
const vhost = createVhostDevice(data.spec, report);
const server: QueueServer = vhost ? new VhostBackend(fn, memory, vhost, data.spec.pci.queueEventfds, data.spec.pci.controlEventfd, report) : userspaceServer();

const control = new Int32Array(data.control);

/** Does what the control word asks: waits while it says pause; returns false once it says stop. */
function obeyControl(): boolean {
  let paused = false;
  for (;;) {
    const request = Atomics.load(control, IoControl.REQUEST);
    if (request === IoRequest.STOP) return false;
    if (request === IoRequest.RUN) {
      if (paused) server.start();
      return true;
    }
    if (!paused) server.pause();
    paused = true;
    Atomics.store(control, IoControl.PAUSED, 1);
    Atomics.notify(control, IoControl.PAUSED);
    Atomics.wait(control, IoControl.REQUEST, IoRequest.PAUSE);
  }
}

post({ type: 'ready' });
if (data.restored) server.restored();
server.start();
for (;;) {
  const ready = poll([{ fd: data.wakeFd, events: POLLIN }, ...server.watched()], server.timeoutMs?.() ?? -1);
  if (ready.includes(data.wakeFd)) {
    drainEventfd(data.wakeFd);
    if (!obeyControl()) break;
    continue;
  }
  for (const fd of ready) server.readable(fd);
  server.wake?.();
}
server.close();
