/**
 * A virtio device behind a transport: what it is (the transport presents
 * that to the driver) and how it serves a buffer from one of its queues.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { DescriptorChain, SplitQueue } from './queue.js';

export interface VirtioDeviceInfo {
  /** The virtio device ID (virtio 1.2, 5): 2 is the block device, 4 the entropy device. */
  id: number;
  name: string;
  /** The device's own feature bits; the transport adds its own. */
  features: bigint;
  /** The largest size of each queue, a power of two. */
  queueSizes: readonly number[];
  /** PCI class code, as 0xCCSSPP. */
  classCode: number;
  /** The device-specific configuration, when the device has one; it never changes. */
  config?: Uint8Array;
}

/** A host fd a device waits on: when it is readable (or, with `writable`, writable), `queue` is served. */
export interface DeviceSource {
  fd: number;
  queue: number;
  writable?: boolean;
}

export interface VirtioDevice {
  readonly info: VirtioDeviceInfo;
  /** The features the driver accepted, told before the first buffer after each reset. */
  negotiated?(features: bigint): void;
  /** The driver reset the device since it last served a queue: drop what belonged to the old session. */
  reset?(): void;
  /** The VM was restored from a snapshot, before its queues are served: what the host held for it is gone. */
  restored?(): void;
  /** Serves one chain from `queue`; returns how many bytes it wrote into the chain's device-writable buffers. */
  serve(queue: number, chain: DescriptorChain, memory: GuestMemory): number;
  /**
   * Asked before serve() of each chain by a device with a rate limiter:
   * false leaves the chain in the ring for later, and the device names in
   * wakeups() when to serve the queue again.
   */
  admit?(queue: number, chain: DescriptorChain): boolean;
  /** Queues the device holds back for a rate limiter, each with when (performance.now() ms) to serve it again. */
  wakeups?(): readonly { queue: number; atMs: number }[];
  /**
   * For a queue the device fills from a source of its own (a network
   * device's receive queue): takes and returns chains itself, as its data
   * arrives, instead of serve() once per chain. Returns nothing; the backend
   * interrupts the driver for what it used.
   */
  serveQueue?(queue: number, ring: SplitQueue, memory: GuestMemory): void;
  /** Host fds the I/O thread should watch now, each with the queue to serve when it is readable (or writable). */
  sources?(): readonly DeviceSource[];
  /** The queue could not be served (the driver is not ready, or reset it): stop watching what feeds it. */
  unserved?(queue: number): void;
  /** The I/O thread ends: close what the device opened itself (the builder closes what it opened). */
  close?(): void;
}
