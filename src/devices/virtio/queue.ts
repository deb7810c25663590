/**
 * A split virtqueue (virtio 1.2, 2.7) as the device sees it: a descriptor
 * table, the driver's available ring and the device's used ring, all in
 * guest memory.
 *
 * Everything the driver wrote is checked before it is used: ring layout and
 * size, each head and next index, chain length (at most the queue size, so a
 * loop ends), indirect tables (negotiated, not nested, whole descriptors, no
 * longer than the queue), every buffer inside guest RAM, and device-readable
 * buffers before device-writable ones. A violation throws QueueError; reads
 * and writes go through GuestMemory, which never reaches past guest RAM.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';

export const DESC_F_NEXT = 1;
export const DESC_F_WRITE = 2;
export const DESC_F_INDIRECT = 4;
/** In the available ring's flags: the driver wants no interrupts (without EVENT_IDX). */
export const AVAIL_F_NO_INTERRUPT = 1;
export const DESCRIPTOR_SIZE = 16;
export const MAX_QUEUE_SIZE = 32768;

/** A driver error: the device stops using the queue and needs a reset. */
export class QueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueError';
  }
}

/** Where the driver put the queue, and how big it made it. */
export interface QueueConfig {
  size: number;
  desc: number;
  /** The available ring. */
  driver: number;
  /** The used ring. */
  device: number;
}

export interface QueueOptions {
  /** The device's largest size for this queue (default the split ring's limit, 32768). */
  maxSize?: number;
  /** VIRTIO_F_RING_EVENT_IDX was negotiated: used_event/avail_event suppress notifications. */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  indirect: boolean;
  /** Where the device's side of the ring stands (default 0 and 0, a fresh ring). */
  start?: { lastAvail: number; used: number };
}

/** A guest buffer, inside guest RAM. */
export interface GuestBuffer {
  addr: number;
  len: number;
}

export interface DescriptorChain {
  /** The head's index, which goes back in the used ring. */
  head: number;
  /** Device-readable buffers, in order (empty buffers left out). */
  readable: GuestBuffer[];
  /** Device-writable buffers, in order (empty buffers left out). */
  writable: GuestBuffer[];
}

export function availRingSize(size: number): number {
  return 6 + 2 * size;
}

