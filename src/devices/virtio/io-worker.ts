/**
 * Entry point of a virtio device's I/O thread: maps guest RAM from the
 * memfd, builds the device and its backend over the shared state, and
 * serves a queue each time its eventfd fires, until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { drainEventfd, pollReadable } from '../../kvm/libc.js';
import { mapGuestMemory } from '../../memory/mapping.js';
import { DeviceState } from '../device-state.js';
import { createVirtioFunction } from '../pci-functions.js';
import { VirtioBackend } from './backend.js';
import type { VirtioWorkerData, VirtioWorkerMessage } from './io-thread.js';
import { createVirtioDevice } from './virtio-devices.js';

const data = workerData as VirtioWorkerData;
const post = (m: VirtioWorkerMessage) => parentPort!.postMessage(m);
const report = (message: string) => post({ type: 'report', message });

const memory = mapGuestMemory(data.memfd, data.ram);
const fn = createVirtioFunction(data.spec, new DeviceState(data.state));
const device = createVirtioDevice(data.spec, report);
const backend = new VirtioBackend(fn, memory, device, report);
const queueFds = data.spec.pci.queueEventfds;

post({ type: 'ready' });
for (;;) {
  // A device's own sources (a tap) are watched only while it can take their data.
  const sources = device.sources?.() ?? [];
  const ready = pollReadable([data.stopFd, ...queueFds, ...sources.map((s) => s.fd)], -1);
  if (ready.includes(data.stopFd)) break;
  for (const fd of ready) {
    const queue = queueFds.indexOf(fd);
    if (queue >= 0) {
      drainEventfd(fd);
      backend.notify(queue);
    } else {
      backend.notify(sources.find((s) => s.fd === fd)!.queue);
    }
  }
}
device.close?.();
memory.unmap();
