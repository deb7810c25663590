import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNet, parseVsock } from '../../src/cli/run-command.js';
import { TunOffload } from '../../src/devices/net/tap.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { derivedMac, formatMac, NET_HEADER_SIZE, NetFeature, parseMac, RX_QUEUE, TX_QUEUE, VirtioNet } from '../../src/devices/virtio/net.js';
import { DESC_F_WRITE } from '../../src/devices/virtio/queue.js';
import { FakePacketPort } from '../helpers/fake-packet-port.js';
import { guardedMemory, queueLayout, VECTOR_EVENTFD_BASE, VirtioDriver } from '../helpers/virtio-driver.js';

const RAM_SIZE = 0x200000;
const RX = queueLayout(0x1000, 256);
const TX = queueLayout(0x10000, 256);
const BUFFERS = 0x40000;
const MAC = parseMac('52:54:00:ab:cd:ef');
const GSO = NetFeature.GUEST_CSUM | NetFeature.GUEST_TSO4 | NetFeature.GUEST_TSO6;

function readyNet(features: bigint = Feature.VERSION_1) {
  const { memory, guardsIntact } = guardedMemory(0, RAM_SIZE);
  const port = new FakePacketPort();
  const device = new VirtioNet(MAC, port);
  const d = new VirtioDriver(memory, device);
  d.enablePci();
  d.reset();
  assert.equal(d.negotiate(features), true);
  d.enableMsix(3);
  d.setUpQueue(RX_QUEUE, RX, 1);
  d.setUpQueue(TX_QUEUE, TX, 2);
  d.driverOk();
  return { d, memory, port, device, guardsIntact };
}

/** A frame as the tap gives it: a zeroed virtio-net header, then `length` bytes counting up. */
function frame(length: number, seed = 0): Uint8Array {
  const f = new Uint8Array(NET_HEADER_SIZE + length);
  for (let i = 0; i < length; i++) f[NET_HEADER_SIZE + i] = (seed + i) & 0xff;
  return f;
}

test('the device shows its MAC and link up, offers the tap offloads and mergeable buffers, and has a receive and a transmit queue', () => {
  const { memory } = guardedMemory(0, RAM_SIZE);
  const d = new VirtioDriver(memory, new VirtioNet(MAC, new FakePacketPort()));
  d.enablePci();
  const features = d.deviceFeatures();
  for (const f of [NetFeature.MAC, NetFeature.STATUS, NetFeature.MRG_RXBUF, NetFeature.CSUM, NetFeature.GUEST_TSO4, NetFeature.HOST_TSO6]) {
    assert.equal(features & f, f);
  }
  assert.equal(d.readCommon(0x12, 2), 2, 'num_queues');
  assert.equal(d.configRead(0x02, 2), 0x1041, 'PCI device ID: 0x1040 + 1');
  const config = d.virtioCapability(4).barOffset!;
  const mac = Array.from({ length: 6 }, (_, i) => d.mmioRead(config + i, 1));
  assert.equal(formatMac(Uint8Array.from(mac)), '52:54:00:ab:cd:ef');
  assert.equal(d.mmioRead(config + 6, 2), 1, 'VIRTIO_NET_S_LINK_UP');
  assert.equal(d.mmioRead(config + 8, 2), 1, 'one queue pair');
});

test('MACs: a given one is checked, a derived one is stable per tap and locally administered', () => {
  assert.throws(() => parseMac('52:54:00:ab:cd'), /not a MAC address/);
  assert.throws(() => parseMac('01:00:5e:00:00:01'), /multicast/);
  assert.deepEqual(derivedMac('tap0'), derivedMac('tap0'));
  assert.notDeepEqual(derivedMac('tap0'), derivedMac('tap1'));
  assert.equal(formatMac(derivedMac('tap0')).slice(0, 8), '52:54:00');
});

test('the tap is told the offloads the guest accepts', () => {
  const { port } = readyNet(Feature.VERSION_1 | GSO | NetFeature.GUEST_ECN);
  assert.equal(port.offload, TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO6 | TunOffload.TSO_ECN);
  assert.equal(readyNet(Feature.VERSION_1 | NetFeature.GUEST_TSO4).port.offload, 0, 'TSO without checksum offload is not usable');
});

