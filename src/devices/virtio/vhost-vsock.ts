/**
 * virtio-vsock's data path in the host kernel (vhost-vsock): the receive
 * and transmit queues go to /dev/vhost-vsock, which the builder opened and
 * gave the guest's CID (so a CID another VM holds fails the build).
 */
import { VHOST_VSOCK_SET_GUEST_CID, VHOST_VSOCK_SET_RUNNING, VhostFd } from '../../vhost/vhost.js';
import { SystemError } from '../../kvm/errors.js';
import { Feature } from './features.js';
import type { VirtioDeviceInfo } from './device.js';
import type { VhostDevice } from './vhost-backend.js';
import { VsockEvents } from './vsock-events.js';

export const VHOST_VSOCK_PATH = '/dev/vhost-vsock';
const RING_FEATURES = Feature.VERSION_1 | Feature.EVENT_IDX | Feature.INDIRECT_DESC;

/** Opens vhost-vsock for guest `cid`, on the main thread at build time; errors say what to do. */
export function openVhostVsock(cid: number): number {
  let vhost: VhostFd;
  try {
    vhost = VhostFd.open(VHOST_VSOCK_PATH);
  } catch (e) {
    throw new Error(`vsock cid=${cid}: cannot open ${VHOST_VSOCK_PATH}: ${(e as Error).message} (load the module: modprobe vhost_vsock)`);
  }
  try {
    vhost.u64(VHOST_VSOCK_SET_GUEST_CID, BigInt(cid), 'VHOST_VSOCK_SET_GUEST_CID');
    return vhost.fd;
  } catch (e) {
    vhost.close();
    const inUse = e instanceof SystemError && e.code === 'EADDRINUSE';
    throw new Error(`vsock cid=${cid}: ${inUse ? 'the CID is in use by another VM on this host; give another' : (e as Error).message}`);
  }
}

export class VhostVsock implements VhostDevice {
  /** Receive and transmit; the event queue stays with the VMM. */
  readonly queues = 2;
  readonly ringFeatures: bigint;
  readonly vmmQueues: VsockEvents;

  constructor(readonly vhost: VhostFd, info: VirtioDeviceInfo) {
    this.ringFeatures = vhost.features() & RING_FEATURES;
    this.vmmQueues = new VsockEvents(info);
  }

  start(): void {
    this.vhost.i32(VHOST_VSOCK_SET_RUNNING, 1, 'VHOST_VSOCK_SET_RUNNING');
  }

  stop(): void {
    this.vhost.i32(VHOST_VSOCK_SET_RUNNING, 0, 'VHOST_VSOCK_SET_RUNNING');
  }
}
