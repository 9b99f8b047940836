/**
 * Fleet benchmark (issue "Modbus done right" targets): N Modbus TCP devices
 * polled every 10 ms cycle, measured FROM THE DEVICE SIDE. The simulators run
 * in a child process (fleet-sim.ts) that timestamps every request and every
 * output write; this process runs either cellio (CellApp)
 * or the baseline — a bare setInterval + modbus-serial poller — in the same
 * run, one after the other.
 *
 * Figures: polls per device per second vs nominal, poll interval p50/p99/max
 * (by the simulator's stamps, requests closer than 3 ms apart count as one
 * poll: a write that follows a read in the same cycle; on the wire, a poll is
 * its read of the discrete inputs, POLL_FC), input-change → output-write latency (the simulator
 * flips device 0's input and timestamps the coil write that mirrors it), and
 * the controller's CPU and RSS. From the controller's side: the input phase's
 * p50/p99 and the share of reads answered after the input deadline (a poll
 * on time at the device whose values wait for the next cycle), for the daemon
 * from its own Prometheus /metrics.
 *
 * Every run is also timed on the wire (wire.ts, where tcpdump can run): the
 * kernel's timestamps of the requests, answers and output writes, and of a
 * datagram the simulator sends as it flips the input. The simulator stamps a
 * request when its event loop gets to it, which on 2 cores shared with the
 * controller is up to a couple of milliseconds after it arrived; the wire
 * rows are the device side without that, and split the mirror into the
 * devices' answer time and the controller's own reaction. Each run's CPU
 * figures come from a second window right after the timing window, half as
 * long (at least 5 s): past the controller's warm-up, and not captured (the
 * capture costs every sender's system calls a little).
 *
 * The in-process run shares this bench process (and its RSS) with the
 * baseline and, under `npm run bench`, with every bench before it; so the
 * fleet is also run by the real daemon, `cellio run` (dist/src/main.js) in its
 * own process, whose CPU and RSS are read from /proc (Linux) and reported as
 * the daemon's figures. A second daemon run puts the simulator under SCHED_FIFO
 * 20 (32 devices are 32 pieces of hardware that answer whatever the
 * controller's CPU does; one simulator process on the same two cores is not)
 * and the daemon's loop under cycle.realtime_priority 10. The daemon's
 * headline case runs FLEET_DAEMON_RUNS times (default 3; median and min–max),
 * and as many times with max_in_flight 2 (devices that take pipelined requests).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { loadConfigText } from "../../src/config/load.js";
import { CellApp } from "../../src/app.js";
import { DAEMON_NODE_FLAGS } from "../../src/infra/realtime.js";
import { silentLogger } from "../../src/infra/logger.js";
import { Histogram } from "../../src/loop/histogram.js";
import { inProcessCpu, readFigures, runBaseline, type DeviceSide, type ReadFigures } from "./fleet-baseline.js";
import { deviceSideFigures, PERIOD, PROBE_PERIOD } from "./fleet-figures.js";
import { FleetSim } from "./fleet-sim.js";
import { cpuMeter, sleep, type Figure } from "./util.js";
import { WakeProbe } from "./wake-probe.js";
import { cpuPercent, freePort, gcCounts, histogramCounts, histogramDelta, metricSample, procUsage, scrapeMetrics, scrapeWhile, type HistogramCounts } from "./daemon.js";

/** Requests on the wire per connection (FLEET_MAX_IN_FLIGHT, default 1: strictly sequential, the device default). */
const MAX_IN_FLIGHT = Number(process.env.FLEET_MAX_IN_FLIGHT ?? 1);

interface RunOptions {
  /** cycle.realtime_priority of the daemon's loop. */
  readonly realtimePriority?: number;
  /** max_in_flight of every device (default MAX_IN_FLIGHT). */
  readonly maxInFlight?: number;
  /** Serve the daemon's Prometheus /metrics on this port (read before and after the window). */
  readonly metricsPort?: number;
  /** Also scrape /metrics this often during the window (ms), as a Prometheus server would, only faster. */
  readonly scrapeEveryMs?: number;
  /** A bare thread's wake-ups beside the run, over the same window (the machine's own jitter). */
  readonly probe?: WakeProbe;
}

