/**
 * cellio_gc_pause_seconds: the loop thread's garbage-collection pauses.
 * CellMetrics with a hand-fed pause source (what is recorded, exported and
 * when the source is connected), the perf_hooks source on this thread, and a
 * real cell's /metrics after this thread has collected.
 */
import { Subject } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import type { CellModel } from "../../../src/config/compile.js";
import { systemClock } from "../../../src/infra/clock.js";
import { GcPauseMonitor, gcPausesOfThisThread, sharedGcPauses, type GcPauseListener, type GcPauseSource } from "../../../src/infra/gc-monitor.js";
import type { CycleResult } from "../../../src/loop/control-loop.js";
import { LoopStats } from "../../../src/loop/stats.js";
import { CellMetrics, type MetricsCell } from "../../../src/north/http/metrics.js";
import { SimDevice, Teardown, startCell, waitFor } from "../../integration/helpers.js";
import { parseProm, type PromSample } from "./prom-text.js";

const t = new Teardown();
afterEach(() => t.run());

/** A pause source the test drives: it records whether a listener is connected. */
function handSource(): { source: GcPauseSource; emit(ms: number): void; connects: number; disconnects: number; connected(): boolean } {
  let listener: GcPauseListener | undefined;
  const s = {
    connects: 0,
    disconnects: 0,
    source: ((on: GcPauseListener) => {
      s.connects++;
      listener = on;
      return () => {
        s.disconnects++;
        listener = undefined;
      };
    }) as GcPauseSource,
    emit: (ms: number) => listener?.(ms),
    connected: () => listener !== undefined,
  };
  return s;
}

function quietCell(): MetricsCell {
  return {
    model: { interlocks: [] } as unknown as CellModel,
    loop: { cycles$: new Subject<CycleResult>(), stats: new LoopStats(), mode: "running" },
    runners: [],
    drivers: [],
  };
}

/** The GC family's lines of a scrape (a fresh registry's event-loop mean is still NaN, which the strict reader refuses). */
async function gcText(m: CellMetrics): Promise<string> {
  return (await m.scrape()).body
    .split("\n")
    .filter((l) => l.includes("cellio_gc_pause_seconds"))
    .join("\n");
}

function gcSeries(samples: PromSample[]): { buckets: Map<string, number>; sum: number; count: number } {
  const buckets = new Map(samples.filter((s) => s.name === "cellio_gc_pause_seconds_bucket").map((s) => [s.labels.le!, s.value]));
  const one = (name: string): number => {
    const hits = samples.filter((s) => s.name === name);
    if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name}`);
    return hits[0]!.value;
  };
  return { buckets, sum: one("cellio_gc_pause_seconds_sum"), count: one("cellio_gc_pause_seconds_count") };
}

/** Where churn() puts its garbage: a module variable, so the allocations escape and cannot be optimised away. */
let sink: number[][] = [];

/** Allocate (and drop) about `mb` MiB of short-lived arrays: the young generation fills and is scavenged. */
function churn(mb: number): void {
  for (let i = 0; i < mb * 1024; i++) {
    sink.push(new Array<number>(128).fill(i)); // ≈ 1 KiB
    if (sink.length >= 1024) sink = [];
  }
}

describe("cellio_gc_pause_seconds", () => {
  it("is a histogram in seconds of the pauses fed between attach and detach, on ms buckets", async () => {
    const src = handSource();
    const m = new CellMetrics(quietCell(), systemClock, src.source);
    expect(src.connected()).toBe(false); // nothing observed before attach (app start)
    m.attach();
    m.attach();
    expect(src.connects).toBe(1);
    for (const ms of [0.3, 4, 4, 24]) src.emit(ms);
    const { samples, types } = parseProm(await gcText(m));
    expect(types.get("cellio_gc_pause_seconds")).toBe("histogram");
    const gc = gcSeries(samples);
    expect(gc.count).toBe(4);
    expect(gc.sum).toBeCloseTo(0.0323, 3);
    expect(gc.buckets.get("0.0001")).toBe(0);
    expect(gc.buckets.get("0.0005")).toBe(1);
    expect(gc.buckets.get("0.003")).toBe(1);
    expect(gc.buckets.get("0.005")).toBe(3);
    expect(gc.buckets.get("0.02")).toBe(3);
    expect(gc.buckets.get("0.03")).toBe(4);
    expect(gc.buckets.get("+Inf")).toBe(4);

    m.detach(); // app stop: the observer is disconnected and nothing more is recorded
    expect(src.disconnects).toBe(1);
    expect(src.connected()).toBe(false);
    src.emit(50);
    expect(gcSeries(parseProm(await gcText(m)).samples).count).toBe(4);
  });

  it("GcPauseMonitor connects once however often it is started, and again after a stop", () => {
    const src = handSource();
    const seen: number[] = [];
    const mon = new GcPauseMonitor((ms) => seen.push(ms), src.source);
    mon.start();
    mon.start();
    expect([src.connects, mon.running]).toEqual([1, true]);
    src.emit(1.5);
    mon.stop();
    mon.stop();
    expect([src.disconnects, mon.running]).toEqual([1, false]);
    src.emit(2);
    mon.start();
    src.emit(3);
    expect(seen).toEqual([1.5, 3]);
    mon.stop();
  });

  it("a shared source connects its source once for several monitors, and lets go when the last one stops", () => {
    const src = handSource();
    const shared = sharedGcPauses(src.source);
    const a: number[] = [];
    const b: number[] = [];
    const ma = new GcPauseMonitor((ms) => a.push(ms), shared);
    const mb = new GcPauseMonitor((ms) => b.push(ms), shared);
    ma.start();
    mb.start();
    expect(src.connects).toBe(1);
    src.emit(1.5);
    ma.stop();
    expect(src.connected()).toBe(true);
    src.emit(2);
    mb.stop();
    expect(src.disconnects).toBe(1);
    expect(src.connected()).toBe(false);
    ma.start();
    src.emit(3);
    expect(src.connects).toBe(2);
    expect(a).toEqual([1.5, 3]);
    expect(b).toEqual([1.5, 2]);
  });

  it("the perf_hooks source reports this thread's collections, with their durations", async () => {
    const seen: number[] = [];
    const disconnect = gcPausesOfThisThread((ms) => seen.push(ms));
    t.add(disconnect);
    await waitFor(
      () => {
        churn(32);
        return seen.length > 0;
      },
      10_000,
      "a GC entry after allocating",
    );
    expect(seen.every((ms) => Number.isFinite(ms) && ms >= 0)).toBe(true);
    disconnect();
    const n = seen.length;
    churn(64);
    await new Promise((r) => setTimeout(r, 100)); // entries are delivered asynchronously
    expect(seen.length).toBe(n);
  });

  it("a real cell's /metrics counts the collections of its thread", async () => {
    const a = await SimDevice.start(t);
    const cell = await startCell(
      `
version: 1
cell: { id: gc-test }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
http: { port: 0 }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${a.port}
    points:
      door: { address: "di:0" }
`,
      t,
    );
    const port = cell.app.http!.address!.port;
    const scrape = async (): Promise<ReturnType<typeof gcSeries>> =>
      gcSeries(parseProm(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).samples);
    let gc = await scrape();
    const deadline = performance.now() + 10_000;
    while (gc.count === 0 && performance.now() < deadline) {
      churn(32);
      await new Promise((r) => setTimeout(r, 50));
      gc = await scrape();
    }
    expect(gc.count).toBeGreaterThan(0);
    expect(gc.buckets.get("+Inf")).toBe(gc.count);
    expect(gc.sum).toBeGreaterThan(0);
  });
});
