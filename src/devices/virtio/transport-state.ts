/**
 * The virtio transport's registers in shared state: what the driver wrote
 * through the common configuration (features, status, queue setup) and
 * what the device keeps beside it (ISR, reset handshake with the I/O
 * thread). vCPU threads and the device's I/O thread both read and write it,
 * with the function's lock held.
 */
export const NO_VECTOR = 0xffff;

const At = {
  DEVICE_FEATURE_SELECT: 0,
  DRIVER_FEATURE_SELECT: 4,
  DRIVER_FEATURES: 8, // u64
  CONFIG_VECTOR: 16,
  STATUS: 18,
  ISR: 19,
  QUEUE_SELECT: 20,
  /** The driver asked for a reset while the I/O thread was using the queues. */
  RESET_PENDING: 22,
  /** The I/O thread is using the queues (guest memory) outside the lock. */
  BUSY: 23,
  /** Counts resets, so the I/O thread drops its queue state after one. */
  GENERATION: 24,
  /** NEEDS_RESET was reported since the last reset. */
  REPORTED: 28,
  /** Where the INTx pin was last driven. */
  INTX_LEVEL: 29,
  QUEUES: 32,
} as const;

const QUEUE_ENTRY = 40;
/**
 * LAST_AVAIL and USED are the device's side of the ring: the next available
 * entry it will take and its used index, kept here (not only in the I/O
 * thread's queue object) so the queue's whole state is data another thread
 * or process can take over.
 */
const Q = { SIZE: 0, VECTOR: 2, ENABLE: 4, DESC: 8, DRIVER: 16, DEVICE: 24, LAST_AVAIL: 32, USED: 34 } as const;

export interface RingIndices {
  lastAvail: number;
  used: number;
}
/**
 * After the queue registers: what each queue has served since the machine
 * was built (chains returned, bytes written into them), kept across
 * resets, for metrics. Written by the I/O thread with the lock held; read
 * by the main thread without it (a metrics line may be one request behind).
 */
const COUNTER_ENTRY = 16;
const C = { CHAINS: 0, BYTES: 8 } as const;

export interface QueueServed {
  chains: number;
  bytes: number;
}

export interface QueueRegisters {
  size: number;
  vector: number;
  enabled: boolean;
  /** Guest-physical addresses of the descriptor table, available ring and used ring, as the driver wrote them. */
  desc: bigint;
  driver: bigint;
  device: bigint;
}

export function transportStateSize(queues: number): number {
  return registersSize(queues) + queues * COUNTER_ENTRY;
}

/** The registers a reset clears: all but the counters. */
const registersSize = (queues: number): number => At.QUEUES + queues * QUEUE_ENTRY;

export class TransportState {
  constructor(
    private readonly v: DataView,
    /** The largest size of each queue: what queue_size reads after a reset. */
    readonly maxQueueSizes: readonly number[],
  ) {}

  get queueCount(): number {
    return this.maxQueueSizes.length;
  }

  /** Everything back to its reset value, and a new generation. Where INTx was driven stays: the pin has not moved yet. */
  reset(): void {
    const generation = this.generation;
    const intxLevel = this.intxLevel;
    for (let i = 0; i < registersSize(this.queueCount); i++) this.v.setUint8(i, 0);
    this.v.setUint32(At.GENERATION, (generation + 1) >>> 0, true);
    this.intxLevel = intxLevel;
    this.configVector = NO_VECTOR;
    this.maxQueueSizes.forEach((size, q) => {
      this.v.setUint16(this.queueAt(q) + Q.SIZE, size, true);
      this.v.setUint16(this.queueAt(q) + Q.VECTOR, NO_VECTOR, true);
    });
  }

