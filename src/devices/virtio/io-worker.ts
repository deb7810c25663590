/**
 * Entry point of a virtio device's I/O thread: maps guest RAM from the
 * memfd, builds the device over the shared state, and waits on its fds
 * until told to stop: the queue eventfds (the guest's notifications), the
 * control eventfd (a reset while the queues are in use), and the device's
 * own sources (a tap) or, for a vhost device, the kernel's call eventfds.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { drainEventfd, poll, POLLIN, POLLOUT } from '../../kvm/libc.js';
import { mapGuestMemory } from '../../memory/mapping.js';
import { DeviceState } from '../device-state.js';
import { createVirtioFunction } from '../pci-functions.js';
import { VirtioBackend } from './backend.js';
import type { DeviceSource } from './device.js';
import type { VirtioWorkerData, VirtioWorkerMessage } from './io-thread.js';
import { VhostBackend } from './vhost-backend.js';
import { createVhostDevice, createVirtioDevice } from './virtio-devices.js';

const data = workerData as VirtioWorkerData;
const post = (m: VirtioWorkerMessage) => parentPort!.postMessage(m);
const report = (message: string) => post({ type: 'report', message });

/** What the thread waits on (readable, unless a source waits to write), and what it does when one is ready. */
interface QueueServer {
  watched(): { fd: number; events: number }[];
  readable(fd: number): void;
  close(): void;
}

/** The device served here, in userspace. */
function userspaceServer(): QueueServer {
  const device = createVirtioDevice(data.spec, report);
  const backend = new VirtioBackend(fn, memory, device, report);
  const { queueEventfds, controlEventfd } = data.spec.pci;
  // A device's own sources (a tap) are watched only while it can take their data.
  let sources: readonly DeviceSource[] = [];
  return {
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
    close: () => device.close?.(),
  };
}

const memory = mapGuestMemory(data.memfd, data.ram);
const fn = createVirtioFunction(data.spec, new DeviceState(data.state));
const vhost = createVhostDevice(data.spec, report);
const server: QueueServer = vhost ? new VhostBackend(fn, memory, vhost, data.spec.pci.queueEventfds, data.spec.pci.controlEventfd, report) : userspaceServer();

post({ type: 'ready' });
for (;;) {
  const ready = poll([{ fd: data.stopFd, events: POLLIN }, ...server.watched()], -1);
  if (ready.includes(data.stopFd)) break;
  for (const fd of ready) server.readable(fd);
}
server.close();
memory.unmap();
