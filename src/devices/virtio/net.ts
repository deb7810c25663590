/**
 * The network device (virtio 1.2, 5.1) over a packet port (a tap): queue 0
 * receives, queue 1 transmits. Every frame starts with the 12-byte
 * virtio-net header, which the tap reads and writes itself (IFF_VNET_HDR),
 * so the checksum and segmentation offloads the guest negotiates pass
 * through: the device offers what a tap can do and tells the tap what the
 * guest accepts.
 *
 * Receiving is driven by the tap: when it is readable, the I/O thread
 * serves queue 0, which takes enough of the driver's buffers for the
 * largest frame the guest may get, reads one frame straight into them, and
 * returns what it used (several chains with mergeable receive buffers,
 * their count in the header's num_buffers). Out of buffers, it stops
 * watching the tap until the driver adds more; frames wait in the tap's
 * queue meanwhile, and the host drops them only once that is full, as a
 * NIC does. A receive rate limiter holds the tap back the same way; a
 * transmit one leaves the driver's frames in the ring until it allows them.
 */
import { createHash } from 'node:crypto';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { TunOffload, type PacketPort } from '../net/tap.js';
import type { DeviceSource, VirtioDevice, VirtioDeviceInfo } from './device.js';
import { bufferViews, byteLength } from './buffers.js';
import type { DescriptorChain, SplitQueue } from './queue.js';
import type { QueueLimiter } from './rate-limiter.js';

export const VIRTIO_ID_NET = 1;
const CLASS_ETHERNET = 0x020000;
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
const QUEUE_SIZE = 256;
export const NET_QUEUE_SIZES = [QUEUE_SIZE, QUEUE_SIZE] as const;

/** virtio 1.2, 5.1.3. */
export const NetFeature = {
  CSUM: 1n << 0n,
  GUEST_CSUM: 1n << 1n,
  MAC: 1n << 5n,
  GUEST_TSO4: 1n << 7n,
  GUEST_TSO6: 1n << 8n,
  GUEST_ECN: 1n << 9n,
  GUEST_UFO: 1n << 10n,
  HOST_TSO4: 1n << 11n,
  HOST_TSO6: 1n << 12n,
  HOST_ECN: 1n << 13n,
  HOST_UFO: 1n << 14n,
  MRG_RXBUF: 1n << 15n,
  STATUS: 1n << 16n,
} as const;

/** What a tap does for either direction. */
const NET_FEATURES = Object.values(NetFeature).reduce((a, b) => a | b, 0n);

/** struct virtio_net_hdr with num_buffers: the header of every frame once VERSION_1 is negotiated. */
export const NET_HEADER_SIZE = 12;
const NUM_BUFFERS_AT = 10;
const LINK_UP = 1;
/** An Ethernet frame with a VLAN tag, and a TSO/UFO frame (64 KiB of IP plus the Ethernet header). */
const MAX_PLAIN_FRAME = 1518;
const MAX_GSO_FRAME = 65550;
/** Frames received per turn, so that a flood does not keep the thread from the transmit queue. */
const RX_BUDGET = 256;

export type MacAddress = Uint8Array;

/** `aa:bb:cc:dd:ee:ff` to bytes; a multicast address cannot be a NIC's. */
export function parseMac(text: string): MacAddress {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(text)) throw new Error(`'${text}' is not a MAC address (six hex pairs: 52:54:00:12:34:56)`);
  const mac = Uint8Array.from(text.split(':'), (h) => parseInt(h, 16));
  if (mac[0] & 1) throw new Error(`'${text}' is a multicast MAC address; a NIC needs a unicast one (first byte even)`);
  return mac;
}

