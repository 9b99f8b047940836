/**
 * Rate limiting for the command path, pure: time is a parameter (monotonic
 * ms). One token bucket per caller, a bounded number of callers.
 */

/** Token bucket: `capacity` commands at once, refilled at `perSecond`. Time is a parameter. */
export class TokenBucket {
  private tokens: number;
  private lastMs: number | undefined;

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
  ) {
    this.tokens = capacity;
  }

  private refill(nowMs: number): void {
    if (this.lastMs !== undefined && nowMs > this.lastMs) {
      this.tokens = Math.min(this.capacity, this.tokens + ((nowMs - this.lastMs) * this.perSecond) / 1000);
    }
    if (this.lastMs === undefined || nowMs > this.lastMs) this.lastMs = nowMs;
  }

  take(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again (nothing taken that has not been refilled). */
  full(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.capacity;
  }
}

/**
 * One token bucket per caller. At most `maxCallers` buckets: when full, only
 * buckets that have refilled completely are forgotten; if none has, a new
 * caller is refused (so a flood of new client ids cannot reset anyone's bucket).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly opts: { readonly capacity: number; readonly perSecond: number; readonly maxCallers: number }) {}

  allow(caller: string, nowMs: number): boolean {
    let b = this.buckets.get(caller);
    if (b === undefined) {
      if (this.buckets.size >= this.opts.maxCallers) {
        for (const [key, old] of this.buckets) if (old.full(nowMs)) this.buckets.delete(key);
        if (this.buckets.size >= this.opts.maxCallers) return false;
      }
      b = new TokenBucket(this.opts.capacity, this.opts.perSecond);
      this.buckets.set(caller, b);
    }
    return b.take(nowMs);
  }
}
