import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptUnix, connectUnix, listenUnix, receive, send } from '../../src/host/unix-socket.js';
import { close } from '../../src/kvm/libc.js';
import { CONN_BUF_ALLOC } from '../../src/devices/virtio/vsock-connection.js';
import { HOST_CID, Shutdown, VSOCK_HEADER_SIZE, VsockOp, writeHeader } from '../../src/devices/virtio/vsock-packet.js';
import { listenUds, MAX_PAYLOAD, RX_QUEUE, TX_QUEUE, VsockUds } from '../../src/devices/virtio/vsock-uds.js';
import { DESC_F_WRITE } from '../../src/devices/virtio/queue.js';
import { Feature } from '../../src/devices/virtio/features.js';
import { EVENT_BUFFERS, EVENT_QUEUE, GUEST_CID, RX_PAYLOAD, VsockGuest, type GuestOptions, type Packet } from '../helpers/vsock-guest.js';

const { EAGAIN } = constants.errno;
const FIRST_HOST_PORT = 2 ** 30;

let dir: string;
let uds: string;
/** What a test opened, closed after it. */
let fds: number[];
let devices: VsockUds[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvmm-vsock-'));
  uds = join(dir, 'v.sock');
  fds = [];
  devices = [];
});

afterEach(() => {
  for (const fd of fds) close(fd);
  for (const device of devices) device.close();
  rmSync(dir, { recursive: true, force: true });
});

function own(fd: number): number {
  assert.ok(fd >= 0, `a socket, not errno ${-fd}`);
  fds.push(fd);
  return fd;
}

function startedGuest(options?: GuestOptions) {
  const device = new VsockUds(GUEST_CID, uds, own(listenUds(uds)), (m) => assert.fail(`reported: ${m}`));
  devices.push(device);
  const guest = new VsockGuest(device, options);
  guest.start();
  // The device's own sources, there from the start: its eventfd and the listening socket.
  const baseline = new Set(device.sources().map((s) => s.fd));
  /** The sources of streams and handshakes: the device's sockets, not the test's. */
  const streams = () => device.sources().filter((s) => !baseline.has(s.fd));
  return { device, guest, d: guest.d, streams };
}

function bytes(length: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i * 7) & 0xff);
}

