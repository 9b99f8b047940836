/**
 * Every sample of a bench figure, kept, for exact percentiles. The loop's
 * Histogram (src/loop/histogram.ts) reports the upper edge of a log-linear
 * bucket, 128 µs wide between 8 and 16 ms: a poll interval whose p99 is
 * 10.95 ms reads 11.007 there, over a target of 11 ms it met. Here the p99 is
 * the sample itself (nearest rank, as the Histogram ranks). Recording writes
 * into a preallocated Float64Array (doubled when full: a few times a run at
 * most), so it allocates nothing per sample.
 */
import type { HistogramSummary } from "../../src/loop/histogram.js";

export class Samples {
  private xs: Float64Array;
  private n = 0;

  constructor(capacity = 1 << 16) {
    this.xs = new Float64Array(capacity);
  }

  get count(): number {
    return this.n;
  }

  recordMs(ms: number): void {
    if (this.n === this.xs.length) {
      const grown = new Float64Array(this.xs.length * 2);
      grown.set(this.xs);
      this.xs = grown;
    }
    this.xs[this.n++] = ms;
  }

  reset(): void {
    this.n = 0;
  }

  /** p50, p99, p99.9 (nearest rank), max and mean in ms; zeros when empty. */
  summary(): HistogramSummary {
    const n = this.n;
    if (n === 0) return { count: 0, p50: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    const sorted = this.xs.slice(0, n).sort(); // a typed array sorts numerically
    const at = (q: number): number => sorted[Math.max(1, Math.ceil(q * n)) - 1]!;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i]!;
    return { count: n, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: sorted[n - 1]!, mean: sum / n };
  }
}
