import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, Reg } from '../../src/devices/pci/config-space.js';
import type { VirtioDevice } from '../../src/devices/virtio/device.js';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { CfgType } from '../../src/devices/virtio/capabilities.js';
import { DESC_F_NEXT, DESC_F_WRITE } from '../../src/devices/virtio/queue.js';
import { RNG_MAX_REQUEST, VirtioRng } from '../../src/devices/virtio/rng.js';
import { NO_VECTOR } from '../../src/devices/virtio/transport-state.js';
import { VirtioPciDevice } from '../../src/devices/virtio/pci-transport.js';
import { VirtioBackend } from '../../src/devices/virtio/backend.js';
import { guardedMemory, queueLayout, VirtioDriver } from '../helpers/virtio-driver.js';

const RAM_SIZE = 0x40000;
const QUEUE = queueLayout(0x1000, 16);
const BUFFER = 0x10000;
const ISR = 0x1000;
const CONFIG_VECTOR = 0;
const QUEUE_VECTOR = 1;

interface Setup {
  features?: bigint;
  msix?: boolean;
  device?: VirtioDevice;
}

/** An rng driven through the whole start-up sequence, queue 0 ready. */
function readyRng({ features = Feature.VERSION_1, msix = true, device = new VirtioRng() }: Setup = {}) {
  const { memory, guardsIntact } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, device);
  d.enablePci();
  d.reset();
  assert.equal(d.negotiate(features), true, 'the device accepts the features');
  if (msix) {
    d.enableMsix(2);
    d.writeCommon(0x10, 2, CONFIG_VECTOR);
  }
  d.setUpQueue(0, QUEUE, msix ? QUEUE_VECTOR : undefined);
  d.driverOk();
  return { d, memory, guardsIntact };
}

test('the device offers VERSION_1, EVENT_IDX and INDIRECT_DESC, and not ACCESS_PLATFORM', () => {
  const { memory } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  const features = d.deviceFeatures();
  assert.equal(features, Feature.VERSION_1 | Feature.EVENT_IDX | Feature.INDIRECT_DESC);
  assert.equal(features & Feature.ACCESS_PLATFORM, 0n);
  assert.equal(d.readCommon(0x12, 2), 1, 'num_queues');
  d.writeCommon(0x16, 2, 0);
  assert.equal(d.readCommon(0x18, 2), 256, 'queue_size starts at the maximum');
  assert.equal(d.readCommon(0x1a, 2), NO_VECTOR);
});

test('FEATURES_OK does not stick without VERSION_1, nor with a feature the device did not offer', () => {
  const { memory } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  d.reset();
  assert.equal(d.negotiate(Feature.EVENT_IDX), false, 'legacy-only negotiation');
  d.reset();
  assert.equal(d.negotiate(Feature.VERSION_1 | Feature.ACCESS_PLATFORM), false);
  d.reset();
  assert.equal(d.negotiate(Feature.VERSION_1), true);
  d.status = d.status | DeviceStatus.DRIVER_OK;
  assert.equal(d.status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK);
});

test('DRIVER_OK without FEATURES_OK does not stick', () => {
  const { memory } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  d.status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.DRIVER_OK;
  assert.equal(d.status, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
});

test('a device-writable buffer comes back full of random bytes, with an MSI-X interrupt on the queue vector', () => {
  const { d, memory, guardsIntact } = readyRng();
  d.offerChain(0, [{ addr: BUFFER, len: 64, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 64 }]);
  assert.deepEqual(d.interrupts.signals, [QUEUE_VECTOR]);
  const first = memory.read(BUFFER, 64);
  assert.ok(first.some((b) => b !== 0), 'random bytes, not zeros');

  d.offerChain(0, [{ addr: BUFFER, len: 64, flags: DESC_F_WRITE }], 1);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 1, len: 64 }]);
  assert.notDeepEqual(memory.read(BUFFER, 64), first, 'another request, other bytes');
  assert.equal(memory.readU8(BUFFER + 64), 0, 'nothing past the buffer');
  assert.ok(guardsIntact());
  assert.deepEqual(d.reports, []);
});

test('readable buffers are left alone; the used length counts only bytes written', () => {
  const { d, memory } = readyRng();
  memory.fill(BUFFER, 16, 0x33);
  d.offerChain(0, [
    { addr: BUFFER, len: 16, flags: 0 },
    { addr: BUFFER + 16, len: 8, flags: DESC_F_WRITE },
    { addr: BUFFER + 24, len: 8, flags: DESC_F_WRITE },
  ]);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 16 }]);
  assert.ok(memory.read(BUFFER, 16).every((b) => b === 0x33));
});

test('one request gets at most 64 KiB', () => {
  const { d } = readyRng();
  d.offerChain(0, [{ addr: BUFFER, len: 0x20000, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: RNG_MAX_REQUEST }]);
});