  get deviceFeatureSelect(): number { return this.v.getUint32(At.DEVICE_FEATURE_SELECT, true); }
  set deviceFeatureSelect(n: number) { this.v.setUint32(At.DEVICE_FEATURE_SELECT, n, true); }
  get driverFeatureSelect(): number { return this.v.getUint32(At.DRIVER_FEATURE_SELECT, true); }
  set driverFeatureSelect(n: number) { this.v.setUint32(At.DRIVER_FEATURE_SELECT, n, true); }
  get driverFeatures(): bigint { return this.v.getBigUint64(At.DRIVER_FEATURES, true); }
  set driverFeatures(n: bigint) { this.v.setBigUint64(At.DRIVER_FEATURES, n, true); }
  get configVector(): number { return this.v.getUint16(At.CONFIG_VECTOR, true); }
  set configVector(n: number) { this.v.setUint16(At.CONFIG_VECTOR, n, true); }
  get status(): number { return this.v.getUint8(At.STATUS); }
  set status(n: number) { this.v.setUint8(At.STATUS, n); }
  get isr(): number { return this.v.getUint8(At.ISR); }
  set isr(n: number) { this.v.setUint8(At.ISR, n); }
  get queueSelect(): number { return this.v.getUint16(At.QUEUE_SELECT, true); }
  set queueSelect(n: number) { this.v.setUint16(At.QUEUE_SELECT, n, true); }
  get resetPending(): boolean { return this.v.getUint8(At.RESET_PENDING) !== 0; }
  set resetPending(b: boolean) { this.v.setUint8(At.RESET_PENDING, b ? 1 : 0); }
  get busy(): boolean { return this.v.getUint8(At.BUSY) !== 0; }
  set busy(b: boolean) { this.v.setUint8(At.BUSY, b ? 1 : 0); }
  get generation(): number { return this.v.getUint32(At.GENERATION, true); }
  get reported(): boolean { return this.v.getUint8(At.REPORTED) !== 0; }
  set reported(b: boolean) { this.v.setUint8(At.REPORTED, b ? 1 : 0); }
  get intxLevel(): boolean { return this.v.getUint8(At.INTX_LEVEL) !== 0; }
  set intxLevel(b: boolean) { this.v.setUint8(At.INTX_LEVEL, b ? 1 : 0); }

  private queueAt(q: number): number {
    return At.QUEUES + q * QUEUE_ENTRY;
  }

  ringIndices(q: number): RingIndices {
    const at = this.queueAt(q);
    return { lastAvail: this.v.getUint16(at + Q.LAST_AVAIL, true), used: this.v.getUint16(at + Q.USED, true) };
  }

  setRingIndices(q: number, { lastAvail, used }: RingIndices): void {
    const at = this.queueAt(q);
    this.v.setUint16(at + Q.LAST_AVAIL, lastAvail, true);
    this.v.setUint16(at + Q.USED, used, true);
  }

  private countersAt(q: number): number {
    return registersSize(this.queueCount) + q * COUNTER_ENTRY;
  }

  addServed(q: number, { chains, bytes }: QueueServed): void {
    const at = this.countersAt(q);
    this.v.setFloat64(at + C.CHAINS, this.v.getFloat64(at + C.CHAINS, true) + chains, true);
    this.v.setFloat64(at + C.BYTES, this.v.getFloat64(at + C.BYTES, true) + bytes, true);
  }

  served(q: number): QueueServed {
    const at = this.countersAt(q);
    return { chains: this.v.getFloat64(at + C.CHAINS, true), bytes: this.v.getFloat64(at + C.BYTES, true) };
  }

  queue(q: number): QueueRegisters {
    const at = this.queueAt(q);
    return {
      size: this.v.getUint16(at + Q.SIZE, true),
      vector: this.v.getUint16(at + Q.VECTOR, true),
      enabled: this.v.getUint16(at + Q.ENABLE, true) !== 0,
      desc: this.v.getBigUint64(at + Q.DESC, true),
      driver: this.v.getBigUint64(at + Q.DRIVER, true),
      device: this.v.getBigUint64(at + Q.DEVICE, true),
    };
  }

  setQueue(q: number, registers: Partial<QueueRegisters>): void {
    const at = this.queueAt(q);
    const { size, vector, enabled, desc, driver, device } = registers;
    if (size !== undefined) this.v.setUint16(at + Q.SIZE, size, true);
    if (vector !== undefined) this.v.setUint16(at + Q.VECTOR, vector, true);
    if (enabled !== undefined) this.v.setUint16(at + Q.ENABLE, enabled ? 1 : 0, true);
    if (desc !== undefined) this.v.setBigUint64(at + Q.DESC, desc, true);
    if (driver !== undefined) this.v.setBigUint64(at + Q.DRIVER, driver, true);
    if (device !== undefined) this.v.setBigUint64(at + Q.DEVICE, device, true);
  }
}
