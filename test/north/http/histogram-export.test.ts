/**
 * The loop histogram's export to Prometheus buckets (cumulativeMs, sumMs):
 * what /metrics serves as cellio_device_read_duration_seconds.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Histogram } from "../../../src/loop/histogram.js";

describe("Histogram.cumulativeMs", () => {
  it("counts the values at or under each bound, cumulatively, in one pass", () => {
    const h = new Histogram();
    for (const ms of [0.3, 0.9, 3, 30, 30, 4000]) h.recordMs(ms);
    const bounds = [0.5, 1, 2.5, 5, 10, 25, 50, 5000];
    const out = new Array<number>(bounds.length).fill(-1);
    h.cumulativeMs(bounds, out);
    expect(out).toEqual([1, 2, 2, 3, 3, 3, 5, 6]);
    expect(h.sumMs).toBeCloseTo(4064.2, 0);
    expect(h.count).toBe(6);
  });

  it("gives zeros for an empty histogram and never counts past a bound below the smallest value", () => {
    const h = new Histogram();
    const out = [9, 9];
    h.cumulativeMs([1, 2], out);
    expect(out).toEqual([0, 0]);
    h.recordMs(100);
    const out3 = [9, 9, 9];
    h.cumulativeMs([1, 99, 102], out3);
    expect(out3).toEqual([0, 0, 1]);
  });

  it("every bucket count lies between the values under the bound less the bucket resolution and the values under the bound", () => {
    const bounds = [0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 25, 50, 100, 1000, 5000, 60_000];
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 50_000, noNaN: true }), { maxLength: 300 }), (values) => {
        const h = new Histogram();
        for (const v of values) h.recordMs(v);
        const out = new Array<number>(bounds.length).fill(-1);
        h.cumulativeMs(bounds, out);
        const us = values.map((v) => Math.round(v * 1000)); // what the histogram records
        bounds.forEach((b, i) => {
          expect(out[i]).toBeLessThanOrEqual(us.filter((u) => u <= b * 1000).length);
          expect(out[i]).toBeGreaterThanOrEqual(us.filter((u) => u <= b * 1000 * (1 - 1 / 64)).length);
          if (i > 0) expect(out[i]).toBeGreaterThanOrEqual(out[i - 1]!);
        });
        expect(out.at(-1)).toBe(values.length); // every value is well under the last bound (60 s)
      }),
      { numRuns: 300 },
    );
  });
});