export function usedRingSize(size: number): number {
  return 6 + 8 * size;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

export class SplitQueue {
  private lastAvail = 0;
  private used = 0;
  /** Served since takeServed() last asked, for the transport's counters. */
  private servedChains = 0;
  private servedBytes = 0;
  readonly size: number;

  constructor(
    private readonly memory: GuestMemory,
    private readonly config: QueueConfig,
    private readonly options: QueueOptions,
  ) {
    const { size, desc, driver, device } = config;
    const maxSize = options.maxSize ?? MAX_QUEUE_SIZE;
    if (!Number.isInteger(size) || size < 1 || size > maxSize || (size & (size - 1)) !== 0) {
      throw new QueueError(`queue size ${size} is not a power of two up to ${maxSize}`);
    }
    this.size = size;
    this.lastAvail = options.start?.lastAvail ?? 0;
    this.used = options.start?.used ?? 0;
    checkArea(memory, 'descriptor table', desc, DESCRIPTOR_SIZE * size, 16);
    checkArea(memory, 'available ring', driver, availRingSize(size), 2);
    checkArea(memory, 'used ring', device, usedRingSize(size), 4);
  }

  /** The used ring's index as the device last wrote it. */
  get usedIndex(): number {
    return this.used;
  }

  /** The device's side of the ring, to keep beside the queue's registers. */
  indices(): { lastAvail: number; used: number } {
    return { lastAvail: this.lastAvail, used: this.used };
  }

  /** The next chain the driver made available, or undefined when there is none. */
  pop(): DescriptorChain | undefined {
    const { memory, config, size } = this;
    const availIdx = memory.readU16(config.driver + 2);
    const pending = (availIdx - this.lastAvail) & 0xffff;
    if (pending === 0) return undefined;
    if (pending > size) throw new QueueError(`the available ring's index moved ${pending} entries ahead in a queue of ${size}`);
    const head = memory.readU16(config.driver + 4 + 2 * (this.lastAvail & (size - 1)));
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    return this.walk(head);
  }

  /**
   * Serves every chain the driver made available, and those it adds
   * meanwhile (until armNotification() finds none): `serve` says how many
   * bytes it wrote into each chain. A chain `admit` refuses goes back to the
   * ring, and serving stops there (notifications stay as they were: the
   * device comes back on its own).
   */
  serveAll(serve: (chain: DescriptorChain) => number, admit?: (chain: DescriptorChain) => boolean): void {
    do {
      for (let chain = this.pop(); chain; chain = this.pop()) {
        if (admit !== undefined && !admit(chain)) {
          this.giveBack(1);
          return;
        }
        this.push(chain.head, serve(chain));
      }
    } while (this.armNotification());
  }

  /** Puts back the last `count` chains popped, unused: the next pop() takes them again (a device waiting for room). */
  giveBack(count: number): void {
    this.lastAvail = (this.lastAvail - count) & 0xffff;
  }

  /** Chains returned and bytes written into them since the last call. */
  takeServed(): { chains: number; bytes: number } {
    const served = { chains: this.servedChains, bytes: this.servedBytes };
    this.servedChains = 0;
    this.servedBytes = 0;
    return served;
  }

  /** The available ring's index as the driver last wrote it. */
  availIndex(): number {
    return this.memory.readU16(this.config.driver + 2);
  }

  /**
   * For a device that gave chains back because they were not enough: asks
   * the driver to notify once it makes available more than `seen` (an
   * earlier availIndex()). True when it already has, so the caller looks again.
   */
  armNotificationPast(seen: number): boolean {
    const { memory, config, size } = this;
    if (this.options.eventIdx) memory.writeU16(config.device + 4 + 8 * size, seen);
    return this.availIndex() !== seen;
  }

  private walk(head: number): DescriptorChain {
    const { memory, size } = this;
    if (head >= size) throw new QueueError(`head descriptor ${head} is outside the table of ${size}`);
    const chain: DescriptorChain = { head, readable: [], writable: [] };
    let table = this.config.desc;
    let entries = size;
    let index = head;
    let walked = 0;
    let inIndirect = false;
    let sawWritable = false;
    for (;;) {
      if (++walked > entries) {
        throw new QueueError(`the chain from descriptor ${head} is longer than its table of ${entries} (a loop?)`);
      }
      const at = table + DESCRIPTOR_SIZE * index;
      const addr = Number(memory.readU64(at));
      const len = memory.readU32(at + 8);
      const flags = memory.readU16(at + 12);
      const next = memory.readU16(at + 14);
      if (flags & DESC_F_INDIRECT) {
        if (!this.options.indirect) throw new QueueError('an indirect descriptor, but VIRTIO_F_INDIRECT_DESC was not negotiated');
        if (inIndirect) throw new QueueError('an indirect descriptor inside an indirect table');
        if (flags & DESC_F_NEXT) throw new QueueError('an indirect descriptor with NEXT set');
        if (len === 0 || len % DESCRIPTOR_SIZE !== 0) throw new QueueError(`an indirect table of ${len} bytes (not a non-zero multiple of 16)`);
        if (len / DESCRIPTOR_SIZE > size) throw new QueueError(`an indirect table of ${len / DESCRIPTOR_SIZE} descriptors, more than the queue size ${size}`);
        if (!memory.contains(addr, len)) throw new QueueError(`an indirect table at ${hex(addr)}+${len} outside guest RAM`);
        table = addr;
        entries = len / DESCRIPTOR_SIZE;
        index = 0;
        walked = 0;
        inIndirect = true;
        continue;
      }
      if (len > 0 && !memory.contains(addr, len)) throw new QueueError(`a buffer at ${hex(addr)}+${len} outside guest RAM`);
      if (flags & DESC_F_WRITE) {
        sawWritable = true;
        if (len > 0) chain.writable.push({ addr, len });
      } else {
        if (sawWritable) throw new QueueError('a device-readable descriptor after a device-writable one');
        if (len > 0) chain.readable.push({ addr, len });
      }
      if (!(flags & DESC_F_NEXT)) return chain;
      if (next >= entries) throw new QueueError(`next descriptor ${next} is outside its table of ${entries}`);
      index = next;
    }
  }

  /** Returns a chain to the driver: `written` bytes went into its device-writable buffers. */
  push(head: number, written: number): void {
    const { memory, config, size } = this;
    const at = config.device + 4 + 8 * (this.used & (size - 1));
    memory.writeU32(at, head);
    memory.writeU32(at + 4, written);
    this.used = (this.used + 1) & 0xffff;
    this.servedChains++;
    this.servedBytes += written;
    // x86 keeps stores in order: the entry is visible before the index that publishes it.
    memory.writeU16(config.device + 2, this.used);
  }

  /**
   * Done with what was available: with EVENT_IDX, asks the driver to notify
   * at the next buffer (avail_event). True when more arrived meanwhile, so
   * the caller goes on rather than miss a notification the driver skipped.
   */
  armNotification(): boolean {
    const { memory, config, size } = this;
    if (this.options.eventIdx) memory.writeU16(config.device + 4 + 8 * size, this.lastAvail);
    return memory.readU16(config.driver + 2) !== this.lastAvail;
  }

  /** Whether the driver wants an interrupt for what was used since the used index was `before`. */
  needsInterrupt(before: number): boolean {
    const { memory, config, size } = this;
    const now = this.used;
    if (now === before) return false;
    if (!this.options.eventIdx) return (memory.readU16(config.driver) & AVAIL_F_NO_INTERRUPT) === 0;
    // vring_need_event: the driver's used_event lies in (before, now].
    const usedEvent = memory.readU16(config.driver + 4 + 2 * size);
    return ((now - usedEvent - 1) & 0xffff) < ((now - before) & 0xffff);
  }
}

function checkArea(memory: GuestMemory, what: string, address: number, length: number, alignment: number): void {
  if (address % alignment !== 0) throw new QueueError(`the ${what} at ${hex(address)} is not ${alignment}-byte aligned`);
  if (!memory.contains(address, length)) throw new QueueError(`the ${what} at ${hex(address)}+${length} is outside guest RAM`);
}
