/**
 * The socket device (virtio 1.2, 5.10) served in userspace over Unix
 * sockets, as Firecracker's "hybrid vsock" is: no vhost-vsock and no
 * AF_VSOCK on the host.
 *
 * - Host to guest: a host program connects to the device's socket
 *   (udsPath) and writes `CONNECT <port>\n` (vsock-handshake.ts). The device
 *   asks the guest for a connection from a host port of its own to that
 *   guest port; once the guest accepts, the host reads `OK <host port>\n`,
 *   and from then on the socket is the stream.
 * - Guest to host: a guest connecting to host port P reaches the program
 *   listening on `<udsPath>_<P>`; with none there, the guest gets a reset.
 *
 * Queue 0 carries packets to the guest, queue 1 packets from it; the event
 * queue's buffers are held for the one event there is, the transport reset
 * a restored VM gets (vsock-events.ts). Each stream keeps to the credit of both sides (vsock-connection.ts):
 * a host socket is read only while the guest has credit and receive
 * buffers for it, so a host that writes faster than the guest reads blocks
 * in its own socket, losing nothing.
 *
 * It runs on the device's I/O thread, which has no event loop: every
 * socket is non-blocking, and sources() names the fds to wait on. A packet
 * for the guest that no host fd would announce (the answer to a guest
 * packet, a credit update) rings the device's own eventfd, which is a
 * source of the receive queue.
 *
 * Nothing the guest or a host program sends can stop the device: a guest
 * packet that is malformed, from another CID or for a stream that does not
 * exist is dropped, or answered with a reset (RST) when it names a stream;
 * a host program that never finishes its CONNECT line only keeps its own
 * socket waiting, one that writes something else is closed.
 */
import { constants } from 'node:os';
import { errnoName, SystemError } from '../../kvm/errors.js';
import { close, drainEventfd, eventfd, signalEventfd } from '../../kvm/libc.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { acceptUnix, connectUnix, listenUnix, MAX_SOCKET_PATH, receive, send } from '../../host/unix-socket.js';
import { byteLength, gather, scatter } from './buffers.js';
import type { DeviceSource, VirtioDevice, VirtioDeviceInfo } from './device.js';
import type { DescriptorChain, SplitQueue } from './queue.js';
import { vsockInfo } from './vsock.js';
import { EVENT_QUEUE, VsockEvents } from './vsock-events.js';
import { VsockConnection } from './vsock-connection.js';
import { HostHandshake, okLine } from './vsock-handshake.js';
import { HOST_CID, hostHeader, readHeader, Shutdown, VSOCK_HEADER_SIZE, VSOCK_TYPE_STREAM, VsockOp, writeHeader, type VsockHeader } from './vsock-packet.js';

export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
/** The largest payload of one packet either way; Linux sends at most 64 KiB. */
export const MAX_PAYLOAD = 64 * 1024;
/** Streams at once, both directions together: each may hold CONN_BUF_ALLOC bytes of the guest's. */
const MAX_CONNECTIONS = 256;
/** Host programs connected but still to write their CONNECT line; past this the oldest is closed. */
const MAX_HANDSHAKES = 32;
/** Host ports for host-initiated streams count from here, as Firecracker's do, away from the well-known ones. */
const FIRST_HOST_PORT = 2 ** 30;
const PORT_LIMIT = 2 ** 32;
/** Packets to the guest per turn, so that a busy stream does not keep the thread from the transmit queue. */
const RX_BUDGET = 256;
const { EAGAIN, ECONNABORTED } = constants.errno;

/** A packet for the guest with no payload: for a stream (built when it goes, with the credit of then), or a reset for none. */
type Control = { conn: VsockConnection; op: number } | { orphan: VsockHeader };

/**
 * The listening socket at `path` the device takes; it fails with one line
 * saying why, when the path is in use or cannot be made.
 */
export function listenUds(path: string): number {
  try {
    return listenUnix(path);
  } catch (e) {
    const code = e instanceof SystemError ? e.code : undefined;
    const why =
      code === 'EADDRINUSE' ? 'already in use (another VM, or a stale socket: remove it)'
      : code === 'ENOENT' || code === 'ENOTDIR' ? 'its directory does not exist'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'its directory is not writable'
      : code === 'ENAMETOOLONG' ? `too long for a Unix socket path (at most ${MAX_SOCKET_PATH} bytes)`
      : (e as Error).message;
    throw new Error(`vsock uds '${path}': ${why}`);
  }
}

function key(hostPort: number, guestPort: number): string {
  return `${hostPort}:${guestPort}`;
}

const KNOWN_OPS = new Set<number>(Object.values(VsockOp));

