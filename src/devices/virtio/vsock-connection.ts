/**
 * One stream of the hybrid vsock device: a guest port and a host port
 * joined to a host Unix socket, with the credit of both directions
 * (virtio 1.2, 5.10.6.3).
 *
 * Host to guest, the device may have at most the guest's buf_alloc bytes
 * in flight: sent, but not yet counted in the guest's fwd_cnt. Guest to
 * host, the device grants CONN_BUF_ALLOC bytes and counts in fwdCnt what
 * the host socket has taken; what it could not take yet waits here, and
 * since the guest never has more credit than that space, nothing the guest
 * was allowed to send is lost.
 */
import { constants } from 'node:os';
import { close } from '../../kvm/libc.js';
import { send, shutdownSend } from '../../host/unix-socket.js';
import { hostHeader, Shutdown, type VsockHeader } from './vsock-packet.js';

/** The guest's credit per connection: what the device keeps for a host socket that is not reading. */
export const CONN_BUF_ALLOC = 256 * 1024;
/** Credit freed that the guest is told about unasked: by then a sender waiting for credit may go on. */
const CREDIT_UPDATE_THRESHOLD = CONN_BUF_ALLOC / 2;
const { EAGAIN } = constants.errno;

export class VsockConnection {
  /** Host-to-guest: the guest's buffer space, what it has consumed of it, and what the device has sent. */
  private peerBufAlloc = 0;
  private peerFwdCnt = 0;
  private txCnt = 0;
  /** The host socket reached end of stream. */
  hostEof = false;
  /** Guest-to-host: bytes the host socket has taken, and the count the guest was last told. */
  private fwdCnt = 0;
  private toldFwdCnt = 0;
  /** Guest bytes the host socket could not take yet, in order. */
  private readonly waiting: Uint8Array[] = [];
  buffered = 0;
  /** Shutdown flags the guest has sent. */
  guestShutdown = 0;
  private sendShut = false;
  /** A CREDIT_UPDATE is queued for the guest. */
  creditUpdateQueued = false;
  closed = false;

  constructor(
    readonly fd: number,
    readonly guestCid: bigint,
    readonly hostPort: number,
    readonly guestPort: number,
    /** False for a host-initiated connection until the guest accepts it. */
    public established: boolean,
  ) {}

  /** What the guest advertised in its latest packet. */
  updatePeer(bufAlloc: number, fwdCnt: number): void {
    this.peerBufAlloc = bufAlloc;
    this.peerFwdCnt = fwdCnt;
  }

  /** Bytes the guest has room for now (none if its counters make no sense). */
  get peerCredit(): number {
    const inFlight = (this.txCnt - this.peerFwdCnt) >>> 0;
    return Math.max(0, this.peerBufAlloc - inFlight);
  }

  /** Whether host data may go to the guest now. */
  get canForward(): boolean {
    return this.established && !this.hostEof && (this.guestShutdown & Shutdown.RCV) === 0 && this.peerCredit > 0;
  }

  /** Counts `n` bytes sent to the guest. */
  sent(n: number): void {
    this.txCnt = (this.txCnt + n) >>> 0;
  }

  /** The header of a packet to the guest, carrying the device's credit (which the guest now knows). */
  header(op: number, len = 0, flags = 0): VsockHeader {
    this.toldFwdCnt = this.fwdCnt;
    return hostHeader(this.guestCid, this.hostPort, this.guestPort, op, { len, flags, bufAlloc: CONN_BUF_ALLOC, fwdCnt: this.fwdCnt });
  }

  /** Enough credit was freed since the guest last heard that it should hear now. */
  get creditUpdateDue(): boolean {
    return ((this.fwdCnt - this.toldFwdCnt) >>> 0) >= CREDIT_UPDATE_THRESHOLD;
  }

  /**
   * Guest data for the host socket (a copy the connection may keep): what
   * the socket cannot take now waits. False when the socket failed, or the
   * guest sent more than its credit.
   */
  write(data: Uint8Array): boolean {
    if (this.buffered + data.length > CONN_BUF_ALLOC) return false;
    if (data.length === 0) return true;
    this.waiting.push(data);
    this.buffered += data.length;
    return this.flush();
  }

  /** Hands the host socket what waits, as much as it takes; false when the socket failed. */
  flush(): boolean {
    while (this.waiting.length > 0) {
      const chunk = this.waiting[0];
      const n = send(this.fd, chunk);
      if (n === -EAGAIN) return true;
      if (n < 0) return false;
      this.fwdCnt = (this.fwdCnt + n) >>> 0;
      this.buffered -= n;
      if (n === chunk.length) this.waiting.shift();
      else this.waiting[0] = chunk.subarray(n);
    }
    return true;
  }

  /** The guest will send no more and all it sent is written: the host reads end of stream. */
  shutDownSend(): void {
    if (this.sendShut) return;
    this.sendShut = true;
    // The host may be gone already; then there is no one left to tell.
    shutdownSend(this.fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }
}
