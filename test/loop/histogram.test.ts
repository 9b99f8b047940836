/**
 * The loop's allocation-free histogram: quantiles never under-report, and
 * addAll() of several histograms equals one histogram fed every value.
 */
import { describe, expect, it } from "vitest";
import { Histogram } from "../../src/loop/histogram.js";

describe("Histogram", () => {
  it("reports quantiles at or just above the true value (bucket resolution)", () => {
    const h = new Histogram();
    for (let i = 1; i <= 1000; i++) h.recordMs(i / 100); // 0.01 … 10 ms
    const s = h.summary();
    expect(s.count).toBe(1000);
    expect(s.p50).toBeGreaterThanOrEqual(5);
    expect(s.p50).toBeLessThan(5 * 1.02);
    expect(s.p99).toBeGreaterThanOrEqual(9.9);
    expect(s.max).toBe(10);
    expect(s.mean).toBeCloseTo(5.005, 3);
  });

  it("addAll merges: the same summary as one histogram of every value", () => {
    const parts = [new Histogram(), new Histogram(), new Histogram()];
    const all = new Histogram();
    for (let i = 0; i < 3000; i++) {
      const v = ((i * 7919) % 4001) / 97; // spread 0 … 41 ms, in no order
      parts[i % 3]!.recordMs(v);
      all.recordMs(v);
    }
    const merged = new Histogram();
    for (const p of parts) merged.addAll(p);
    expect(merged.summary()).toEqual(all.summary());
    expect(merged.sumMs).toBeCloseTo(all.sumMs, 6);
  });
});