export class VsockUds implements VirtioDevice {
  readonly info: VirtioDeviceInfo;
  /** Packets from the guest that were ignored. */
  dropped = 0;
  private readonly guestCid: bigint;
  private readonly connections = new Map<string, VsockConnection>();
  private handshakes: HostHandshake[] = [];
  private control: Control[] = [];
  /** Rung when a control packet waits for the guest. */
  private readonly wakeFd = eventfd();
  /** The receive queue ran out of buffers: wait for the driver's notification, not the host. */
  private starved = true;
  /** accept() failed (out of fds): the listening socket waits until a stream closes. */
  private acceptPaused = false;
  private nextHostPort = FIRST_HOST_PORT;
  /** A packet to the guest is built here: header, then payload read straight from a host socket. */
  private readonly packet = new Uint8Array(VSOCK_HEADER_SIZE + MAX_PAYLOAD);
  private readonly events: VsockEvents;

  constructor(
    cid: number,
    private readonly udsPath: string,
    private readonly listenFd: number,
    private readonly report: (message: string) => void,
  ) {
    this.info = vsockInfo(cid);
    this.guestCid = BigInt(cid);
    this.events = new VsockEvents(this.info);
  }

  /** The driver reset the device: it has forgotten every stream. */
  reset(): void {
    this.dropAll();
    this.events.reset();
  }

  /** A restored VM: the streams its guest had went with the process that served them. */
  restored(): void {
    this.events.restored();
  }

  sources(): readonly DeviceSource[] {
    const out: DeviceSource[] = [];
    for (const conn of this.connections.values()) if (conn.buffered > 0) out.push({ fd: conn.fd, queue: TX_QUEUE, writable: true });
    if (this.starved) return out;
    out.push({ fd: this.wakeFd, queue: RX_QUEUE });
    if (!this.acceptPaused) out.push({ fd: this.listenFd, queue: RX_QUEUE });
    for (const h of this.handshakes) out.push({ fd: h.fd, queue: RX_QUEUE });
    for (const conn of this.connections.values()) if (conn.canForward) out.push({ fd: conn.fd, queue: RX_QUEUE });
    return out;
  }

  /** The driver is not ready or reset the device: nobody is left on the guest's side of the streams. */
  unserved(queue: number): void {
    if (queue === RX_QUEUE) this.starved = true;
    this.dropAll();
  }

  /** The backend calls serveQueue(); this serves one transmitted chain all the same. */
  serve(queue: number, chain: DescriptorChain, memory: GuestMemory): number {
    if (queue === TX_QUEUE) this.transmit(chain, memory);
    return 0;
  }

  serveQueue(queue: number, ring: SplitQueue, memory: GuestMemory): void {
    if (queue === RX_QUEUE) this.receive(ring, memory);
    else if (queue === TX_QUEUE) this.transmitAll(ring, memory);
    else if (queue === EVENT_QUEUE) this.events.serveQueue(queue, ring, memory);
  }

  /** Closes what the device opened: its streams' sockets and its eventfd (the listening socket is its opener's). */
  close(): void {
    this.dropAll();
    for (const h of this.handshakes) close(h.fd);
    this.handshakes = [];
    close(this.wakeFd);
  }

  /** Every stream closed, without a word to the guest: it has forgotten them. */
  private dropAll(): void {
    for (const conn of this.connections.values()) conn.close();
    if (this.connections.size > 0) this.acceptPaused = false;
    this.connections.clear();
    this.control = [];
  }

  // --- Guest to host

  private transmitAll(ring: SplitQueue, memory: GuestMemory): void {
    // A host socket with room (a writable source) lands here too.
    for (const conn of this.connections.values()) if (conn.buffered > 0) this.wrote(conn, conn.flush());
    ring.serveAll((chain) => this.serve(TX_QUEUE, chain, memory));
  }

  private transmit(chain: DescriptorChain, memory: GuestMemory): void {
    const size = byteLength(chain.readable);
    if (size < VSOCK_HEADER_SIZE) {
      this.dropped++;
      return;
    }
    const h = readHeader(gather(memory, chain.readable, VSOCK_HEADER_SIZE));
    if (h.srcCid !== this.guestCid || h.dstCid !== BigInt(HOST_CID)) {
      this.dropped++;
      return;
    }
    const conn = this.connections.get(key(h.dstPort, h.srcPort));
    // A reset is never answered with one: two devices could bounce them for ever.
    if (h.op === VsockOp.RST) {
      if (conn) this.remove(conn);
      return;
    }
    if (h.type !== VSOCK_TYPE_STREAM || !KNOWN_OPS.has(h.op) || h.len > MAX_PAYLOAD || h.len > size - VSOCK_HEADER_SIZE) {
      this.dropped++;
      return this.refuse(h, conn);
    }
    if (h.op === VsockOp.REQUEST) return conn ? this.refuse(h, conn) : this.connectHost(h);
    if (conn === undefined) return this.refuse(h);
    conn.updatePeer(h.bufAlloc, h.fwdCnt);
    switch (h.op) {
      case VsockOp.RESPONSE:
        return conn.established ? this.refuse(h, conn) : this.accepted(conn);
      case VsockOp.RW:
        if (!conn.established || conn.guestShutdown & Shutdown.SEND) return this.refuse(h, conn);
        return this.wrote(conn, conn.write(gather(memory, chain.readable, VSOCK_HEADER_SIZE + h.len).subarray(VSOCK_HEADER_SIZE)));
      case VsockOp.SHUTDOWN:
        conn.guestShutdown |= h.flags & Shutdown.BOTH;
        return this.settle(conn);
      case VsockOp.CREDIT_REQUEST:
        return this.queueCreditUpdate(conn);
      // CREDIT_UPDATE: its credit is taken above.
    }
  }

