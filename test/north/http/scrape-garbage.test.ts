/**
 * A scrape's garbage dies young. Measured on the 32-device fleet scraped
 * every 200 ms, the old generation grew by 21 MB a minute (a mark-compact of
 * up to 10 ms on the loop's thread every minute or so): V8 allocates two
 * things a scrape made in the old generation, the hidden classes that object
 * spread gave each histogram bucket's labels (metrics.ts, withLe) and the text
 * of numbers through its number-to-string cache (exposition.ts). This counts
 * the bytes the old generation gains over scrapes of 32 devices whose counts
 * change between scrapes, with a scavenge every third scrape. Measured
 * (Node 20.20): 4.6–5.0 KB a scrape as it is (prom-client's own families,
 * the test's turns), 116 KB with the spread back, 15–16 KB with prom-client
 * rendering cellio's families. Bytes, not time.
 */
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../../src/infra/clock.js";
import { CellMetrics } from "../../../src/north/http/metrics.js";
import { fakeCell } from "./fake-cell.js";

v8.setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as (o?: { type: "major" | "minor" }) => void;
const oldSpaceUsed = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === "old_space")!.space_used_size;

describe("a scrape's garbage", () => {
  it("does not reach the old generation (32 devices, new counts at every scrape, a scavenge every third)", async () => {
    const fake = fakeCell(32);
    const m = new CellMetrics(fake.cell, systemClock, () => () => {});
    m.attach();
    let k = 0;
    const round = async (): Promise<void> => {
      for (let j = 0; j < 20; j++) fake.poll(k++);
      await fake.scrape(m);
    };
    for (let i = 0; i < 10; i++) await round(); // compiled code, hidden classes, caches: what stays
    gc();
    gc();
    const before = oldSpaceUsed();
    const scrapes = 60;
    for (let i = 0; i < scrapes; i++) {
      await round();
      if (i % 3 === 2) gc({ type: "minor" });
    }
    const perScrape = (oldSpaceUsed() - before) / scrapes;
    m.detach();
    expect(perScrape, `old generation: +${(perScrape / 1024).toFixed(1)} KB a scrape`).toBeLessThan(10 * 1024);
  });
});
