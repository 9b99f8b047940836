/**
 * A fixed-size, allocation-free latency histogram (log-linear buckets, like
 * HdrHistogram with 2 significant digits). Records microseconds; reports in
 * milliseconds. Recording is O(1) and never allocates: safe to call every cycle.
 */
const SUB_BUCKETS = 64; // linear sub-buckets per power of two → < 1.6 % error
const MAGNITUDES = 32; // up to 2^32 µs (> 1 h)

export interface HistogramSummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export class Histogram {
  private readonly counts = new Float64Array(SUB_BUCKETS * MAGNITUDES);
  private n = 0;
  private sum = 0;
  private maxUs = 0;

  /** Record a value in milliseconds (negative values count as 0). */
  recordMs(ms: number): void {
    const us = ms > 0 ? Math.round(ms * 1000) : 0;
    this.counts[Histogram.bucketOf(us)]! += 1;
    this.n += 1;
    this.sum += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  private static bucketOf(us: number): number {
    if (us < SUB_BUCKETS) return us;
    const mag = Math.floor(Math.log2(us / SUB_BUCKETS)) + 1; // ≥ 1
    const base = SUB_BUCKETS * 2 ** (mag - 1);
    const width = 2 ** (mag - 1);
    const sub = Math.min(SUB_BUCKETS - 1, Math.floor((us - base) / width));
    return Math.min(mag * SUB_BUCKETS + sub, SUB_BUCKETS * MAGNITUDES - 1);
  }

  /** Upper edge (µs) of a bucket: percentiles never under-report. */
  private static upperOf(bucket: number): number {
    if (bucket < SUB_BUCKETS) return bucket;
    const mag = Math.floor(bucket / SUB_BUCKETS);
    const sub = bucket % SUB_BUCKETS;
    const width = 2 ** (mag - 1);
    return SUB_BUCKETS * width + (sub + 1) * width - 1;
  }

  get count(): number {
    return this.n;
  }

  /** q in [0, 1]; milliseconds. */
  quantileMs(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(Histogram.upperOf(b), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  summary(): HistogramSummary {
    return {
      count: this.n,
      p50: this.quantileMs(0.5),
      p99: this.quantileMs(0.99),
      p999: this.quantileMs(0.999),
      max: this.maxUs / 1000,
      mean: this.n === 0 ? 0 : this.sum / this.n / 1000,
    };
  }

  /** Sum of the recorded values (ms). */
  get sumMs(): number {
    return this.sum / 1000;
  }

  /**
   * Cumulative counts at ascending bounds (ms), as Prometheus `le` buckets:
   * out[i] counts the values in buckets whose upper edge is ≤ boundsMs[i]
   * (bucket resolution < 1.6 %). One pass, no allocation: for metrics scrapes.
   * The pass stops at the last bucket that holds a value, and each bound's
   * last bucket is found by arithmetic (a scrape runs on the loop's thread,
   * rarely enough that this code is not optimised: a walk of every bucket
   * up to 5 s took 4–12 ms for 32 devices).
   */
  cumulativeMs(boundsMs: readonly number[], out: number[]): void {
    const counts = this.counts;
    const filled = this.n === 0 ? 0 : Histogram.bucketOf(this.maxUs) + 1; // buckets past it are empty
    let b = 0;
    let seen = 0;
    for (let i = 0; i < boundsMs.length; i++) {
      const limitUs = boundsMs[i]! * 1000;
      // the buckets whose upper edge is ≤ the bound: those before the bound's own bucket, and that one if it ends at or under it
      let end = limitUs < 0 ? 0 : Histogram.bucketOf(Math.floor(limitUs));
      if (Histogram.upperOf(end) <= limitUs) end++;
      if (end > filled) end = filled;
      while (b < end) seen += counts[b++]!;
      out[i] = seen;
    }
  }

  /** Add every value recorded by `other` (e.g. one histogram over many devices). */
  addAll(other: Histogram): void {
    for (let b = 0; b < this.counts.length; b++) this.counts[b]! += other.counts[b]!;
    this.n += other.n;
    this.sum += other.sum;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.sum = 0;
    this.maxUs = 0;
  }
}
