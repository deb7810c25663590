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
const backend = new VirtioBackend(fn, memory, createVirtioDevice(data.spec, report), report);
const queueFds = data.spec.pci.queueEventfds;
const watched = [data.stopFd, ...queueFds];

post({ type: 'ready' });
for (;;) {
  const ready = pollReadable(watched, -1);
  if (ready.includes(data.stopFd)) break;
  for (const fd of ready) {
    drainEventfd(fd);
    backend.notify(queueFds.indexOf(fd));
  }
}
memory.unmap();