test('a transmitted chain goes to the tap whole, header first, and comes back used with length 0', () => {
  const { d, memory, port } = readyNet();
  const out = frame(60, 7);
  memory.write(BUFFERS, out.subarray(0, NET_HEADER_SIZE));
  memory.write(BUFFERS + 0x100, out.subarray(NET_HEADER_SIZE));
  d.offerChain(TX_QUEUE, [{ addr: BUFFERS, len: NET_HEADER_SIZE, flags: 0 }, { addr: BUFFERS + 0x100, len: 60, flags: 0 }]);
  d.notify(TX_QUEUE);
  assert.deepEqual(port.sent, [out]);
  assert.deepEqual(d.takeUsed(TX_QUEUE), [{ id: 0, len: 0 }]);
  assert.deepEqual(d.interrupts.signals, [2]);
});

test('a frame the host drops, and a runt of no more than a header, still come back used', () => {
  const { d, port, device } = readyNet();
  port.accepting = false;
  d.offerChain(TX_QUEUE, [{ addr: BUFFERS, len: 100, flags: 0 }]);
  d.offerChain(TX_QUEUE, [{ addr: BUFFERS, len: NET_HEADER_SIZE, flags: 0 }], 1);
  d.notify(TX_QUEUE);
  assert.equal(d.takeUsed(TX_QUEUE).length, 2);
  assert.equal(device.dropped, 2);
});

test('without mergeable buffers a frame fills one chain, num_buffers 1; with none posted the tap is not watched', () => {
  const { d, memory, port, device } = readyNet();
  assert.deepEqual(device.sources(), [], 'no buffers yet');
  d.offerChain(RX_QUEUE, [{ addr: BUFFERS, len: 1526, flags: DESC_F_WRITE }]);
  d.notify(RX_QUEUE);
  assert.deepEqual(device.sources(), [{ fd: port.fd, queue: RX_QUEUE }], 'room: watch the tap');
  const incoming = frame(100, 3);
  port.incoming.push(incoming);
  d.backend.notify(RX_QUEUE);
  assert.deepEqual(d.takeUsed(RX_QUEUE), [{ id: 0, len: incoming.length }]);
  assert.equal(memory.readU16(BUFFERS + 10), 1, 'num_buffers');
  assert.deepEqual(memory.read(BUFFERS + NET_HEADER_SIZE, 100), incoming.subarray(NET_HEADER_SIZE));
  assert.deepEqual(d.interrupts.signals, [1]);
  port.incoming.push(frame(10));
  d.backend.notify(RX_QUEUE);
  assert.deepEqual(device.sources(), [], 'out of buffers: wait for the driver');
  assert.equal(port.incoming.length, 1, 'the frame waits in the tap');
});

test('with mergeable buffers and GSO a frame spans as many chains as it needs, and the rest wait for the next', () => {
  const { d, memory, port, guardsIntact } = readyNet(Feature.VERSION_1 | NetFeature.MRG_RXBUF | GSO);
  for (let i = 0; i < 20; i++) d.offerChain(RX_QUEUE, [{ addr: BUFFERS + 4096 * i, len: 4096, flags: DESC_F_WRITE }], i);
  const big = frame(10000, 1);
  const small = frame(50, 9);
  port.incoming.push(big, small);
  d.notify(RX_QUEUE);
  const used = d.takeUsed(RX_QUEUE);
  assert.deepEqual(used, [
    { id: 0, len: 4096 }, { id: 1, len: 4096 }, { id: 2, len: big.length - 8192 },
    { id: 3, len: small.length },
  ]);
  assert.equal(memory.readU16(BUFFERS + 10), 3, 'num_buffers of the first frame');
  assert.equal(memory.readU16(BUFFERS + 3 * 4096 + 10), 1, 'num_buffers of the second');
  assert.deepEqual(memory.read(BUFFERS, big.length).subarray(NET_HEADER_SIZE), big.subarray(NET_HEADER_SIZE));
  assert.equal(port.incoming.length, 0);
  // 16 chains (64 KiB) are left: not room for a 64 KiB TSO frame, so the device waits for more.
  port.incoming.push(frame(20));
  d.backend.notify(RX_QUEUE);
  assert.equal(d.takeUsed(RX_QUEUE).length, 0);
  assert.equal(port.incoming.length, 1);
  d.offerChain(RX_QUEUE, [{ addr: BUFFERS + 4096 * 20, len: 4096, flags: DESC_F_WRITE }], 20);
  d.notify(RX_QUEUE);
  assert.deepEqual(d.takeUsed(RX_QUEUE), [{ id: 4, len: NET_HEADER_SIZE + 20 }]);
  assert.ok(guardsIntact());
});