function fleetYaml(ports: readonly number[], opts: RunOptions = {}): string {
  const devs = ports
    .map(
      (p, i) => `  d${i}:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${p}
    timeout_ms: 50
    max_in_flight: ${opts.maxInFlight ?? MAX_IN_FLIGHT}
    points:
      in0: { address: "di:0" }
      in1: { address: "di:1" }
      level: { address: "ir:0:float32" }
      out0: { address: "coil:0", direction: output }`,
    )
    .join("\n");
  const logic = ports.map((_, i) => `  d${i}.out0: "d${i}.in0"`).join("\n");
  const rt = opts.realtimePriority === undefined ? "" : `, realtime_priority: ${opts.realtimePriority}`;
  const http = opts.metricsPort === undefined ? "" : `http: { port: ${opts.metricsPort} }\n`;
  return `version: 1\ncell: { id: fleet }\ncycle: { period_ms: ${PERIOD}, input_budget_ms: 4, output_budget_ms: 4${rt} }\n${http}devices:\n${devs}\nlogic:\n${logic}\n`;
}

async function runCellio(
  ports: readonly number[],
  seconds: number,
  sim: FleetSim,
): Promise<DeviceSide & { lateP99: number; inputP50: number; inputP99: number; running: boolean; reads: ReadFigures }> {
  const app = new CellApp(loadConfigText(fleetYaml(ports), "fleet"), { log: silentLogger() });
  await app.start();
  await sleep(1000);
  await sim.reset();
  app.loop.stats.resetWindow();
  const misses0 = app.loop.stats.inputMisses;
  const cycles0 = app.loop.stats.cycles;
  const busySkips = (): number => app.runners.reduce((n, r) => n + r.counters.busySkips, 0);
  const skips0 = { busy: busySkips(), cycles: app.loop.stats.skipped };
  // Every device's request latency histogram (the driver's counters): the reads of the window, and
  // the few coil writes (device 0 mirrors a flip every 57 ms: < 0.3 % of the requests).
  const latencies = app.drivers.map((d) => (d as unknown as { stats(): { latency: Histogram } }).stats().latency);
  for (const h of latencies) h.reset();
  const cpu = cpuMeter();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const wallS = (performance.now() - t0) / 1000;
  const cpuPct = cpu();
  const rtt = new Histogram();
  for (const h of latencies) rtt.addAll(h);
  const rss = process.memoryUsage().rss / 2 ** 20;
  const report = await sim.report();
  const stats = app.loop.stats;
  const lateP99 = stats.lateness.quantileMs(0.99);
  const [inputP50, inputP99] = [stats.inputPhase.quantileMs(0.5), stats.inputPhase.quantileMs(0.99)];
  const inputMissPct = missShare(stats.inputMisses - misses0, stats.cycles - cycles0, ports.length);
  const skips = { busy: busySkips() - skips0.busy, cycles: stats.skipped - skips0.cycles, scrapes: 0 };
  const cost = await sim.cpuFigures(report, cpuPct, seconds, inProcessCpu);
  const running = app.loop.mode === "running";
  await app.stop(2000);
  return {
    ...cost,
    rss,
    report,
    inputMissPct,
    skips,
    lateP99,
    inputP50,
    inputP99,
    running,
    reads: readFigures(rtt, cost.cpu, wallS),
  };
}

