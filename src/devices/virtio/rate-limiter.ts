/**
 * Rate limiters for the block and network devices, as Firecracker's
 * `rate_limiter` objects: up to two token buckets, one of bytes
 * (bandwidth) and one of operations (ops). A bucket holds `size` tokens
 * and refills from empty to full in `refillTimeMs`; it starts full, with
 * `oneTimeBurst` tokens more that are spent first and never come back. A
 * bucket of size 0 or refill time 0 sets no limit.
 *
 * An operation may start while every bucket holds a token; it then takes
 * all it costs, which may leave a bucket in debt, and the next waits until
 * the refill has paid that back. So an operation larger than the bucket
 * still goes through, and over time the rate is the one configured.
 *
 * The limits live in shared memory (SharedRateLimits), so the API can
 * change them while the device's I/O thread runs; the thread picks a
 * change up at its next operation, with full buckets, as Firecracker does.
 */

export interface TokenBucketConfig {
  size: number;
  oneTimeBurst?: number;
  refillTimeMs: number;
}

export interface RateLimiterConfig {
  /** Bytes. */
  bandwidth?: TokenBucketConfig;
  /** Requests (block) or frames (network). */
  ops?: TokenBucketConfig;
}

/** Milliseconds, from a monotonic clock. */
export type Clock = () => number;

export class TokenBucket {
  private budget: number;
  private burst: number;
  private refilledAt: number;
  /** Tokens a millisecond. */
  private readonly rate: number;

  constructor(
    private readonly config: TokenBucketConfig,
    private readonly now: Clock,
  ) {
    this.budget = config.size;
    this.burst = config.oneTimeBurst ?? 0;
    this.refilledAt = now();
    this.rate = config.size / config.refillTimeMs;
  }

  /** Milliseconds until the bucket holds a token again; 0 when it does now. */
  waitMs(): number {
    this.refill();
    if (this.burst > 0 || this.budget >= 1) return 0;
    return (1 - this.budget) / this.rate;
  }

  /** Takes `tokens`, from the one-time burst first; the bucket may go into debt. */
  take(tokens: number): void {
    this.refill();
    const fromBurst = Math.min(this.burst, tokens);
    this.burst -= fromBurst;
    this.budget -= tokens - fromBurst;
  }

  private refill(): void {
    const now = this.now();
    this.budget = Math.min(this.config.size, this.budget + (now - this.refilledAt) * this.rate);
    this.refilledAt = now;
  }
}

const limits = (bucket: TokenBucketConfig | undefined): bucket is TokenBucketConfig => bucket !== undefined && bucket.size > 0 && bucket.refillTimeMs > 0;

export class RateLimiter {
  private readonly bandwidth?: TokenBucket;
  private readonly ops?: TokenBucket;

  constructor(config: RateLimiterConfig, now: Clock = () => performance.now()) {
    if (limits(config.bandwidth)) this.bandwidth = new TokenBucket(config.bandwidth, now);
    if (limits(config.ops)) this.ops = new TokenBucket(config.ops, now);
  }

  /** Whether the configuration sets any limit at all. */
  static limits(config: RateLimiterConfig | undefined): boolean {
    return config !== undefined && (limits(config.bandwidth) || limits(config.ops));
  }

  /** Milliseconds until an operation may start; 0 when it may now. */
  waitMs(): number {
    return Math.max(this.bandwidth?.waitMs() ?? 0, this.ops?.waitMs() ?? 0);
  }

  /** An operation of `bytes` starts. */
  take(bytes: number): void {
    this.ops?.take(1);
    this.bandwidth?.take(bytes);
  }
}

/** Per limiter: whether it is set, then size, burst and refill time of bandwidth and of ops. */
const FIELDS = 7;
const GENERATION = 0;

/**
 * A device's rate limiters in shared memory (block: one; network: receive
 * and transmit), written by the main thread and read by the I/O thread.
 * A change bumps a generation count after the numbers are written.
 */