test('a receive chain too small for the header is returned empty, not retried for ever', () => {
  const { d, port } = readyNet();
  d.offerChain(RX_QUEUE, [{ addr: BUFFERS, len: 4, flags: DESC_F_WRITE }]);
  d.offerChain(RX_QUEUE, [{ addr: BUFFERS + 0x1000, len: 1526, flags: DESC_F_WRITE }], 1);
  port.incoming.push(frame(64));
  d.notify(RX_QUEUE);
  assert.deepEqual(d.takeUsed(RX_QUEUE), [{ id: 0, len: 0 }, { id: 1, len: NET_HEADER_SIZE + 64 }]);
});

test('after a reset the tap is not watched until the driver is ready again', () => {
  const { d, port, device } = readyNet();
  d.offerChain(RX_QUEUE, [{ addr: BUFFERS, len: 1526, flags: DESC_F_WRITE }]);
  d.notify(RX_QUEUE);
  assert.equal(device.sources().length, 1);
  d.reset();
  port.incoming.push(frame(64));
  d.backend.notify(RX_QUEUE);
  assert.deepEqual(device.sources(), []);
  assert.equal(port.incoming.length, 1, 'nothing read while the device is reset');
});

test('a kernel data path gets the queue vector\'s irqfd only while the vector is deliverable, and the I/O thread hears of every MSI-X change', () => {
  const { d } = readyNet();
  assert.equal(d.fn.state.locked(() => d.fn.directQueueInterrupt(RX_QUEUE)), VECTOR_EVENTFD_BASE + 1);
  const wakes = d.wakes;
  const table = 0x3000;
  d.mmioWrite(table + 16 * 1 + 12, 4, 1); // mask vector 1
  assert.ok(d.wakes > wakes, 'woken by the table write');
  assert.equal(d.fn.state.locked(() => d.fn.directQueueInterrupt(RX_QUEUE)), undefined, 'masked: through the transport');
  assert.equal(d.fn.state.locked(() => d.fn.directQueueInterrupt(TX_QUEUE)), VECTOR_EVENTFD_BASE + 2);
  d.mmioWrite(table + 16 * 1 + 12, 4, 0);
  assert.equal(d.fn.state.locked(() => d.fn.directQueueInterrupt(RX_QUEUE)), VECTOR_EVENTFD_BASE + 1);
});

test('--net and --vsock: what they take, and one line for what they do not', () => {
  assert.deepEqual(parseNet('tap=tap0'), { kind: 'virtio-net', tap: 'tap0', mac: undefined, vhost: undefined });
  assert.deepEqual(parseNet('tap=t1,mac=52:54:00:00:00:01,vhost=off'), { kind: 'virtio-net', tap: 't1', mac: '52:54:00:00:00:01', vhost: false });
  assert.throws(() => parseNet('mac=52:54:00:00:00:01'), /^Error: --net: 'mac=52:54:00:00:00:01' names no tap \(tap=NAME\)$/);
  assert.throws(() => parseNet('tap=t,vhost=maybe'), /--net: unknown option 'vhost=maybe'/);
  assert.throws(() => parseNet('tap=t,mac=01:00:5e:00:00:01'), /--net: '01:00:5e:00:00:01' is a multicast MAC address/);
  assert.deepEqual(parseVsock('cid=3'), { kind: 'virtio-vsock', cid: 3, uds: undefined });
  assert.deepEqual(parseVsock('cid=42,uds=/run/v.sock'), { kind: 'virtio-vsock', cid: 42, uds: '/run/v.sock' });
  assert.throws(() => parseVsock('uds=/x'), /--vsock: 'uds=\/x' gives no guest CID/);
  assert.throws(() => parseVsock('cid=2'), /--vsock: vsock cid 2: a guest CID is an integer from 3/);
  assert.throws(() => parseVsock('cid=x'), /--vsock: unknown option 'cid=x'/);
});