test('without MSI-X the queue interrupt sets ISR bit 0 and raises INTx; reading ISR clears both', () => {
  const { d } = readyRng({ msix: false });
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.equal(d.interrupts.intx, true);
  assert.equal(d.configRead(Reg.STATUS, 2) & 0x08, 0x08, 'PCI status: interrupt pending');
  assert.equal(d.virtioCapability(CfgType.ISR).barOffset, ISR);
  assert.equal(d.mmioRead(ISR, 1), 1);
  assert.equal(d.interrupts.intx, false);
  assert.equal(d.mmioRead(ISR, 1), 0, 'read to clear');
  assert.equal(d.configRead(Reg.STATUS, 2) & 0x08, 0);
});

test('INTX_DISABLE keeps the pin low while ISR holds the interrupt', () => {
  const { d } = readyRng({ msix: false });
  d.configWrite(Reg.COMMAND, 2, Command.MEMORY | Command.BUS_MASTER | Command.INTX_DISABLE);
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.equal(d.interrupts.intx, false);
  assert.equal(d.configRead(Reg.STATUS, 2) & 0x08, 0x08, 'the status register still shows it');
  d.configWrite(Reg.COMMAND, 2, Command.MEMORY | Command.BUS_MASTER);
  assert.equal(d.interrupts.intx, true, 'let out once INTx is enabled again');
});

test('with EVENT_IDX the driver is interrupted only once the used index passes used_event', () => {
  const { d } = readyRng({ features: Feature.VERSION_1 | Feature.EVENT_IDX });
  d.setUsedEvent(0, 1); // interrupt after the second buffer
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }], 0);
  d.notify(0);
  assert.deepEqual(d.interrupts.signals, [], 'first buffer: no interrupt');
  assert.equal(d.availEvent(0), 1, 'the device asks for a notification at the next buffer');
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }], 1);
  d.notify(0);
  assert.deepEqual(d.interrupts.signals, [QUEUE_VECTOR]);
  assert.equal(d.takeUsed(0).length, 2);
});

test('indirect descriptors are served when negotiated', () => {
  const { d, memory } = readyRng({ features: Feature.VERSION_1 | Feature.INDIRECT_DESC });
  const table = 0x8000;
  memory.writeU64(table, BigInt(BUFFER));
  memory.writeU32(table + 8, 12);
  memory.writeU16(table + 12, DESC_F_WRITE | DESC_F_NEXT);
  memory.writeU16(table + 14, 1);
  memory.writeU64(table + 16, BigInt(BUFFER + 100));
  memory.writeU32(table + 24, 4);
  memory.writeU16(table + 28, DESC_F_WRITE);
  d.offerChain(0, [{ addr: table, len: 32, flags: 4 }]);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 16 }]);
});

test('a bad chain sets NEEDS_RESET, raises the config vector, is reported once, and stops the queue until a reset', () => {
  const { d, memory } = readyRng();
  d.writeDescriptor(0, 0, { addr: RAM_SIZE - 4, len: 64, flags: DESC_F_WRITE, next: 0 });
  d.makeAvailable(0, 0);
  d.notify(0);
  assert.equal(d.status & DeviceStatus.NEEDS_RESET, DeviceStatus.NEEDS_RESET);
  assert.deepEqual(d.interrupts.signals, [CONFIG_VECTOR]);
  assert.equal(d.reports.length, 1);
  assert.match(d.reports[0], /^virtio-rng: queue 0: a buffer at 0x3fffc\+64 outside guest RAM; the device needs a reset$/);

  // Further notifications do nothing, and are not reported again.
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }], 1);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), []);
  assert.equal(d.reports.length, 1);

  d.reset();
  assert.equal(d.negotiate(Feature.VERSION_1), true);
  d.setUpQueue(0, QUEUE, QUEUE_VECTOR);
  d.driverOk();
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 8 }], 'working again after the reset');
  assert.equal(memory.readU16(QUEUE.used + 2), 1, 'the used ring starts again from 0');
});

test('rings outside guest RAM set NEEDS_RESET at the first notification', () => {
  const { memory } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  d.negotiate(Feature.VERSION_1);
  d.writeCommon(0x16, 2, 0);
  d.writeCommon(0x20, 4, 0);
  d.writeCommon(0x24, 4, 0x1); // descriptor table at 4 GiB
  d.writeCommon(0x1c, 2, 1);
  d.driverOk();
  d.mmioWrite(0x2000, 2, 0);
  assert.equal(d.status & DeviceStatus.NEEDS_RESET, DeviceStatus.NEEDS_RESET);
  assert.match(d.reports[0], /descriptor table at 0x100000000\+4096 is outside guest RAM/);
});

test('a queue larger than the device allows sets NEEDS_RESET', () => {
  const { memory } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  d.negotiate(Feature.VERSION_1);
  d.setUpQueue(0, queueLayout(0x1000, 512));
  d.driverOk();
  d.notify(0);
  assert.match(d.reports[0], /queue size 512 is not a power of two up to 256/);
});

test('buffers made available before DRIVER_OK are served when the driver sets it', () => {
  const { memory } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, new VirtioRng());
  d.enablePci();
  d.negotiate(Feature.VERSION_1);
  d.setUpQueue(0, QUEUE);
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [], 'not before DRIVER_OK');
  d.driverOk();
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 8 }]);
});