/** The fleet run by the daemon itself (`cellio run` in its own process): its CPU and RSS. */
async function runDaemon(ports: readonly number[], seconds: number, sim: FleetSim, opts: RunOptions = {}): Promise<DeviceSide | undefined> {
  if (process.platform !== "linux") return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-fleet-"));
  const file = path.join(dir, "fleet.yaml");
  const metricsPort = await freePort();
  await writeFile(file, fleetYaml(ports, { ...opts, metricsPort }));
  const main = fileURLToPath(new URL("../../src/main.js", import.meta.url));
  const proc = spawn(process.execPath, [...DAEMON_NODE_FLAGS, main, "run", "-c", file, "--summary-every", "0", "--state-dir", dir], { stdio: ["ignore", "ignore", "inherit"] });
  try {
    await sleep(3000); // start, connect, first good scan
    await sim.reset();
    opts.probe?.reset();
    const m0 = await loopCounters(metricsPort);
    const u0 = await procUsage(proc.pid!);
    const t0 = performance.now();
    const scrapes = await scrapeWhile(metricsPort, opts.scrapeEveryMs, t0 + seconds * 1000);
    const u1 = await procUsage(proc.pid!);
    const wallS = (performance.now() - t0) / 1000;
    const m1 = await loopCounters(metricsPort);
    const probe = opts.probe?.report();
    const report = await sim.report(probe?.pinned ? probe.stalls : undefined);
    const meter = async (): Promise<() => Promise<number>> => {
      const [v0, t] = [await procUsage(proc.pid!), performance.now()];
      return async () => cpuPercent(v0, await procUsage(proc.pid!), (performance.now() - t) / 1000);
    };
    // the probe's threads wake every few ms on each CPU: not while the CPU is measured
    opts.probe?.pause();
    const cost = await sim.cpuFigures(report, cpuPercent(u0, u1, wallS), seconds, meter, (ms) => scrapeWhile(metricsPort, opts.scrapeEveryMs, performance.now() + ms)).finally(() => opts.probe?.resume());
    const inputMissPct = missShare(m1.inputMisses - m0.inputMisses, m1.cycles - m0.cycles, ports.length);
    const skips = { busy: m1.busySkips - m0.busySkips, cycles: m1.skipped - m0.skipped, scrapes };
    return {
      ...cost,
      rss: u1.rssMiB,
      report,
      inputMissPct,
      skips,
      gcMaxAtMostMs: histogramDelta(m0.gc, m1.gc).maxAtMostMs,
      latenessMaxAtMostMs: histogramDelta(m0.lateness, m1.lateness).maxAtMostMs,
      probe,
    };
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
    await rm(dir, { recursive: true, force: true });
  }
}

/** The daemon's own counters, from its Prometheus /metrics: cycles, skipped cycles, input deadline misses, busy skips (all devices), the loop thread's GC pauses, its cycles' lateness. */
async function loopCounters(
  port: number,
): Promise<{ cycles: number; skipped: number; inputMisses: number; busySkips: number; gc: HistogramCounts; lateness: HistogramCounts }> {
  const text = await scrapeMetrics(port);
  const busy = [...text.matchAll(/^cellio_device_busy_skips_total\{[^}]*\} (\S+)$/gm)];
  if (busy.length === 0) throw new Error("daemon bench: cellio_device_busy_skips_total not in the daemon's /metrics");
  return {
    cycles: metricSample(text, /^cellio_cycles_total (\S+)$/m, "cellio_cycles_total"),
    skipped: metricSample(text, /^cellio_cycles_skipped_total (\S+)$/m, "cellio_cycles_skipped_total"),
    busySkips: busy.reduce((n, m) => n + Number(m[1]), 0),
    inputMisses: metricSample(text, /^cellio_deadline_misses_total\{[^}]*phase="input"[^}]*\} (\S+)$/m, 'cellio_deadline_misses_total{phase="input"}'),
    gc: gcCounts(text),
    lateness: histogramCounts(text, "cellio_cycle_lateness_seconds"),
  };
}

/** Device reads that missed the input deadline, as % of the reads due (every device, every cycle). */
function missShare(misses: number, cycles: number, devices: number): number {
  return cycles > 0 ? (misses / (cycles * devices)) * 100 : 0;
}

/** Daemon runs of the headline and the pipelined case (FLEET_DAEMON_RUNS, default 3): single runs on this VM vary by ±5 points of CPU. */
const DAEMON_RUNS = Math.max(1, Number(process.env.FLEET_DAEMON_RUNS ?? 3));

