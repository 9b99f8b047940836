/**
 * Loop timing benchmark: lateness of the cycle start against its absolute due
 * time (t0 + k·T) and CPU, for cellio's loop (PreciseScheduler) idle and with
 * the demo cell's devices, and for two baselines measured in the same run:
 * a bare setInterval and a setTimeout re-armed on absolute deadlines.
 */
import path from "node:path";
import { performance } from "node:perf_hooks";
import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import { loadConfigText } from "../../src/config/load.js";
import { CellApp } from "../../src/app.js";
import { silentLogger } from "../../src/infra/logger.js";
import { Histogram } from "../../src/loop/histogram.js";
import { ROOT, cpuMeter, sleep, startSimProcess, stopChild, type Figure } from "./util.js";

const PERIOD = 10;

const IDLE_CELL = `
version: 1
cell: { id: bench-idle }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 4, output_budget_ms: 4 }
devices: {}
`;

interface LoopRun {
  lateness: ReturnType<Histogram["summary"]>;
  cpuPct: number;
  cycles: number;
  skipped: number;
  misses: number;
}

async function runCell(app: CellApp, seconds: number): Promise<LoopRun> {
  await app.start();
  await sleep(1000); // connect, first good scan
  app.loop.stats.resetWindow();
  const s0 = app.loop.stats.summary();
  const cpu = cpuMeter();
  await sleep(seconds * 1000);
  const cpuPct = cpu();
  const s = app.loop.stats.summary();
  await app.stop(2000);
  return {
    lateness: s.lateness,
    cpuPct,
    cycles: s.cycles - s0.cycles,
    skipped: s.skipped - s0.skipped,
    misses: s.inputMisses - s0.inputMisses,
  };
}

/** Baseline 1: setInterval(T), lateness measured against the absolute timeline. */
async function baselineInterval(seconds: number): Promise<{ h: Histogram; cpuPct: number; drift: number }> {
  const h = new Histogram();
  const cpu = cpuMeter();
  const t0 = performance.now();
  let k = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      k++;
      h.recordMs(performance.now() - (t0 + k * PERIOD));
      if (performance.now() - t0 >= seconds * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, PERIOD);
  });
  const expected = (performance.now() - t0) / PERIOD;
  return { h, cpuPct: cpu(), drift: (1 - k / expected) * 100 };
}

/** Baseline 2: setTimeout re-armed on absolute deadlines. */
async function baselineTimeout(seconds: number): Promise<{ h: Histogram; cpuPct: number; early: number; earliest: number }> {
  const h = new Histogram();
  let early = 0;
  let earliest = 0;
  const cpu = cpuMeter();
  const t0 = performance.now();
  let k = 1;
  await new Promise<void>((resolve) => {
    const fire = (): void => {
      const now = performance.now();
      const late = now - (t0 + k * PERIOD);
      h.recordMs(late);
      if (late < 0) {
        early++;
        earliest = Math.min(earliest, late);
      }
      k++;
      if (now - t0 >= seconds * 1000) return resolve();
      setTimeout(fire, Math.max(0, t0 + k * PERIOD - performance.now()));
    };
    setTimeout(fire, PERIOD);
  });
  return { h, cpuPct: cpu(), early: (early / Math.max(1, h.count)) * 100, earliest };
}

export async function runLoopBench(seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  const add = (kase: string, metric: string, value: number, unit: string, baseline?: number, baselineName?: string): void => {
    figures.push({ bench: "loop", case: kase, metric, value, unit, ...(baseline === undefined ? {} : { baseline, baselineName }) });
  };

  const bi = await baselineInterval(seconds);
  const bt = await baselineTimeout(seconds);
  const iv = bi.h.summary();
  const to = bt.h.summary();
  add("baseline setInterval", "lateness p50", iv.p50, "ms");
  add("baseline setInterval", "lateness p99", iv.p99, "ms");
  add("baseline setInterval", "drift", bi.drift, "% slow");
  add("baseline setInterval", "cpu", bi.cpuPct, "% core");
  add("baseline setTimeout(abs)", "lateness p50", to.p50, "ms");
  add("baseline setTimeout(abs)", "lateness p99", to.p99, "ms");
  add("baseline setTimeout(abs)", "lateness max", to.max, "ms");
  add("baseline setTimeout(abs)", "cpu", bt.cpuPct, "% core");
  add("baseline setTimeout(abs)", "fired early", bt.early, "% of ticks");
  add("baseline setTimeout(abs)", "earliest", bt.earliest, "ms");

  const idle = await runCell(new CellApp(loadConfigText(IDLE_CELL, "idle"), { log: silentLogger() }), seconds);
  add("idle, 10 ms", "lateness p50", idle.lateness.p50, "ms", to.p50, "setTimeout(abs)");
  add("idle, 10 ms", "lateness p99", idle.lateness.p99, "ms", to.p99, "setTimeout(abs)");
  add("idle, 10 ms", "lateness p99.9", idle.lateness.p999, "ms", to.p999, "setTimeout(abs)");
  add("idle, 10 ms", "lateness max", idle.lateness.max, "ms", to.max, "setTimeout(abs)");
  add("idle, 10 ms", "cpu", idle.cpuPct, "% core", bt.cpuPct, "setTimeout(abs)");
  add("idle, 10 ms", "skipped cycles", idle.skipped, "cycles");

  const demoConfig = path.join(ROOT, "config", "demo-cell.yaml");
  const sim = await startSimProcess(demoConfig, 0);
  try {
    // The demo's devices and logic, without its northbound servers (OPC UA,
    // MQTT): their cost is measured by their own benchmarks.
    const doc = parseDocument(await readFile(demoConfig, "utf8"));
    doc.delete("mqtt");
    doc.delete("opcua");
    const loaded = loadConfigText(doc.toString(), demoConfig);
    const demo = await runCell(new CellApp(loaded, { log: silentLogger() }), seconds);
    add("demo devices, 10 ms", "lateness p50", demo.lateness.p50, "ms", to.p50, "setTimeout(abs)");
    add("demo devices, 10 ms", "lateness p99", demo.lateness.p99, "ms", to.p99, "setTimeout(abs)");
    add("demo devices, 10 ms", "lateness p99.9", demo.lateness.p999, "ms", to.p999, "setTimeout(abs)");
    add("demo devices, 10 ms", "lateness max", demo.lateness.max, "ms", to.max, "setTimeout(abs)");
    add("demo devices, 10 ms", "cpu", demo.cpuPct, "% core");
    add("demo devices, 10 ms", "cycles", demo.cycles, "cycles");
    add("demo devices, 10 ms", "skipped cycles", demo.skipped, "cycles");
    add("demo devices, 10 ms", "input deadline misses", demo.misses, "reads");
  } finally {
    await stopChild(sim);
  }
  return figures;
}