/** Everything the host socket has now, and whether the device's side is closed. */
function hostRead(fd: number): { data: Uint8Array; eof: boolean } {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = receive(fd, buffer);
    if (n === -EAGAIN) return { data: concat(chunks), eof: false };
    if (n <= 0) return { data: concat(chunks), eof: true };
    chunks.push(buffer.slice(0, n));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

function hostWrite(fd: number, data: Uint8Array | string): void {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  assert.equal(send(fd, b), b.length);
}

function ops(packets: Packet[]): number[] {
  return packets.map((p) => p.header.op);
}

function payloadOf(packets: Packet[]): Uint8Array {
  return concat(packets.filter((p) => p.header.op === VsockOp.RW).map((p) => p.payload));
}

/** A host program's connection to guest port `port`, accepted by the guest: its socket and the host port the guest sees. */
function hostConnection(guest: VsockGuest, port: number, bufAlloc = 1 << 20) {
  const fd = own(connectUnix(uds));
  hostWrite(fd, `CONNECT ${port}\n`);
  guest.d.backend.notify(RX_QUEUE);
  const [request] = guest.receive();
  assert.equal(request.header.op, VsockOp.REQUEST);
  const hostPort = request.header.srcPort;
  guest.send({ op: VsockOp.RESPONSE, srcPort: port, dstPort: hostPort, bufAlloc });
  assert.equal(Buffer.from(hostRead(fd).data).toString(), `OK ${hostPort}\n`);
  return { fd, hostPort };
}

/** A guest connection to host port `port`, where the test listens: the host's accepted socket. */
function guestConnection(guest: VsockGuest, port: number, guestPort: number, bufAlloc = 1 << 20): number {
  const listener = own(listenUnix(`${uds}_${port}`));
  guest.send({ op: VsockOp.REQUEST, srcPort: guestPort, dstPort: port, bufAlloc });
  const fd = own(acceptUnix(listener));
  const [response] = guest.receive();
  assert.equal(response.header.op, VsockOp.RESPONSE);
  return fd;
}

test('a host program connects with CONNECT <port>, the guest accepts, and data flows both ways', () => {
  const { guest, streams } = startedGuest();
  const fd = own(connectUnix(uds));
  // Data right after the line is the stream's first bytes, not part of the handshake.
  hostWrite(fd, 'CONNECT 52\nhello');
  guest.d.backend.notify(RX_QUEUE);
  const [request, ...rest] = guest.receive();
  assert.deepEqual(rest, []);
  assert.equal(request.header.op, VsockOp.REQUEST);
  assert.equal(request.header.srcCid, BigInt(HOST_CID));
  assert.equal(request.header.dstCid, BigInt(GUEST_CID));
  assert.equal(request.header.srcPort, FIRST_HOST_PORT);
  assert.equal(request.header.dstPort, 52);
  assert.deepEqual(streams(), [], 'not read before the guest accepts');

  guest.send({ op: VsockOp.RESPONSE, srcPort: 52, dstPort: FIRST_HOST_PORT }, undefined, 3);
  assert.equal(Buffer.from(hostRead(fd).data).toString(), `OK ${FIRST_HOST_PORT}\n`);
  assert.deepEqual(streams().map((s) => [s.queue, s.writable]), [[RX_QUEUE, undefined]]);

  guest.d.backend.notify(RX_QUEUE);
  const packets = guest.receive();
  assert.deepEqual(ops(packets), [VsockOp.RW]);
  assert.equal(Buffer.from(packets[0].payload).toString(), 'hello');
  assert.equal(packets[0].header.bufAlloc, CONN_BUF_ALLOC);

  const out = bytes(3000, 1);
  guest.send({ op: VsockOp.RW, srcPort: 52, dstPort: FIRST_HOST_PORT }, out, 4);
  assert.deepEqual(hostRead(fd).data, out);
  assert.deepEqual(guest.d.takeUsed(EVENT_QUEUE), [], 'the event buffers stay with the device');
  assert.ok(guest.guardsIntact());
});

test('a restored device sends the guest one transport reset, in its first event buffer', () => {
  const { device, guest } = startedGuest();
  guest.d.memory.write(EVENT_BUFFERS, Uint8Array.of(0xff, 0xff, 0xff, 0xff));
  device.restored();
  guest.d.backend.notify(EVENT_QUEUE);
  assert.deepEqual(guest.d.takeUsed(EVENT_QUEUE), [{ id: 0, len: 4 }]);
  assert.equal(guest.d.memory.readU32(EVENT_BUFFERS), 0, 'VIRTIO_VSOCK_EVENT_TRANSPORT_RESET');
  guest.d.backend.notify(EVENT_QUEUE);
  assert.deepEqual(guest.d.takeUsed(EVENT_QUEUE), [], 'once');
});

test('host-initiated streams get host ports of their own, and a guest that refuses (RST) closes the host socket', () => {
  const { guest, streams } = startedGuest();
  const a = hostConnection(guest, 52);
  const fd = own(connectUnix(uds));
  hostWrite(fd, 'CONNECT 53\n');
  guest.d.backend.notify(RX_QUEUE);
  const [request] = guest.receive();
  assert.equal(request.header.srcPort, a.hostPort + 1);
  guest.send({ op: VsockOp.RST, srcPort: 53, dstPort: request.header.srcPort });
  assert.deepEqual(hostRead(fd), { data: new Uint8Array(0), eof: true });
  assert.equal(streams().length, 1, 'only the first stream is left');
  assert.deepEqual(guest.receive(), [], 'a reset is not answered');
});

test('a guest connects to host port P through <uds>_P; with nobody listening there it gets RST', () => {
  const { guest } = startedGuest({ splitRx: true });
  const listener = own(listenUnix(`${uds}_5000`));
  guest.send({ op: VsockOp.REQUEST, srcPort: 1234, dstPort: 5000 });
  const fd = own(acceptUnix(listener));
  const [response] = guest.receive();
  assert.deepEqual(
    [response.header.op, response.header.srcPort, response.header.dstPort, response.header.dstCid],
    [VsockOp.RESPONSE, 5000, 1234, BigInt(GUEST_CID)],
  );
  guest.send({ op: VsockOp.RW, srcPort: 1234, dstPort: 5000 }, Buffer.from('ping'));
  assert.equal(Buffer.from(hostRead(fd).data).toString(), 'ping');
  const reply = bytes(6000, 2);
  hostWrite(fd, reply);
  guest.d.backend.notify(RX_QUEUE);
  const packets = guest.receive();
  assert.ok(packets.every((p) => p.header.len <= RX_PAYLOAD), 'each packet fits its receive buffer');
  assert.deepEqual(payloadOf(packets), reply);

  guest.send({ op: VsockOp.REQUEST, srcPort: 1235, dstPort: 5001 });
  const [refused] = guest.receive();
  assert.deepEqual([refused.header.op, refused.header.srcPort, refused.header.dstPort], [VsockOp.RST, 5001, 1235]);
});

test('host data goes to the guest only as far as its credit; a CREDIT_UPDATE lets the rest come', () => {
  const { guest, streams } = startedGuest();
  const fd = guestConnection(guest, 6000, 1000, 1000);
  const data = bytes(5000, 3);
  hostWrite(fd, data);
  guest.d.backend.notify(RX_QUEUE);
  const first = guest.receive();
  assert.deepEqual(ops(first), [VsockOp.RW, VsockOp.CREDIT_REQUEST]);
  assert.equal(first[0].header.len, 1000);
  assert.deepEqual(streams(), [], 'out of credit: the host socket is not watched');
  guest.d.backend.notify(RX_QUEUE);
  assert.deepEqual(guest.receive(), []);

  guest.send({ op: VsockOp.CREDIT_UPDATE, srcPort: 1000, dstPort: 6000, bufAlloc: 1000, fwdCnt: 1000 });
  assert.deepEqual(streams().map((s) => s.queue), [RX_QUEUE]);
  guest.d.backend.notify(RX_QUEUE);
  const second = guest.receive();
  assert.equal(payloadOf(second).length, 1000);

  guest.send({ op: VsockOp.CREDIT_UPDATE, srcPort: 1000, dstPort: 6000, bufAlloc: 1 << 20, fwdCnt: 2000 });
  guest.d.backend.notify(RX_QUEUE);
  assert.deepEqual(concat([payloadOf(first), payloadOf(second), payloadOf(guest.receive())]), data);
});

test('the guest asks for credit (CREDIT_REQUEST) and hears the device\'s buf_alloc and fwd_cnt', () => {
  const { guest } = startedGuest();
  const fd = guestConnection(guest, 6001, 1000);
  guest.send({ op: VsockOp.RW, srcPort: 1000, dstPort: 6001 }, bytes(700));
  guest.send({ op: VsockOp.CREDIT_REQUEST, srcPort: 1000, dstPort: 6001 });
  const [update] = guest.receive();
  assert.deepEqual([update.header.op, update.header.bufAlloc, update.header.fwdCnt], [VsockOp.CREDIT_UPDATE, CONN_BUF_ALLOC, 700]);
  assert.equal(hostRead(fd).data.length, 700);
});

test('guest data the host socket cannot take waits in the device, within its credit, and none is lost', () => {
  const { guest, streams } = startedGuest();
  const fd = guestConnection(guest, 6002, 1000);
  // The whole credit in 4 KiB packets, as Linux sends them: more than the device's socket takes (net.core.wmem_default).
  const data = bytes(CONN_BUF_ALLOC, 5);
  for (let at = 0; at < data.length; at += 4096) guest.send({ op: VsockOp.RW, srcPort: 1000, dstPort: 6002 }, data.subarray(at, at + 4096), 2);
  assert.ok(streams().some((s) => s.queue === TX_QUEUE && s.writable), 'the socket is full: wait until it has room');
  const early = guest.receive();
  assert.ok(!ops(early).includes(VsockOp.RST), 'no reset: the guest kept to its credit');

  const received: Uint8Array[] = [];
  while (streams().some((s) => s.writable)) {
    received.push(hostRead(fd).data);
    guest.d.backend.notify(TX_QUEUE);
  }
  received.push(hostRead(fd).data);
  assert.deepEqual(concat(received), data);
  assert.ok([...early, ...guest.receive()].some((p) => p.header.op === VsockOp.CREDIT_UPDATE), 'freed credit is told unasked');
  guest.send({ op: VsockOp.CREDIT_REQUEST, srcPort: 1000, dstPort: 6002 });
  assert.deepEqual(guest.receive().map((p) => [p.header.op, p.header.fwdCnt]), [[VsockOp.CREDIT_UPDATE, CONN_BUF_ALLOC]]);

  // Beyond what the device may hold (the host not reading): a guest that does not keep to its credit loses the stream.
  let sent = 0;
  let replies: number[] = [];
  while (!replies.includes(VsockOp.RST) && sent <= 2 * CONN_BUF_ALLOC) {
    guest.send({ op: VsockOp.RW, srcPort: 1000, dstPort: 6002 }, data.subarray(0, MAX_PAYLOAD));
    sent += MAX_PAYLOAD;
    replies = ops(guest.receive());
  }
  assert.ok(replies.includes(VsockOp.RST), `a reset after ${sent} bytes`);
  assert.ok(sent > CONN_BUF_ALLOC);
  assert.deepEqual(streams(), []);
});

test('SHUTDOWN both ways closes the host socket and is answered with RST; SHUTDOWN SEND alone half-closes', () => {
  const { guest, streams } = startedGuest();
  const a = guestConnection(guest, 7000, 1);
  guest.send({ op: VsockOp.SHUTDOWN, srcPort: 1, dstPort: 7000, flags: Shutdown.BOTH });
  assert.deepEqual(hostRead(a), { data: new Uint8Array(0), eof: true });
  assert.deepEqual(ops(guest.receive()), [VsockOp.RST]);

  const b = guestConnection(guest, 7001, 2);
  guest.send({ op: VsockOp.RW, srcPort: 2, dstPort: 7001 }, Buffer.from('request'));
  guest.send({ op: VsockOp.SHUTDOWN, srcPort: 2, dstPort: 7001, flags: Shutdown.SEND });
  assert.deepEqual(hostRead(b), { data: concat([Buffer.from('request')]), eof: true });
  hostWrite(b, 'reply');
  close(fds.splice(fds.indexOf(b), 1)[0]);
  guest.d.backend.notify(RX_QUEUE);
  const packets = guest.receive();
  assert.deepEqual(ops(packets), [VsockOp.RW, VsockOp.SHUTDOWN, VsockOp.RST]);
  assert.equal(Buffer.from(packets[0].payload).toString(), 'reply');
  assert.equal(packets[1].header.flags, Shutdown.SEND);
  assert.deepEqual(streams(), []);
});

test('a host program that closes gets the guest a SHUTDOWN; one that vanishes mid-stream gets it a RST', () => {
  const { guest, streams } = startedGuest();
  const a = hostConnection(guest, 80);
  close(fds.splice(fds.indexOf(a.fd), 1)[0]);
  guest.d.backend.notify(RX_QUEUE);
  const [shutdown] = guest.receive();
  assert.deepEqual([shutdown.header.op, shutdown.header.flags], [VsockOp.SHUTDOWN, Shutdown.SEND]);
  guest.send({ op: VsockOp.RST, srcPort: 80, dstPort: a.hostPort });
  assert.deepEqual(streams(), []);

  // Closed with the guest's data unread: the device's read fails (ECONNRESET).
  const b = hostConnection(guest, 81);
  guest.send({ op: VsockOp.RW, srcPort: 81, dstPort: b.hostPort }, bytes(100));
  close(fds.splice(fds.indexOf(b.fd), 1)[0]);
  guest.d.backend.notify(RX_QUEUE);
  assert.deepEqual(ops(guest.receive()), [VsockOp.RST]);

  // Gone when the guest writes: EPIPE.
  const c = hostConnection(guest, 82);
  close(fds.splice(fds.indexOf(c.fd), 1)[0]);
  guest.send({ op: VsockOp.RW, srcPort: 82, dstPort: c.hostPort }, bytes(100));
  assert.deepEqual(ops(guest.receive()), [VsockOp.RST]);
});

test('a guest RST closes the host socket', () => {
  const { guest } = startedGuest();
  const fd = guestConnection(guest, 7002, 3);
  guest.send({ op: VsockOp.RST, srcPort: 3, dstPort: 7002 });
  assert.deepEqual(hostRead(fd), { data: new Uint8Array(0), eof: true });
  assert.deepEqual(guest.receive(), []);
});

test('a reset of the device drops every stream', () => {
  const { guest, d, streams } = startedGuest();
  const a = hostConnection(guest, 90);
  const b = guestConnection(guest, 7003, 4);
  d.reset();
  guest.start();
  assert.deepEqual(hostRead(a.fd).eof, true);
  assert.deepEqual(hostRead(b).eof, true);
  assert.deepEqual(streams(), []);
  // The new session works.
  hostConnection(guest, 91);
});

test('a reset seen first as a host socket the driver cannot take drops the streams too', () => {
  const { device, guest, d } = startedGuest();
  const a = hostConnection(guest, 92);
  d.reset();
  hostWrite(a.fd, 'late');
  d.backend.notify(RX_QUEUE);
  assert.equal(hostRead(a.fd).eof, true);
  assert.deepEqual(device.sources().filter((s) => !s.writable), [], 'nothing watched until the driver is back');
});

for (const [name, features] of [['', 0n], [' (EVENT_IDX)', Feature.EVENT_IDX]] as const) {
  test(`out of receive buffers the device waits for the driver, then delivers what waited${name}`, () => {
    const { device, guest } = startedGuest({ rxBuffers: 1, features });
    const fd = guestConnection(guest, 7004, 5);
    hostWrite(fd, bytes(3 * RX_PAYLOAD, 6));
    guest.d.backend.notify(RX_QUEUE);
    const first = guest.receive(false);
    assert.equal(first.length, 1);
    assert.deepEqual(device.sources().filter((s) => s.queue === RX_QUEUE), [], 'starved: nothing watched');
    guest.postRx(1);
    const rest = guest.receive();
    assert.deepEqual(concat([payloadOf(first), payloadOf(rest)]), bytes(3 * RX_PAYLOAD, 6));
  });
}

test('malformed guest packets are dropped or answered with RST, never thrown', () => {
  const { device, guest } = startedGuest();
  const fd = guestConnection(guest, 7005, 6);
  const header = (fields: Parameters<VsockGuest['send']>[0], len = 0) => {
    const b = new Uint8Array(VSOCK_HEADER_SIZE);
    writeHeader(b, { srcCid: BigInt(GUEST_CID), dstCid: BigInt(HOST_CID), srcPort: 6, dstPort: 7005, len, type: 1, flags: 0, bufAlloc: 0, fwdCnt: 0, ...fields });
    return b;
  };
  guest.sendRaw(new Uint8Array(10));
  guest.sendChain([{ addr: 0x100000, len: 64, flags: DESC_F_WRITE }]);
  guest.send({ op: VsockOp.RW, srcCid: 9n, srcPort: 6, dstPort: 7005 }, bytes(10));
  guest.send({ op: VsockOp.RW, dstCid: 7n, srcPort: 6, dstPort: 7005 }, bytes(10));
  assert.equal(device.dropped, 4);
  assert.deepEqual(guest.receive(), [], 'no one to answer');
  assert.equal(hostRead(fd).data.length, 0);

  // Each of these names a port: the guest hears RST.
  guest.sendRaw(header({ op: VsockOp.RW, srcPort: 100 }, 50));
  guest.send({ op: VsockOp.RW, srcPort: 101 }, new Uint8Array(MAX_PAYLOAD + 1));
  guest.send({ op: VsockOp.REQUEST, srcPort: 102, type: 2 });
  guest.send({ op: 99, srcPort: 103 });
  guest.send({ op: VsockOp.RW, srcPort: 104, dstPort: 1 }, bytes(10));
  guest.send({ op: VsockOp.RST, srcPort: 105, dstPort: 1 });
  assert.deepEqual(guest.receive().map((p) => [p.header.op, p.header.dstPort]), [[VsockOp.RST, 100], [VsockOp.RST, 101], [VsockOp.RST, 102], [VsockOp.RST, 103], [VsockOp.RST, 104]]);

  // Junk of every length, from a CID-correct header on.
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 300; i++) {
    const junk = Uint8Array.from({ length: VSOCK_HEADER_SIZE + (random() % 200) }, () => random() & 0xff);
    junk.set(header({ op: 1 + (random() % 8), srcPort: random() % 4, dstPort: 7005 + (random() % 2), flags: random() % 4 }, random() % 300));
    guest.sendRaw(junk, 1 + (random() % 3));
  }
  guest.receive();
  assert.deepEqual(guest.d.reports, []);
  assert.ok(guest.guardsIntact());
  // Still serving.
  guest.send({ op: VsockOp.REQUEST, srcPort: 200, dstPort: 7999 });
  assert.deepEqual(ops(guest.receive()), [VsockOp.RST]);
});