export class SharedRateLimits {
  private readonly generation: Int32Array;
  private readonly values: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.generation = new Int32Array(buffer, 0, 2);
    this.values = new Float64Array(buffer, 8);
  }

  static create(configs: readonly (RateLimiterConfig | undefined)[]): SharedRateLimits {
    const limits = new SharedRateLimits(new SharedArrayBuffer(8 + configs.length * FIELDS * Float64Array.BYTES_PER_ELEMENT));
    configs.forEach((c, i) => limits.write(i, c));
    return limits;
  }

  get count(): number {
    return this.values.length / FIELDS;
  }

  /** The main thread: limiter `index` is now `config` (undefined: no limit). */
  set(index: number, config: RateLimiterConfig | undefined): void {
    this.write(index, config);
    Atomics.add(this.generation, GENERATION, 1);
  }

  /**
   * The main thread: limiter `index` changes as `update` says, as
   * Firecracker's PATCH does: a bucket given replaces the one there (one
   * of size 0 lifts that limit), a bucket left out stays as it was.
   */
  update(index: number, update: RateLimiterConfig): void {
    const now = this.read(index);
    this.set(index, { bandwidth: update.bandwidth ?? now?.bandwidth, ops: update.ops ?? now?.ops });
  }

  read(index: number): RateLimiterConfig | undefined {
    const v = this.values.subarray(index * FIELDS, (index + 1) * FIELDS);
    if (v[0] === 0) return undefined;
    const bucket = (at: number): TokenBucketConfig | undefined =>
      v[at] > 0 ? { size: v[at], oneTimeBurst: v[at + 1], refillTimeMs: v[at + 2] } : undefined;
    return { bandwidth: bucket(1), ops: bucket(4) };
  }

  /** Changes so far: a reader that saw another count reads again. */
  changes(): number {
    return Atomics.load(this.generation, GENERATION);
  }

  private write(index: number, config: RateLimiterConfig | undefined): void {
    const bucket = (b: TokenBucketConfig | undefined) => (limits(b) ? [b.size, b.oneTimeBurst ?? 0, b.refillTimeMs] : [0, 0, 0]);
    this.values.set(RateLimiter.limits(config) ? [1, ...bucket(config!.bandwidth), ...bucket(config!.ops)] : new Array(FIELDS).fill(0), index * FIELDS);
  }
}

/**
 * A queue under one of a device's limiters, on the device's I/O thread:
 * says whether an operation may start now and, when it may not, when the
 * queue should be served again. It follows the shared limits as they change.
 */
export class QueueLimiter {
  private seen = -1;
  private limiter?: RateLimiter;
  private heldUntil?: number;

  constructor(
    private readonly shared: SharedRateLimits,
    private readonly index: number,
    readonly queue: number,
    private readonly now: Clock = () => performance.now(),
  ) {}

  /** Whether an operation may start now; false holds the queue until wakeups() says. */
  mayStart(): boolean {
    const limiter = this.current();
    const wait = limiter?.waitMs() ?? 0;
    this.heldUntil = wait > 0 ? this.now() + wait : undefined;
    return wait === 0;
  }

  /** An operation of `bytes` started (for a frame received, once its size is known). */
  take(bytes: number): void {
    this.limiter?.take(bytes);
  }

  /** mayStart(), and the operation's cost taken when it may. */
  admit(bytes: number): boolean {
    if (!this.mayStart()) return false;
    this.take(bytes);
    return true;
  }

  /** Whether the queue is held back now. */
  get held(): boolean {
    return this.heldUntil !== undefined;
  }

  wakeups(): { queue: number; atMs: number }[] {
    return this.heldUntil === undefined ? [] : [{ queue: this.queue, atMs: this.heldUntil }];
  }

  private current(): RateLimiter | undefined {
    const changes = this.shared.changes();
    if (changes !== this.seen) {
      this.seen = changes;
      const config = this.shared.read(this.index);
      this.limiter = config === undefined ? undefined : new RateLimiter(config, this.now);
    }
    return this.limiter;
  }
}
