/**
 * Per-token rate limit with bounded memory.
 *
 * Sliding-window counter: each key keeps the count of the current fixed minute and of the previous
 * one, and a request is allowed while `current + previous * (unelapsed fraction of the window)` is
 * below the limit. That is O(1) memory per key (a log of timestamps would grow with the limit) and
 * has no burst of 2x the limit at a window boundary, as a plain fixed window does.
 *
 * Keys live in a Map in least-recently-used order; past `maxEntries` the oldest is evicted, so
 * requests with ever-new keys cannot grow it without limit. Evicting a key forgets its count: with
 * the default cap that only happens when more distinct tokens are active within a minute than
 * any deployment this receiver targets has users.
 */
export const RATE_WINDOW_MS = 60_000;
export const DEFAULT_MAX_ENTRIES = 10_000;

interface Bucket {
  windowStart: number;
  current: number;
  previous: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** Seconds until a request would be allowed again (for `Retry-After`); 0 when allowed. */
  retryAfterSecs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly limit: number;
  private readonly maxEntries: number;
  private readonly now: () => Date;

  constructor(options: { limitPerMinute: number; now: () => Date; maxEntries?: number }) {
    this.limit = options.limitPerMinute;
    this.now = options.now;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  /** Counts one request for `key` when it is allowed; a refused request is not counted. */
  hit(key: string): RateLimitDecision {
    const nowMs = this.now().getTime();
    const windowStart = nowMs - (nowMs % RATE_WINDOW_MS);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { windowStart, current: 0, previous: 0 };
    } else {
      this.buckets.delete(key); // re-inserted below: moves the key to the most recent end
      if (bucket.windowStart !== windowStart) {
        const adjacent = windowStart - bucket.windowStart === RATE_WINDOW_MS;
        bucket = { windowStart, current: 0, previous: adjacent ? bucket.current : 0 };
      }
    }
    this.buckets.set(key, bucket);
    this.evict();

    const elapsedFraction = (nowMs - windowStart) / RATE_WINDOW_MS;
    const weighted = bucket.current + bucket.previous * (1 - elapsedFraction);
    if (weighted + 1 > this.limit) {
      return { allowed: false, retryAfterSecs: this.retryAfter(bucket, nowMs) };
    }
    bucket.current += 1;
    return { allowed: true, retryAfterSecs: 0 };
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(): void {
    while (this.buckets.size > this.maxEntries) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
  }

  /** When the weighted count drops by one: as the previous window's share decays, or at the
   * next window when the current one alone is full. */
  private retryAfter(bucket: Bucket, nowMs: number): number {
    const windowEnd = bucket.windowStart + RATE_WINDOW_MS;
    if (bucket.current + 1 > this.limit || bucket.previous === 0) {
      return Math.max(1, Math.ceil((windowEnd - nowMs) / 1000));
    }
    // previous * (1 - (t - start)/W) <= limit - 1 - current  =>  t >= start + W * (1 - room/previous)
    const room = this.limit - 1 - bucket.current;
    const t = bucket.windowStart + RATE_WINDOW_MS * (1 - room / bucket.previous);
    return Math.max(1, Math.ceil((Math.min(t, windowEnd) - nowMs) / 1000));
  }
}