export async function runFleetBench(seconds: number, devices = 32): Promise<Figure[]> {
  const sim = await FleetSim.start(devices);
  const ports = sim.ports;
  const figures: Figure[] = [];
  // One thread pinned to each CPU, every 5 ms: at 100 ms (one free thread, sessions 8–10) it slept
  // through most of the VM's 10–30 ms stalls. Against that, 4 interleaved pairs of 20 s showed no clear
  // cost (mirror p99 and CPU ÷ simulator within the VM's spread; REPORT.md, session 11). Its threads
  // pause while a run's CPU is measured (runDaemon).
  const probe = await WakeProbe.start(PROBE_PERIOD);
  try {
    const base = await runBaseline(ports, seconds, sim, PERIOD);
    const cell = await runCellio(ports, seconds, sim);
    const daemonRuns = async (opts: RunOptions): Promise<DeviceSide[]> => {
      const runs: DeviceSide[] = [];
      for (let i = 0; i < DAEMON_RUNS; i++) {
        const d = await runDaemon(ports, seconds, sim, opts);
        if (d) runs.push(d);
      }
      return runs;
    };
    const daemon = await daemonRuns({ probe });
    // Devices that accept pipelined requests (Modbus TCP allows it; max_in_flight says a device does):
    // a poll's two reads leave in one segment and come back together.
    const pipelined = await daemonRuns({ maxInFlight: 2, probe });
    // The devices are 32 pieces of hardware: they answer whatever the controller's CPU is doing. The
    // simulator standing in for them shares this machine's two cores, so its own delays land in the
    // device-side figures. Last daemon run: the simulator's threads under SCHED_FIFO 20 (independent
    // of the controller's load, as real devices are) and the daemon's loop under cycle.realtime_priority 10.
    // Prometheus scraping the daemon (every 200 ms here, 75 × a usual 15 s): a scrape runs on the loop's thread.
    const scraped = await runDaemon(ports, seconds, sim, { scrapeEveryMs: 200, probe });
    const independent = chrtAll(sim.pid, ["--fifo", "--all-tasks", "--pid", "20"]) ? await runDaemon(ports, seconds, sim, { realtimePriority: 10, probe }) : undefined;
    chrtAll(sim.pid, ["--other", "--all-tasks", "--pid", "0"]);
    const k = `${devices} devices, 10 ms`;
    deviceSideFigures(figures, k, "controller", [cell], base, "setInterval + modbus-serial");
    const add = (metric: string, v: number, b: number, unit: string): void => {
      figures.push({ bench: "modbus fleet", case: k, metric, value: v, unit, baseline: b, baselineName: "setInterval + modbus-serial" });
    };
    add("read requests", cell.reads.perSecond, base.reads.perSecond, "req/s");
    add("read round trip p50 (32 devices at once)", cell.reads.rtt.p50, base.reads.rtt.p50, "ms");
    add("read round trip p99 (32 devices at once)", cell.reads.rtt.p99, base.reads.rtt.p99, "ms");
    add("controller cpu per 1,000 reads (loop included)", cell.reads.cpuMsPer1000, base.reads.cpuMsPer1000, "ms");
    figures.push({ bench: "modbus fleet", case: k, metric: "loop lateness p99", value: cell.lateP99, unit: "ms" });
    figures.push({ bench: "modbus fleet", case: k, metric: "input phase p50 (32 polls, start → last answer)", value: cell.inputP50, unit: "ms" });
    figures.push({ bench: "modbus fleet", case: k, metric: "input phase p99 (budget 4 ms)", value: cell.inputP99, unit: "ms" });
    const bench = "setInterval + modbus-serial (bench process)";
    const runs = (xs: readonly DeviceSide[]): string => (xs.length > 1 ? `, median of ${xs.length} runs (min–max)` : "");
    if (daemon.length > 0) deviceSideFigures(figures, `${k}, cellio run (own process)${runs(daemon)}`, "process", daemon, base, bench);
    if (scraped) deviceSideFigures(figures, `${k}, cellio run (own process), /metrics scraped every 200 ms`, "process", [scraped], base, bench);
    if (pipelined.length > 0) deviceSideFigures(figures, `${k}, cellio run (own process), max_in_flight 2${runs(pipelined)}`, "process", pipelined, base, bench);
    if (independent) deviceSideFigures(figures, `${k}, cellio run (own process), loop SCHED_FIFO 10, simulator SCHED_FIFO 20`, "process", [independent], base, bench);
    figures.push({ bench: "modbus fleet", case: k, metric: "cellio mode at end (1 = running)", value: cell.running ? 1 : 0, unit: "" });
  } finally {
    sim.stop();
    await probe.stop();
  }
  return figures;
}

/** chrt on every thread of a process; false (and a line on stderr) where that is not allowed. */
function chrtAll(pid: number, args: readonly string[]): boolean {
  const r = spawnSync("chrt", [...args, String(pid)], { encoding: "utf8" });
  if (r.status !== 0) process.stderr.write(`fleet bench: chrt ${args.join(" ")} ${pid} failed: ${r.stderr || String(r.error)}\n`);
  return r.status === 0;
}