test('host programs that stall, write garbage or send the line in pieces hold nothing up', () => {
  const { guest, streams } = startedGuest();
  const silent = own(connectUnix(uds));
  const garbage = own(connectUnix(uds));
  const endless = own(connectUnix(uds));
  const slow = own(connectUnix(uds));
  hostWrite(garbage, 'HELLO 52\n');
  hostWrite(endless, 'CONNECT 5'.padEnd(40, '5'));
  hostWrite(slow, 'CONNECT 6');
  guest.d.backend.notify(RX_QUEUE);
  assert.deepEqual(guest.receive(), []);
  assert.equal(hostRead(garbage).eof, true);
  assert.equal(hostRead(endless).eof, true);
  assert.equal(hostRead(silent).eof, false);
  assert.equal(streams().length, 2, 'the silent and the slow one still wait for their line');
  hostWrite(slow, '1\n');
  guest.d.backend.notify(RX_QUEUE);
  const [request] = guest.receive();
  assert.deepEqual([request.header.op, request.header.dstPort], [VsockOp.REQUEST, 61]);
  hostConnection(guest, 62);
});

test('the device\'s socket path is taken once, and a path that cannot be made says why in one line', () => {
  const fd = own(listenUds(uds));
  assert.ok(fd >= 0);
  assert.throws(() => listenUds(uds), { message: `vsock uds '${uds}': already in use (another VM, or a stale socket: remove it)` });
  const missing = join(dir, 'no-such-dir', 'v.sock');
  assert.throws(() => listenUds(missing), { message: `vsock uds '${missing}': its directory does not exist` });
  assert.throws(() => listenUds(join(dir, 'x'.repeat(120))), /too long for a Unix socket path/);
});
