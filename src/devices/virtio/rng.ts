/**
 * The entropy device (virtio 1.2, 5.4): one queue of device-writable
 * buffers, which it fills with random bytes from the host's CSPRNG.
 */
import { randomFillSync } from 'node:crypto';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { VirtioDevice, VirtioDeviceInfo } from './device.js';
import type { DescriptorChain } from './queue.js';

export const VIRTIO_ID_ENTROPY = 4;
/** Most bytes for one request: the device may fill less than a buffer, and a huge one would hold the queue. */
export const RNG_MAX_REQUEST = 64 * 1024;
const QUEUE_SIZE = 256;
/** PCI class "other" (0xff): entropy sources have no class of their own. */
const CLASS_OTHER = 0xff0000;

export const RNG_INFO: VirtioDeviceInfo = {
  id: VIRTIO_ID_ENTROPY, name: 'virtio-rng', features: 0n, queueSizes: [QUEUE_SIZE], classCode: CLASS_OTHER,
};

export class VirtioRng implements VirtioDevice {
  readonly info = RNG_INFO;

  /** Device-readable buffers carry nothing for this device and are left alone. */
  serve(_queue: number, chain: DescriptorChain, memory: GuestMemory): number {
    let written = 0;
    for (const buffer of chain.writable) {
      const n = Math.min(buffer.len, RNG_MAX_REQUEST - written);
      if (n === 0) break;
      randomFillSync(memory.view(buffer.addr, n));
      written += n;
    }
    return written;
  }
}
