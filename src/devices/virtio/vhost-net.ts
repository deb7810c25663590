/**
 * virtio-net's data path in the host kernel (vhost-net): both queues go to
 * /dev/vhost-net with the tap as their backend. The tap keeps its 12-byte
 * virtio-net header, so the kernel passes headers through as the userspace
 * path does; the offloads the guest accepts are set on the tap here.
 */
import { Tap } from '../net/tap.js';
import { VHOST_NET_SET_BACKEND, type VhostFd } from '../../vhost/vhost.js';
import { Feature } from './features.js';
import { NET_QUEUE_SIZES, NetFeature, tapOffload } from './net.js';
import type { VhostDevice } from './vhost-backend.js';

/** The ring features vhost-net serves; it must offer each for us to use it. */
const RING_FEATURES = Feature.VERSION_1 | Feature.EVENT_IDX | Feature.INDIRECT_DESC | NetFeature.MRG_RXBUF;

export class VhostNet implements VhostDevice {
  readonly queues = NET_QUEUE_SIZES.length;
  readonly ringFeatures: bigint;

  constructor(
    readonly vhost: VhostFd,
    private readonly tap: Tap,
  ) {
    this.ringFeatures = vhost.features() & RING_FEATURES;
  }

  start(driverFeatures: bigint): void {
    this.tap.setOffload(tapOffload(driverFeatures));
    for (let q = 0; q < this.queues; q++) this.vhost.setRingFile(VHOST_NET_SET_BACKEND, q, this.tap.fd, 'VHOST_NET_SET_BACKEND');
  }

  stop(): void {
    for (let q = 0; q < this.queues; q++) this.vhost.setRingFile(VHOST_NET_SET_BACKEND, q, -1, 'VHOST_NET_SET_BACKEND');
  }
}
