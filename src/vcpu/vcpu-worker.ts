/**
 * Entry point of a vCPU's worker thread: wraps the vCPU fd its VM created,
 * builds this thread's view of the devices, and runs the exit loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Bus } from '../devices/bus.js';
import type { DeviceContext } from '../devices/context.js';
import { attachDevice } from '../devices/registry.js';
import { pthreadSelf } from '../kvm/libc.js';
import { VcpuFd } from '../kvm/vcpu.js';
import { VmFd } from '../kvm/vm.js';
import { HostGuestMemory } from '../memory/mapping.js';
import { Control, Kick, type VcpuWorkerData, type WorkerMessage } from './protocol.js';
import { VcpuLoop } from './vcpu-loop.js';

const data = workerData as VcpuWorkerData;
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

const consoleCounter = new Int32Array(data.consoleCounter);
const vcpu = new VcpuFd(data.vcpuFd, data.mmapSize);
// Borrowed from the main thread, which closes it.
const vm = new VmFd(data.vmFd, data.mmapSize);
const memory = new HostGuestMemory(data.ram);
let pending: Uint8Array[] = [];
let loop: VcpuLoop | undefined;

const ctx: DeviceContext = {
  vcpuId: data.id,
  console: (bytes) => pending.push(bytes.slice()),
  irq: (line, level) => vm.irqLine(line, level),
  stop: (outcome) => loop?.requestStop(outcome),
  memory,
};
const buses = { pio: new Bus('pio'), mmio: new Bus('mmio') };
for (const device of data.devices) attachDevice(device, buses, ctx);

loop = new VcpuLoop({
  id: data.id,
  vcpu,
  run: vcpu.run(),
  buses,
  control: new Int32Array(data.control),
  stats: new Float64Array(data.stats),
  probe: new Float64Array(data.probe),
  timeExits: data.timeExits,
  traceFd: data.traceFd,
  memory,
  cpuid: data.cpuid,
  assist: data.emulationAssist ? { lock: new Int32Array(data.assistLock) } : undefined,
  flush() {
    if (pending.length === 0) return;
    post({ type: 'console', data: Buffer.concat(pending), seq: Atomics.add(consoleCounter, 0, 1) });
    pending = [];
  },
});

post({ type: 'ready', thread: pthreadSelf() });
const stop = loop.runUntilStopped();
if (stop) post({ type: 'stop', stop });
vcpu.unmapRun();
closeKickGate();

/** After this, the main thread will not signal this thread again (it is about to end). */
function closeKickGate(): void {
  const control = new Int32Array(data.control);
  while (Atomics.compareExchange(control, Control.KICK, Kick.IDLE, Kick.CLOSED) !== Kick.IDLE) {
    Atomics.wait(control, Control.KICK, Kick.SIGNALLING, 10);
  }
}
