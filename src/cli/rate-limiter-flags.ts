/**
 * Rate limiter options inside `--disk` and `--net`, named as Cloud
 * Hypervisor names them: `bw_size`, `bw_one_time_burst`, `bw_refill_time`
 * and the same with `ops_` (for `--net`, each with `rx_` or `tx_` in
 * front). Sizes are bytes or operations; times are milliseconds, and a
 * bucket given without a refill time refills in 1000 ms, so that its size
 * is a rate per second.
 */
import type { RateLimiterConfig, TokenBucketConfig } from '../devices/virtio/rate-limiter.js';
import { UsageError } from './fail.js';

const DEFAULT_REFILL_MS = 1000;
const FIELDS: Record<string, keyof TokenBucketConfig> = { size: 'size', one_time_burst: 'oneTimeBurst', refill_time: 'refillTimeMs' };

/** The option names this parser takes, for a flag's usage line. */
export const rateLimiterOptionNames = (prefix = '') => `${prefix}bw_size=N, ${prefix}ops_size=N (with _one_time_burst, _refill_time=MS)`;

/** Collects rate limiter options, by prefix ('' for a disk, 'rx_' and 'tx_' for a network card). */
export class RateLimiterFlags {
  private readonly limiters = new Map<string, { bandwidth?: Partial<TokenBucketConfig>; ops?: Partial<TokenBucketConfig> }>();

  constructor(
    private readonly flag: string,
    private readonly prefixes: readonly string[],
  ) {}

  /** Takes `key=value` when it is a rate limiter option; false when it is not one. */
  take(key: string, value: string): boolean {
    const m = /^(rx_|tx_)?(bw|ops)_(size|one_time_burst|refill_time)$/.exec(key);
    if (m === null || !this.prefixes.includes(m[1] ?? '')) return false;
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`${this.flag}: ${key} must be a whole number, got '${value}'`);
    const limiter = this.limiters.get(m[1] ?? '') ?? {};
    const which = m[2] === 'bw' ? 'bandwidth' : 'ops';
    limiter[which] = { ...limiter[which], [FIELDS[m[3]]]: Number(value) };
    this.limiters.set(m[1] ?? '', limiter);
    return true;
  }

  /** The limiter given with `prefix`, or undefined when none was. */
  limiter(prefix = ''): RateLimiterConfig | undefined {
    const given = this.limiters.get(prefix);
    if (given === undefined) return undefined;
    const bucket = (b: Partial<TokenBucketConfig> | undefined, name: string): TokenBucketConfig | undefined => {
      if (b === undefined) return undefined;
      if (b.size === undefined) throw new UsageError(`${this.flag}: ${prefix}${name}_size is missing: a bucket needs its size`);
      return { size: b.size, oneTimeBurst: b.oneTimeBurst, refillTimeMs: b.refillTimeMs ?? DEFAULT_REFILL_MS };
    };
    return { bandwidth: bucket(given.bandwidth, 'bw'), ops: bucket(given.ops, 'ops') };
  }
}
