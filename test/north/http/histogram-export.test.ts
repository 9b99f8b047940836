/**
 * The loop histogram's export to Prometheus buckets (cumulativeMs, sumMs):
 * what /metrics serves as cellio_device_read_duration_seconds.
 */
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
});