test('nothing is served while bus mastering is off', () => {
  const { d } = readyRng();
  d.configWrite(Reg.COMMAND, 2, Command.MEMORY);
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), []);
});

test('a reset asked for while the device holds buffers completes when it hands them back', () => {
  const rng = new VirtioRng();
  let statusSeenDuringReset = -1;
  let driver: VirtioDriver | undefined;
  const device: VirtioDevice = {
    info: rng.info,
    serve(queue, chain, memory) {
      // Another vCPU resets the device while this one is being served.
      driver!.fn.state.locked(() => driver!.fn.writeStatus(0));
      statusSeenDuringReset = driver!.fn.state.locked(() => driver!.fn.transport.status);
      return rng.serve(queue, chain, memory);
    },
  };
  const { d } = readyRng({ device });
  driver = d;
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.notEqual(statusSeenDuringReset, 0, 'status does not read 0 while buffers are out');
  assert.equal(d.status, 0, 'the reset is done once they are back');
  assert.deepEqual(d.interrupts.signals, [], 'no interrupt from a device being reset');
});

test('MSI-X: a vector whose entry is masked stays pending until unmasked', () => {
  const { d } = readyRng();
  const table = 0x3000;
  d.mmioWrite(table + 16 * QUEUE_VECTOR + 12, 4, 1); // mask the queue vector
  d.offerChain(0, [{ addr: BUFFER, len: 8, flags: DESC_F_WRITE }]);
  d.notify(0);
  assert.deepEqual(d.interrupts.signals, []);
  assert.equal(d.mmioRead(0x3800, 4), 1 << QUEUE_VECTOR, 'pending bit');
  d.mmioWrite(table + 16 * QUEUE_VECTOR + 12, 4, 0);
  assert.deepEqual(d.interrupts.signals, [QUEUE_VECTOR]);
  assert.equal(d.mmioRead(0x3800, 4), 0);
});

test('a vector number past the MSI-X table reads back as NO_VECTOR', () => {
  const { d } = readyRng();
  d.writeCommon(0x10, 2, 7);
  assert.equal(d.readCommon(0x10, 2), NO_VECTOR);
  d.writeCommon(0x16, 2, 0);
  d.writeCommon(0x1a, 2, 1);
  assert.equal(d.readCommon(0x1a, 2), 1);
});

test('queue registers are frozen once the queue is enabled, and queue_notify_off is the queue index', () => {
  const { d } = readyRng();
  d.writeCommon(0x16, 2, 0);
  d.writeCommon(0x18, 2, 4);
  d.writeCommon(0x20, 4, 0x9000);
  assert.equal(d.readCommon(0x18, 2), QUEUE.size);
  assert.equal(d.readCommon(0x20, 4), QUEUE.desc);
  assert.equal(d.readCommon(0x1e, 2), 0);
  d.writeCommon(0x16, 2, 5);
  assert.equal(d.readCommon(0x18, 2), 0, 'a queue that does not exist has size 0');
});

test('BAR0 does not answer while memory decoding is off', () => {
  const { d } = readyRng();
  d.configWrite(Reg.COMMAND, 2, 0);
  assert.equal(d.mmioRead(0x14, 1), 0xff);
  d.mmioWrite(0x14, 1, 0);
  d.configWrite(Reg.COMMAND, 2, Command.MEMORY | Command.BUS_MASTER);
  assert.notEqual(d.status, 0, 'the write went nowhere');
});

test('what the queue served (chains and bytes) is counted in the shared state, for metrics, and a reset keeps the counts', () => {
  const { d } = readyRng();
  const served = () => VirtioPciDevice.served(d.fn.state, [16]);
  assert.deepEqual(served(), [{ chains: 0, bytes: 0 }]);
  d.offerChain(0, [{ addr: BUFFER, len: 64, flags: DESC_F_WRITE }]);
  d.offerChain(0, [{ addr: BUFFER + 64, len: 32, flags: DESC_F_WRITE }], 1);
  d.notify(0);
  assert.deepEqual(served(), [{ chains: 2, bytes: 96 }]);
  d.reset();
  assert.deepEqual(served(), [{ chains: 2, bytes: 96 }], 'counted since the machine was built, across driver resets');
});

test('the queue\'s own indices are kept in the shared state: a new I/O thread over it goes on where the last one stopped', () => {
  const { d, memory } = readyRng();
  d.offerChain(0, [{ addr: BUFFER, len: 16, flags: DESC_F_WRITE }]);
  d.offerChain(0, [{ addr: BUFFER + 16, len: 16, flags: DESC_F_WRITE }], 1);
  d.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 16 }, { id: 1, len: 16 }]);
  // As after a restore: another backend, knowing nothing but the shared state and guest memory.
  const reports: string[] = [];
  const next = new VirtioBackend(d.fn, memory, new VirtioRng(), (m) => reports.push(m));
  d.offerChain(0, [{ addr: BUFFER + 32, len: 8, flags: DESC_F_WRITE }], 2);
  next.notify(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 2, len: 8 }], 'the third chain, in the third used entry; the first two not served again');
  assert.deepEqual(reports, []);
});