  /** The guest connects to host port dstPort: to whoever listens at `<udsPath>_<port>`. */
  private connectHost(h: VsockHeader): void {
    if (this.connections.size >= MAX_CONNECTIONS) return this.refuse(h);
    const fd = connectUnix(`${this.udsPath}_${h.dstPort}`);
    if (fd < 0) return this.refuse(h);
    const conn = new VsockConnection(fd, this.guestCid, h.dstPort, h.srcPort, true);
    conn.updatePeer(h.bufAlloc, h.fwdCnt);
    this.connections.set(key(conn.hostPort, conn.guestPort), conn);
    this.queue({ conn, op: VsockOp.RESPONSE });
  }

  /** The guest accepted a host program's stream: the program hears which host port it has. */
  private accepted(conn: VsockConnection): void {
    conn.established = true;
    // Nothing was written to the socket before, so it has room for the line.
    const line = okLine(conn.hostPort);
    if (send(conn.fd, line) !== line.length) this.end(conn);
  }

  /** After guest data went to the host socket (or failed to): credit to tell, a shutdown to finish. */
  private wrote(conn: VsockConnection, ok: boolean): void {
    if (!ok) return this.end(conn);
    if (conn.creditUpdateDue) this.queueCreditUpdate(conn);
    this.settle(conn);
  }

  /**
   * Once the guest will send no more and all it sent is written: the host
   * reads end of stream, and when neither side has more to say, the RST
   * that ends a clean shutdown closes the stream.
   */
  private settle(conn: VsockConnection): void {
    if (conn.closed || conn.buffered > 0 || (conn.guestShutdown & Shutdown.SEND) === 0) return;
    if (conn.guestShutdown & Shutdown.RCV || conn.hostEof) return this.end(conn);
    conn.shutDownSend();
  }

  private queueCreditUpdate(conn: VsockConnection): void {
    if (conn.creditUpdateQueued) return;
    conn.creditUpdateQueued = true;
    this.queue({ conn, op: VsockOp.CREDIT_UPDATE });
  }

  /** A guest packet that cannot be served: its stream, if any, is ended; the guest gets a reset. */
  private refuse(h: VsockHeader, conn?: VsockConnection): void {
    if (conn) return this.end(conn);
    this.queue({ orphan: hostHeader(this.guestCid, h.dstPort, h.srcPort, VsockOp.RST) });
  }

  /** Closes a stream and tells the guest (RST). */
  private end(conn: VsockConnection): void {
    this.remove(conn);
    this.queue({ conn, op: VsockOp.RST });
  }

  /** Closes a stream the guest has already forgotten. */
  private remove(conn: VsockConnection): void {
    conn.close();
    this.connections.delete(key(conn.hostPort, conn.guestPort));
    this.acceptPaused = false;
  }

  private queue(c: Control): void {
    this.control.push(c);
    signalEventfd(this.wakeFd);
  }

  // --- Host to guest

  private receive(ring: SplitQueue, memory: GuestMemory): void {
    this.starved = false;
    if (!this.acceptPaused) this.acceptHosts();
    this.advanceHandshakes();
    this.deliver(ring, memory);
    // What was queued went out, or waits for buffers (the driver's notification brings it back here) or for the next turn.
    drainEventfd(this.wakeFd);
    if (!this.starved && this.control.length > 0) signalEventfd(this.wakeFd);
  }

  /** Fills receive chains with packets while there are both. */
  private deliver(ring: SplitQueue, memory: GuestMemory): void {
    // Streams with nothing to read this turn, so each is asked once.
    const idle = new Set<VsockConnection>();
    for (let packets = 0; packets < RX_BUDGET; packets++) {
      const chain = nextChain(ring);
      if (chain === undefined) {
        this.starved = true;
        return;
      }
      const room = byteLength(chain.writable);
      if (room < VSOCK_HEADER_SIZE) {
        // Too small for any packet: returned empty rather than offered again for ever.
        ring.push(chain.head, 0);
        continue;
      }
      const length = this.nextPacket(room - VSOCK_HEADER_SIZE, idle);
      if (length === 0) {
        ring.giveBack(1);
        return;
      }
      scatter(memory, chain.writable, this.packet.subarray(0, length));
      ring.push(chain.head, length);
    }
  }

