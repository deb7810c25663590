/**
 * The kernel's vhost devices (/dev/vhost-net, /dev/vhost-vsock): a virtio
 * device's data path served in the host kernel, straight from the guest's
 * rings. The VMM hands it the guest's memory map, each queue's rings (as
 * addresses in its own mapping of guest RAM), the eventfd KVM signals when
 * the guest notifies (kick) and one the kernel signals when it used
 * buffers (call). ioctls from linux/vhost.h; each struct declared once.
 */
import { struct } from '../kvm/struct.js';
import { close, ioctlBuffer, ioctlValue, open, O_RDWR } from '../kvm/libc.js';

const VHOST_VIRTIO = 0xaf;
const iow = (nr: number, size: number) => ((1 << 30) | (size << 16) | (VHOST_VIRTIO << 8) | nr) >>> 0;
const ior = (nr: number, size: number) => ((2 << 30) | (size << 16) | (VHOST_VIRTIO << 8) | nr) >>> 0;
const iowr = (nr: number, size: number) => ((3 << 30) | (size << 16) | (VHOST_VIRTIO << 8) | nr) >>> 0;

const vhostMemoryHeader = struct('vhost_memory', { nregions: 'u32', padding: 'u32' });
const vhostMemoryRegion = struct('vhost_memory_region', { guestPhysAddr: 'u64', memorySize: 'u64', userspaceAddr: 'u64', flagsPadding: 'u64' });
const vhostVringState = struct('vhost_vring_state', { index: 'u32', num: 'u32' });
const vhostVringFile = struct('vhost_vring_file', { index: 'u32', fd: 'i32' });
const vhostVringAddr = struct('vhost_vring_addr', {
  index: 'u32', flags: 'u32', descUserAddr: 'u64', usedUserAddr: 'u64', availUserAddr: 'u64', logGuestAddr: 'u64',
});

const VHOST_GET_FEATURES = ior(0x00, 8);
const VHOST_SET_FEATURES = iow(0x00, 8);
const VHOST_SET_OWNER = 0xaf01;
const VHOST_SET_MEM_TABLE = iow(0x03, vhostMemoryHeader.size);
const VHOST_SET_VRING_NUM = iow(0x10, vhostVringState.size);
const VHOST_SET_VRING_ADDR = iow(0x11, vhostVringAddr.size);
const VHOST_SET_VRING_BASE = iow(0x12, vhostVringState.size);
const VHOST_GET_VRING_BASE = iowr(0x12, vhostVringState.size);
const VHOST_SET_VRING_KICK = iow(0x20, vhostVringFile.size);
const VHOST_SET_VRING_CALL = iow(0x21, vhostVringFile.size);
export const VHOST_NET_SET_BACKEND = iow(0x30, vhostVringFile.size);
export const VHOST_VSOCK_SET_GUEST_CID = iow(0x60, 8);
export const VHOST_VSOCK_SET_RUNNING = iow(0x61, 4);

/** A stretch of guest RAM and where this process maps it. */
export interface VhostRegion {
  gpa: number;
  size: number;
  hostAddress: bigint;
}

/** A queue's rings, as the VMM's mapping of guest RAM sees them. */
export interface VhostRing {
  size: number;
  desc: bigint;
  avail: bigint;
  used: bigint;
}

/** An open vhost device (on any thread of the process that opened it). */
export class VhostFd {
  constructor(readonly fd: number) {}

  /** Opens `path` and makes this process its owner (the kernel then works in our address space). */
  static open(path: string): VhostFd {
    const vhost = new VhostFd(open(path, O_RDWR));
    try {
      ioctlValue(vhost.fd, VHOST_SET_OWNER, 0, 'VHOST_SET_OWNER');
      return vhost;
    } catch (e) {
      vhost.close();
      throw e;
    }
  }

  features(): bigint {
    const buffer = new Uint8Array(8);
    ioctlBuffer(this.fd, VHOST_GET_FEATURES, buffer, 'VHOST_GET_FEATURES');
    return new DataView(buffer.buffer).getBigUint64(0, true);
  }

  setFeatures(features: bigint): void {
    this.u64(VHOST_SET_FEATURES, features, 'VHOST_SET_FEATURES');
  }

  setMemTable(regions: readonly VhostRegion[]): void {
    const buffer = vhostMemoryHeader.encode({ nregions: regions.length }, vhostMemoryHeader.alloc(regions.length * vhostMemoryRegion.size));
    regions.forEach((r, i) =>
      vhostMemoryRegion.encode(
        { guestPhysAddr: BigInt(r.gpa), memorySize: BigInt(r.size), userspaceAddr: r.hostAddress, flagsPadding: 0n },
        buffer,
        vhostMemoryHeader.size + i * vhostMemoryRegion.size,
      ),
    );
    ioctlBuffer(this.fd, VHOST_SET_MEM_TABLE, buffer, 'VHOST_SET_MEM_TABLE');
  }

  /** Gives queue `index` its rings, starting at available index `base`, with its kick and call eventfds. */
  setRing(index: number, ring: VhostRing, base: number, kickFd: number, callFd: number): void {
    ioctlBuffer(this.fd, VHOST_SET_VRING_NUM, vhostVringState.encode({ index, num: ring.size }), 'VHOST_SET_VRING_NUM');
    ioctlBuffer(this.fd, VHOST_SET_VRING_BASE, vhostVringState.encode({ index, num: base }), 'VHOST_SET_VRING_BASE');
    const addr = { index, flags: 0, descUserAddr: ring.desc, usedUserAddr: ring.used, availUserAddr: ring.avail, logGuestAddr: 0n };
    ioctlBuffer(this.fd, VHOST_SET_VRING_ADDR, vhostVringAddr.encode(addr), 'VHOST_SET_VRING_ADDR');
    ioctlBuffer(this.fd, VHOST_SET_VRING_KICK, vhostVringFile.encode({ index, fd: kickFd }), 'VHOST_SET_VRING_KICK');
    this.setCall(index, callFd);
  }

  /** The eventfd the kernel signals when it used buffers of queue `index`; may change while it runs. */
  setCall(index: number, fd: number): void {
    ioctlBuffer(this.fd, VHOST_SET_VRING_CALL, vhostVringFile.encode({ index, fd }), 'VHOST_SET_VRING_CALL');
  }

  /** Where queue `index` stopped in the available ring; the kernel stops using the queue. */
  ringBase(index: number): number {
    const buffer = vhostVringState.encode({ index, num: 0 });
    ioctlBuffer(this.fd, VHOST_GET_VRING_BASE, buffer, 'VHOST_GET_VRING_BASE');
    return vhostVringState.decode(buffer).num;
  }

  /** A device-specific ioctl whose argument is a struct vhost_vring_file. */
  setRingFile(request: number, index: number, fd: number, name: string): void {
    ioctlBuffer(this.fd, request, vhostVringFile.encode({ index, fd }), name);
  }

  u64(request: number, value: bigint, name: string): void {
    const buffer = new Uint8Array(8);
    new DataView(buffer.buffer).setBigUint64(0, value, true);
    ioctlBuffer(this.fd, request, buffer, name);
  }

  i32(request: number, value: number, name: string): void {
    ioctlBuffer(this.fd, request, new Uint8Array(new Int32Array([value]).buffer), name);
  }

  close(): void {
    close(this.fd);
  }
}
