/**
 * A guest's vsock driver in miniature, for the hybrid vsock device's
 * tests: it sets the device up through VirtioDriver, keeps receive buffers
 * posted, writes packets into transmit chains (cut across descriptors at
 * will) and reads the packets the device returns, checking each used
 * length against its header. pump() stands in for the I/O thread: it
 * serves the queue of every device source that is ready.
 */
import { Feature } from '../../src/devices/virtio/features.js';
import { poll, POLLIN, POLLOUT } from '../../src/kvm/libc.js';
import { DESC_F_WRITE } from '../../src/devices/virtio/queue.js';
import { HOST_CID, readHeader, VSOCK_HEADER_SIZE, VSOCK_TYPE_STREAM, writeHeader, type VsockHeader } from '../../src/devices/virtio/vsock-packet.js';
import { RX_QUEUE, TX_QUEUE, type VsockUds } from '../../src/devices/virtio/vsock-uds.js';
import { EVENT_QUEUE } from '../../src/devices/virtio/vsock-events.js';
import { guardedMemory, queueLayout, VirtioDriver } from './virtio-driver.js';

export const GUEST_CID = 3;
export { EVENT_QUEUE };
const RAM_SIZE = 0x400000;
const LAYOUTS = [queueLayout(0x1000, 256), queueLayout(0x5000, 256), queueLayout(0x9000, 256)];
const RX_BUFFERS = 0x10000;
const RX_STRIDE = 0x2000;
export const EVENT_BUFFERS = 0xf000;
const TX_BUFFERS = 0x100000;
/** Linux's receive buffer: a header and 4 KiB of payload. */
export const RX_PAYLOAD = 4096;

export interface Packet {
  header: VsockHeader;
  payload: Uint8Array;
}

export interface GuestOptions {
  /** Receive buffers kept posted. */
  rxBuffers?: number;
  /** Each receive chain as a header buffer and a payload buffer, as older Linux posts them. */
  splitRx?: boolean;
  /** Transport features besides VERSION_1 (Linux takes EVENT_IDX). */
  features?: bigint;
}

export class VsockGuest {
  readonly d: VirtioDriver;
  readonly guardsIntact: () => boolean;
  private readonly rxBuffers: number;
  private readonly splitRx: boolean;
  private readonly features: bigint;

  constructor(
    readonly device: VsockUds,
    options: GuestOptions = {},
  ) {
    const { memory, guardsIntact } = guardedMemory(0, RAM_SIZE);
    this.d = new VirtioDriver(memory, device);
    this.guardsIntact = guardsIntact;
    this.rxBuffers = options.rxBuffers ?? 16;
    this.splitRx = options.splitRx ?? false;
    this.features = Feature.VERSION_1 | (options.features ?? 0n);
  }

  /** The driver's start-up, with receive and event buffers posted (the device serves the receive queue then). */
  start(postRx = true): void {
    const { d } = this;
    d.enablePci();
    d.reset();
    if (!d.negotiate(this.features)) throw new Error('the device refused the features');
    d.enableMsix(4);
    LAYOUTS.forEach((layout, q) => d.setUpQueue(q, layout, q + 1));
    d.driverOk();
    for (let i = 0; i < 4; i++) d.offerChain(EVENT_QUEUE, [{ addr: EVENT_BUFFERS + 8 * i, len: 8, flags: DESC_F_WRITE }], i);
    d.notify(EVENT_QUEUE);
    if (postRx) this.postRx(this.rxBuffers);
  }

  /** Posts receive buffers 0..count-1 and notifies. */
  postRx(count: number): void {
    for (let i = 0; i < count; i++) this.offerRx(i);
    this.d.notify(RX_QUEUE);
  }

  private offerRx(i: number): void {
    const addr = RX_BUFFERS + RX_STRIDE * i;
    const buffers = this.splitRx
      ? [{ addr, len: VSOCK_HEADER_SIZE, flags: DESC_F_WRITE }, { addr: addr + VSOCK_HEADER_SIZE, len: RX_PAYLOAD, flags: DESC_F_WRITE }]
      : [{ addr, len: VSOCK_HEADER_SIZE + RX_PAYLOAD, flags: DESC_F_WRITE }];
    this.d.offerChain(RX_QUEUE, buffers, this.splitRx ? 2 * i : i);
  }

  /** What the I/O thread does: polls the device's sources and serves the queue of each ready one, until none is. */
  pump(): void {
    for (let turn = 0; ; turn++) {
      const sources = this.device.sources();
      const ready = poll(sources.map((s) => ({ fd: s.fd, events: s.writable ? POLLOUT : POLLIN })), 0);
      if (ready.length === 0) return;
      if (turn === 1000) throw new Error('the device\'s sources stay ready: it would spin');
      for (const s of sources) if (ready.includes(s.fd)) this.d.backend.notify(s.queue);
    }
  }

  /**
   * The packets the device returned since the last call, after pump(). With `repost`
   * each buffer goes back and the driver notifies, so the device goes on
   * until it has no more.
   */
  receive(repost = true): Packet[] {
    const out: Packet[] = [];
    this.pump();
    for (let used = this.d.takeUsed(RX_QUEUE); used.length > 0; used = repost ? this.d.takeUsed(RX_QUEUE) : []) {
      for (const { id, len } of used) {
        const i = this.splitRx ? id / 2 : id;
        const bytes = this.d.memory.read(RX_BUFFERS + RX_STRIDE * i, len);
        const header = readHeader(bytes);
        if (len !== VSOCK_HEADER_SIZE + header.len) throw new Error(`a used length of ${len} for a packet of ${header.len} payload bytes`);
        out.push({ header, payload: bytes.subarray(VSOCK_HEADER_SIZE) });
        if (repost) this.offerRx(i);
      }
      if (repost) {
        this.d.notify(RX_QUEUE);
        this.pump();
      }
    }
    return out;
  }

  /** One packet from the guest, its bytes cut into `pieces` descriptors of about equal size. */
  send(fields: Partial<VsockHeader> & { op: number }, payload: Uint8Array = new Uint8Array(0), pieces = 1): void {
    const bytes = new Uint8Array(VSOCK_HEADER_SIZE + payload.length);
    writeHeader(bytes, {
      srcCid: BigInt(GUEST_CID), dstCid: BigInt(HOST_CID), srcPort: 0, dstPort: 0, len: payload.length,
      type: VSOCK_TYPE_STREAM, flags: 0, bufAlloc: 1 << 20, fwdCnt: 0, ...fields,
    });
    bytes.set(payload, VSOCK_HEADER_SIZE);
    this.sendRaw(bytes, pieces);
  }

  /** Raw bytes as one device-readable chain of `pieces` descriptors. */
  sendRaw(bytes: Uint8Array, pieces = 1): void {
    const size = Math.ceil(bytes.length / pieces);
    const buffers = [];
    for (let at = 0; at < bytes.length; at += size) {
      const piece = bytes.subarray(at, at + size);
      this.d.memory.write(TX_BUFFERS + at, piece);
      buffers.push({ addr: TX_BUFFERS + at, len: piece.length, flags: 0 });
    }
    this.sendChain(buffers);
  }

  /** A chain as given, made available and notified; the device must use it at once. */
  sendChain(buffers: { addr: number; len: number; flags: number }[]): void {
    this.d.offerChain(TX_QUEUE, buffers, 0);
    this.d.notify(TX_QUEUE);
    if (this.d.takeUsed(TX_QUEUE).length !== 1) throw new Error('the device did not use the transmitted chain');
  }
}
