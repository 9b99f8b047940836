/**
 * exposition.ts renders a family byte for byte as prom-client 15 does: the
 * edge cases of numbers, escapes and labels against prom-client's own
 * Registry, and every cellio family of a scrape against prom-client's
 * rendering of the same family.
 */
import { Registry, type Metric } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Clock } from "../../../src/infra/clock.js";
import { numberText, renderFamily, type Family } from "../../../src/north/http/exposition.js";
import { CellMetrics } from "../../../src/north/http/metrics.js";
import { fakeCell } from "./fake-cell.js";

/** prom-client's text of `f`, registered as a duck-typed metric (as CellMetrics registers its own). */
async function promClientText(f: Family): Promise<string> {
  const r = new Registry();
  r.registerMetric({ name: f.name, help: f.help, type: f.type, aggregator: "sum", get: () => ({ ...f, aggregator: "sum" }) } as unknown as Metric);
  return r.getSingleMetricAsString(f.name);
}

const NUMBERS = [0, -0, 1, -1, 42, 0.1, 0.1 + 0.2, 1 / 3, -2.5e-7, 1e-7, 123456789012, 2 ** 53, 1e21, 1.5e300, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity];

describe("renderFamily", () => {
  it("writes every kind of number as prom-client does, as a value and as a label value", async () => {
    const f: Family = {
      name: "t_numbers",
      help: "numbers",
      type: "gauge",
      values: NUMBERS.map((v, i) => ({ value: v, labels: { i, le: v } })),
    };
    expect(renderFamily(f)).toBe(await promClientText(f));
  });

  it("escapes help and label values, takes each sample's metricName, and leaves the braces off a sample without labels", async () => {
    const f: Family = {
      name: "t_escapes",
      help: 'a \\ back-slash,\na new line and "quotes"',
      type: "histogram",
      values: [
        { value: 1 },
        { value: 2, labels: {} },
        { value: 3, labels: { path: 'C:\\dir\n"x"', n: 7 } },
        { value: 4, metricName: "t_escapes_bucket", labels: { device: "d0", le: "+Inf" } },
        { value: 5, metricName: "t_escapes_sum", labels: { device: "d0" } },
      ],
    };
    expect(renderFamily(f)).toBe(await promClientText(f));
    expect(renderFamily({ name: "t_empty", help: "none", type: "counter", values: [] })).toBe(await promClientText({ name: "t_empty", help: "none", type: "counter", values: [] }));
  });

  it("numberText is `${n}`", () => {
    for (const n of NUMBERS) expect(numberText(n)).toBe(`${n}`);
  });
});

describe("CellMetrics.scrape", () => {
  it("gives each cellio family the text prom-client renders for it", async () => {
    const fake = fakeCell(3);
    for (let k = 0; k < 50; k++) fake.poll(k);
    fake.runners[1]!.counters.failuresByStatus.set("bad_timeout", 2);
    fake.runners[2]!.state = "bad";
    const clock: Clock = { now: () => 1000, wall: () => 1_700_000_000_000 };
    const m = new CellMetrics(fake.cell, clock, () => () => {});
    m.attach();
    fake.cycles$.next(fake.cycle);
    const body = await fake.scrape(m);
    m.detach();
    expect(body.endsWith("\n")).toBe(true);
    const families = body.slice(0, -1).split("\n\n");
    const own = families.filter((f) => f.startsWith("# HELP cellio_"));
    expect(own.length).toBeGreaterThan(20);
    for (const text of own) {
      const name = /^# HELP (\S+)/.exec(text)![1]!;
      expect(text, name).toBe(await m.registry.getSingleMetricAsString(name));
    }
    expect(body).toContain('cellio_device_read_duration_seconds_bucket{device="d1",le="0.0025"} ');
  });
});