  private acceptHosts(): void {
    for (let n = 0; n < MAX_HANDSHAKES; n++) {
      const fd = acceptUnix(this.listenFd);
      if (fd === -EAGAIN) return;
      if (fd === -ECONNABORTED) continue;
      if (fd < 0) {
        this.acceptPaused = true;
        this.report(`vsock uds '${this.udsPath}': accept failed: ${errnoName(-fd)}; no new host connections until one closes`);
        return;
      }
      if (this.handshakes.length >= MAX_HANDSHAKES) close(this.handshakes.shift()!.fd);
      this.handshakes.push(new HostHandshake(fd));
    }
  }

  private advanceHandshakes(): void {
    this.handshakes = this.handshakes.filter((h) => {
      const state = h.advance();
      if (state === 'waiting') return true;
      if (state === 'failed' || this.connections.size >= MAX_CONNECTIONS) close(h.fd);
      else this.connectGuest(h.fd, state.port);
      return false;
    });
  }

  /** A host program asks for guest port `port`: the guest is asked, from a host port of the device's. */
  private connectGuest(fd: number, port: number): void {
    let hostPort = this.nextHostPort;
    while (this.connections.has(key(hostPort, port))) hostPort = followingHostPort(hostPort);
    this.nextHostPort = followingHostPort(hostPort);
    const conn = new VsockConnection(fd, this.guestCid, hostPort, port, false);
    this.connections.set(key(hostPort, port), conn);
    this.queue({ conn, op: VsockOp.REQUEST });
  }

  /**
   * Builds the next packet for the guest in `this.packet`, with at most
   * `maxPayload` bytes of data; its length, or 0 when there is none.
   * Control packets go first, so a stream's RESPONSE is ahead of its data.
   */
  private nextPacket(maxPayload: number, idle: Set<VsockConnection>): number {
    for (let c = this.control.shift(); c; c = this.control.shift()) {
      if ('orphan' in c) {
        writeHeader(this.packet, c.orphan);
        return VSOCK_HEADER_SIZE;
      }
      // What was queued for a stream that has closed since is moot, but for the reset saying so.
      if (c.conn.closed && c.op !== VsockOp.RST) continue;
      if (c.op === VsockOp.CREDIT_UPDATE) c.conn.creditUpdateQueued = false;
      writeHeader(this.packet, c.conn.header(c.op));
      return VSOCK_HEADER_SIZE;
    }
    for (const [k, conn] of this.connections) {
      if (idle.has(conn) || !conn.canForward) continue;
      const length = this.forward(conn, maxPayload);
      if (length === 0) {
        idle.add(conn);
        continue;
      }
      // Round robin: the stream served goes to the back.
      this.connections.delete(k);
      if (!conn.closed) this.connections.set(k, conn);
      return length;
    }
    return 0;
  }

  /** A packet from `conn`'s host socket: data, its end (SHUTDOWN), or its failure (RST); 0 when nothing is waiting. */
  private forward(conn: VsockConnection, maxPayload: number): number {
    const want = Math.min(maxPayload, conn.peerCredit);
    if (want === 0) return 0;
    const n = receive(conn.fd, this.packet.subarray(VSOCK_HEADER_SIZE, VSOCK_HEADER_SIZE + want));
    if (n === -EAGAIN) return 0;
    if (n < 0) {
      this.remove(conn);
      writeHeader(this.packet, conn.header(VsockOp.RST));
      return VSOCK_HEADER_SIZE;
    }
    if (n === 0) {
      conn.hostEof = true;
      writeHeader(this.packet, conn.header(VsockOp.SHUTDOWN, 0, Shutdown.SEND));
      this.settle(conn);
      return VSOCK_HEADER_SIZE;
    }
    conn.sent(n);
    writeHeader(this.packet, conn.header(VsockOp.RW, n));
    // Out of credit: ask, in case the guest's own update is slow to come.
    if (conn.peerCredit === 0) this.queue({ conn, op: VsockOp.CREDIT_REQUEST });
    return VSOCK_HEADER_SIZE + n;
  }
}

function followingHostPort(port: number): number {
  return port + 1 < PORT_LIMIT ? port + 1 : FIRST_HOST_PORT;
}

/** The next receive chain, or undefined (the driver asked to notify) when there is none. */
function nextChain(ring: SplitQueue): DescriptorChain | undefined {
  for (;;) {
    const seen = ring.availIndex();
    const chain = ring.pop();
    if (chain !== undefined || !ring.armNotificationPast(seen)) return chain;
  }
}
