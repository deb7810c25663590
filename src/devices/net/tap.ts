/**
 * A tap interface (/dev/net/tun, IFF_TAP) as a network device's packet
 * port: each read() is one Ethernet frame, each write() sends one. Opened
 * with IFF_VNET_HDR and a 12-byte header size, every frame carries the
 * virtio-net header in front, so frames go between the guest's buffers and
 * the tap with no translation, and checksum and segmentation offloads pass
 * through in both directions.
 *
 * The builder opens it on the main thread (a missing or busy tap fails the
 * build, before the guest starts); the device's I/O thread then reads and
 * writes the same fd, non-blocking.
 */
import { existsSync, readvSync, writevSync } from 'node:fs';
import { close, ioctlBuffer, ioctlValue, open, O_RDWR } from '../../kvm/libc.js';
import { SystemError } from '../../kvm/errors.js';

const O_NONBLOCK = 0o4000;
// <linux/if_tun.h>
const TUNSETIFF = 0x400454ca;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFNAMSIZ = 16;
/** struct ifreq: the name, then a union whose first member here is the flags. */
const IFREQ_SIZE = 40;

/** What TUNSETOFFLOAD lets the tap hand us: frames the guest said it can take. */
export const TunOffload = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08, UFO: 0x10 } as const;

/** Where frames come from and go to, as the network device sees it; tests give it a fake. */
export interface PacketPort {
  /** Polled for readability by the device's I/O thread. */
  readonly fd: number;
  /** Reads one frame, header first, scattered over `buffers`; its length, or 0 when none is waiting. */
  receive(buffers: Uint8Array[]): number;
  /** Sends one frame, header first, gathered from `buffers`; false when the host dropped it. */
  send(buffers: Uint8Array[]): boolean;
  /** The offloads (TunOffload bits) the guest accepts on what it receives. */
  setOffload(flags: number): void;
  /** False once reading failed for good: the device stops watching the fd. */
  readonly usable: boolean;
}

/** Opens tap `name` for frames with a `headerSize`-byte virtio-net header. Errors name the tap and what to do. */
export function openTap(name: string, headerSize: number): number {
  if (name.length === 0 || name.length >= IFNAMSIZ || !/^[\w.-]+$/.test(name)) {
    throw new Error(`network tap '${name}': not an interface name (1 to ${IFNAMSIZ - 1} letters, digits, '.', '-' or '_')`);
  }
  // TUNSETIFF would create a missing tap; a typo should not make a new interface.
  if (!existsSync(`/sys/class/net/${name}`)) {
    throw new Error(`network tap '${name}': no such interface (create it first: ip tuntap add ${name} mode tap)`);
  }
  if (!existsSync(`/sys/class/net/${name}/tun_flags`)) throw new Error(`network tap '${name}': the interface is not a tap`);
  let fd: number;
  try {
    fd = open('/dev/net/tun', O_RDWR | O_NONBLOCK);
  } catch (e) {
    throw new Error(`network tap '${name}': cannot open /dev/net/tun: ${(e as Error).message} (load the tun module: modprobe tun)`);
  }
  try {
    const ifreq = new Uint8Array(IFREQ_SIZE);
    ifreq.set(Buffer.from(name, 'ascii'));
    new DataView(ifreq.buffer).setUint16(IFNAMSIZ, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
    ioctlBuffer(fd, TUNSETIFF, ifreq, 'TUNSETIFF');
    ioctlBuffer(fd, TUNSETVNETHDRSZ, new Uint8Array(new Int32Array([headerSize]).buffer), 'TUNSETVNETHDRSZ');
    return fd;
  } catch (e) {
    close(fd);
    throw new Error(`network tap '${name}': ${tapFailure(e)}`);
  }
}

function tapFailure(e: unknown): string {
  const code = e instanceof SystemError ? e.code : '';
  if (code === 'EBUSY') return 'in use by another process (a tap takes one user unless made with multi_queue)';
  if (code === 'EPERM' || code === 'EACCES') return 'permission denied (attaching to a tap needs CAP_NET_ADMIN, or the tap made with: ip tuntap add NAME mode tap user USER)';
  if (code === 'EINVAL') return 'cannot attach (was it made with multi_queue, or as a tun rather than a tap?)';
  return (e as Error).message;
}

/** The tap behind an fd the builder opened (and closes). */
export class Tap implements PacketPort {
  /** A read or write failed for another reason than an empty queue or a refused frame; told once. */
  private reported = false;
  private readBroken = false;

  constructor(
    readonly fd: number,
    private readonly report: (message: string) => void,
  ) {}

  receive(buffers: Uint8Array[]): number {
    try {
      return readvSync(this.fd, buffers);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') {
        this.readBroken = true;
        this.fail('read', e);
      }
      return 0;
    }
  }

  send(buffers: Uint8Array[]): boolean {
    try {
      writevSync(this.fd, buffers);
      return true;
    } catch (e) {
      // EIO: the tap is down; EINVAL: a frame the tap refuses. A NIC drops such a frame and goes on.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EIO' && code !== 'EINVAL') this.fail('write', e);
      return false;
    }
  }

  setOffload(flags: number): void {
    ioctlValue(this.fd, TUNSETOFFLOAD, flags, 'TUNSETOFFLOAD');
  }

  get usable(): boolean {
    return !this.readBroken;
  }

  private fail(what: string, e: unknown): void {
    if (this.reported) return;
    this.reported = true;
    this.report(`network tap: ${what} failed: ${(e as Error).message}; frames are dropped`);
  }
}
