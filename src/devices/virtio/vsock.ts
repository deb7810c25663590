/**
 * The socket device (virtio 1.2, 5.10): a stream-socket line between the
 * guest (its context ID, CID) and the host (CID 2), with no network. Three
 * queues: receive, transmit and events. Two data paths: the host kernel's
 * vhost-vsock, which connects guest sockets with the host's AF_VSOCK ones
 * (vhost-vsock.ts), or the VMM's own over Unix sockets (vsock-uds.ts). The
 * event queue only carries transport resets, which this VMM never sends.
 */
import type { VirtioDeviceInfo } from './device.js';

export const VIRTIO_ID_VSOCK = 19;
/** PCI class "other communication controller". */
const CLASS_COMMUNICATION_OTHER = 0x078000;
const QUEUE_SIZE = 256;
export const VSOCK_QUEUE_SIZES = [QUEUE_SIZE, QUEUE_SIZE, QUEUE_SIZE] as const;
/** CIDs 0-2 are the hypervisor, local and the host; 0xffffffff is VMADDR_CID_ANY. */
export const MIN_GUEST_CID = 3;
export const MAX_GUEST_CID = 0xffff_fffe;

export function checkGuestCid(cid: number): void {
  if (!Number.isInteger(cid) || cid < MIN_GUEST_CID || cid > MAX_GUEST_CID) {
    throw new Error(`vsock cid ${cid}: a guest CID is an integer from ${MIN_GUEST_CID} to ${MAX_GUEST_CID} (0-2 are reserved)`);
  }
}

export function vsockInfo(cid: number): VirtioDeviceInfo {
  const config = new Uint8Array(8);
  new DataView(config.buffer).setBigUint64(0, BigInt(cid), true);
  return { id: VIRTIO_ID_VSOCK, name: 'virtio-vsock', features: 0n, queueSizes: VSOCK_QUEUE_SIZES, classCode: CLASS_COMMUNICATION_OTHER, config };
}
