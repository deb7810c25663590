/**
 * The socket device's event queue (virtio 1.2, 5.10.6.7), which the VMM
 * keeps whichever path carries the data. Its one event is the transport
 * reset: sent once to a VM restored from a snapshot, whose host side of
 * every stream is gone, so that the guest resets its sockets (their reads
 * fail with ECONNRESET) and reads its CID again, as Firecracker does for
 * clones. The driver keeps buffers posted here; each event takes one.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { byteLength, scatter } from './buffers.js';
import type { VirtioDevice, VirtioDeviceInfo } from './device.js';
import type { SplitQueue } from './queue.js';

export const EVENT_QUEUE = 2;
/** struct virtio_vsock_event { le32 id; } */
const EVENT_SIZE = 4;
const VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;

/** A device of the event queue alone: vhost-vsock's, whose other queues are the kernel's. */
export class VsockEvents implements VirtioDevice {
  private resetPending = false;

  constructor(readonly info: VirtioDeviceInfo) {}

  /** The VM was restored: tell the guest its streams are gone. */
  restored(): void {
    this.resetPending = true;
  }

  /** The driver reset the device: nothing from before is owed. */
  reset(): void {
    this.resetPending = false;
  }

  /** Every queue here is served by serveQueue(). */
  serve(): number {
    return 0;
  }

  /** Sends what is owed into the driver's event buffers (a buffer too small is returned empty). */
  serveQueue(queue: number, ring: SplitQueue, memory: GuestMemory): void {
    if (queue !== EVENT_QUEUE || !this.resetPending) return;
    const chain = ring.pop();
    if (chain === undefined) return;
    this.resetPending = false;
    const event = new Uint8Array(EVENT_SIZE);
    new DataView(event.buffer).setUint32(0, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, true);
    ring.push(chain.head, byteLength(chain.writable) >= EVENT_SIZE ? scatter(memory, chain.writable, event) : 0);
  }
}