export function formatMac(mac: MacAddress): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A MAC the same on every run with the same seed (the tap's name): QEMU's locally administered 52:54:00 prefix. */
export function derivedMac(seed: string): MacAddress {
  const hash = createHash('sha256').update(`tsvmm-net:${seed}`).digest();
  return Uint8Array.of(0x52, 0x54, 0x00, hash[0], hash[1], hash[2]);
}

export function netInfo(mac: MacAddress): VirtioDeviceInfo {
  // mac[6], status, max_virtqueue_pairs (one pair).
  const config = new Uint8Array(10);
  config.set(mac);
  const view = new DataView(config.buffer);
  view.setUint16(6, LINK_UP, true);
  view.setUint16(8, 1, true);
  return { id: VIRTIO_ID_NET, name: 'virtio-net', features: NET_FEATURES, queueSizes: NET_QUEUE_SIZES, classCode: CLASS_ETHERNET, config };
}

/** The tap offloads (what it may hand the guest) for the features the guest accepted. */
export function tapOffload(features: bigint): number {
  const has = (f: bigint) => (features & f) !== 0n;
  // Without checksum offload the guest takes no segmented frames either.
  if (!has(NetFeature.GUEST_CSUM)) return 0;
  return (
    TunOffload.CSUM |
    (has(NetFeature.GUEST_TSO4) ? TunOffload.TSO4 : 0) |
    (has(NetFeature.GUEST_TSO6) ? TunOffload.TSO6 : 0) |
    (has(NetFeature.GUEST_ECN) ? TunOffload.TSO_ECN : 0) |
    (has(NetFeature.GUEST_UFO) ? TunOffload.UFO : 0)
  );
}

/** Rate limiters of a network device (bytes: the frame without the virtio-net header). */
export interface NetLimiters {
  rx?: QueueLimiter;
  tx?: QueueLimiter;
}

export class VirtioNet implements VirtioDevice {
  readonly info: VirtioDeviceInfo;
  private mergeable = false;
  private maxFrame = NET_HEADER_SIZE + MAX_PLAIN_FRAME;
  /** The receive queue ran out of buffers: wait for the driver's notification, not the tap. */
  private starved = true;
  /** Frames the host would not take. */
  dropped = 0;

  constructor(
    mac: MacAddress,
    private readonly port: PacketPort,
    private readonly limiters: NetLimiters = {},
  ) {
    this.info = netInfo(mac);
  }

  negotiated(features: bigint): void {
    const has = (f: bigint) => (features & f) !== 0n;
    this.mergeable = has(NetFeature.MRG_RXBUF);
    const gso = has(NetFeature.GUEST_TSO4) || has(NetFeature.GUEST_TSO6) || has(NetFeature.GUEST_UFO);
    this.maxFrame = NET_HEADER_SIZE + (gso ? MAX_GSO_FRAME : MAX_PLAIN_FRAME);
    this.port.setOffload(tapOffload(features));
  }

  sources(): readonly DeviceSource[] {
    return this.starved || !this.port.usable || this.limiters.rx?.held ? [] : [{ fd: this.port.fd, queue: RX_QUEUE }];
  }

  wakeups(): readonly { queue: number; atMs: number }[] {
    return [...(this.limiters.rx?.wakeups() ?? []), ...(this.limiters.tx?.wakeups() ?? [])];
  }

  unserved(queue: number): void {
    if (queue === RX_QUEUE) this.starved = true;
  }

  serve(queue: number, chain: DescriptorChain, memory: GuestMemory): number {
    if (queue === TX_QUEUE) this.transmit(chain, memory);
    return 0;
  }

  serveQueue(queue: number, ring: SplitQueue, memory: GuestMemory): void {
    if (queue === RX_QUEUE) return this.receive(ring, memory);
    const { tx } = this.limiters;
    ring.serveAll((chain) => this.serve(queue, chain, memory), tx && ((chain) => tx.admit(Math.max(0, byteLength(chain.readable) - NET_HEADER_SIZE))));
  }

  /** One frame from the driver: header and frame in its device-readable buffers. A runt is dropped. */
  private transmit(chain: DescriptorChain, memory: GuestMemory): void {
    if (byteLength(chain.readable) <= NET_HEADER_SIZE || !this.port.send(bufferViews(chain.readable, memory))) this.dropped++;
  }

  private receive(ring: SplitQueue, memory: GuestMemory): void {
    this.starved = false;
    // Chains taken for one frame and not needed by it serve the next; what is left goes back at the end.
    let spare: DescriptorChain[] = [];
    try {
      const { rx } = this.limiters;
      for (let frames = 0; frames < RX_BUDGET && (rx === undefined || rx.mayStart()); frames++) {
        const chains = this.takeRoom(ring, spare);
        spare = [];
        if (chains === undefined) {
          this.starved = true;
          return;
        }
        const buffers = chains.flatMap((c) => bufferViews(c.writable, memory));
        const length = this.port.receive(buffers);
        if (length === 0) {
          spare = chains;
          return;
        }
        rx?.take(length - NET_HEADER_SIZE);
        let used = 0;
        for (let left = length; left > 0; used++) {
          const n = Math.min(left, byteLength(chains[used].writable));
          ring.push(chains[used].head, n);
          left -= n;
        }
        spare = chains.slice(used);
        writeAcross(buffers, NUM_BUFFERS_AT, Uint8Array.of(used & 0xff, used >> 8));
      }
    } finally {
      ring.giveBack(spare.length);
    }
  }

  /**
   * Chains with room for the largest frame, starting with `spare`: one
   * chain, or with mergeable buffers as many as it takes. Undefined, with
   * the chains given back and the driver asked to notify, when there is not
   * enough room yet.
   */
  private takeRoom(ring: SplitQueue, spare: DescriptorChain[]): DescriptorChain[] | undefined {
    for (;;) {
      const seen = ring.availIndex();
      if (!this.mergeable) {
        const chain = spare[0] ?? ring.pop();
        if (chain === undefined) {
          if (ring.armNotificationPast(seen)) continue;
          return undefined;
        }
        // Used whatever its size: a driver that posts small buffers gets what fits, one too small for the header nothing.
        if (byteLength(chain.writable) >= NET_HEADER_SIZE) return [chain];
        ring.push(chain.head, 0);
        spare = [];
        continue;
      }
      const chains = [...spare];
      let room = chains.reduce((n, c) => n + byteLength(c.writable), 0);
      for (let chain = room < this.maxFrame ? ring.pop() : undefined; chain; chain = room < this.maxFrame ? ring.pop() : undefined) {
        chains.push(chain);
        room += byteLength(chain.writable);
      }
      if (room >= this.maxFrame) return chains;
      ring.giveBack(chains.length);
      spare = [];
      if (!ring.armNotificationPast(seen)) return undefined;
    }
  }
}

/** Writes `bytes` at byte `offset` of the concatenation of `buffers`. */
function writeAcross(buffers: readonly Uint8Array[], offset: number, bytes: Uint8Array): void {
  let at = offset;
  let i = 0;
  for (const buffer of buffers) {
    while (i < bytes.length && at < buffer.length) buffer[at++] = bytes[i++];
    if (i === bytes.length) return;
    at -= buffer.length;
  }
}
