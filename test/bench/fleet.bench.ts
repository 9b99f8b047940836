/**
 * Fleet benchmark (issue "Modbus done right" targets): N Modbus TCP devices
 * polled every 10 ms cycle, measured FROM THE DEVICE SIDE. The simulators run
 * in a child process (this file with --fleet-sim) that timestamps every
 * request and every output write; this process runs either cellio (CellApp)
 * or the baseline — a bare setInterval + modbus-serial poller — in the same
 * run, one after the other.
 *
 * Figures: polls per device per second vs nominal, poll interval p50/p99/max
 * (requests closer than 3 ms apart count as one poll: a write that follows a
 * read in the same cycle), input-change → output-write latency (the child
 * flips device 0's input and timestamps the coil write that mirrors it), and
 * the controller's CPU and RSS.
 *
 * The in-process run shares this bench process (and its RSS) with the
 * baseline and, under `npm run bench`, with every bench before it; so the
 * fleet is also run by the real daemon, `cellio run` (dist/src/main.js) in its
 * own process, whose CPU and RSS are read from /proc (Linux) and reported as
 * the daemon's figures. A second daemon run puts the simulator under SCHED_FIFO
 * 20 (32 devices are 32 pieces of hardware that answer whatever the
 * controller's CPU does; one simulator process on the same two cores is not)
 * and the daemon's loop under cycle.realtime_priority 10.
 */
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import ModbusSerial from "modbus-serial";
import { loadConfigText } from "../../src/config/load.js";
import { CellApp } from "../../src/app.js";
import { SINGLE_THREADED_GC } from "../../src/infra/realtime.js";
import { silentLogger } from "../../src/infra/logger.js";
import { Histogram } from "../../src/loop/histogram.js";
import { ModbusTcpSimServer } from "../../simulators/modbus/tcp-server.js";
import { RegisterBank } from "../../simulators/modbus/bank.js";
import { cpuMeter, sleep, type Figure } from "./util.js";

const PERIOD = 10;
/** Requests on the wire per connection (FLEET_MAX_IN_FLIGHT, default 1: strictly sequential, the device default). */
const MAX_IN_FLIGHT = Number(process.env.FLEET_MAX_IN_FLIGHT ?? 1);
const ModbusRTU = ModbusSerial as unknown as typeof ModbusSerial.default;

interface SimReport {
  /** The simulator's own event-loop delay (ms): its stalls land in the device-side intervals. */
  simDelayP99: number;
  simDelayMax: number;
  pollsPerSecond: number[];
  interval: ReturnType<Histogram["summary"]>;
  mirror: ReturnType<Histogram["summary"]>;
  mirrorSamples: number;
}

/** Child: N servers, request timestamps, input flips on device 0. */
async function simMain(n: number): Promise<void> {
  const servers: ModbusTcpSimServer[] = [];
  const ports: number[] = [];
  const times: number[][] = [];
  let flipAt = 0;
  let flipValue = false;
  const mirror = new Histogram();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  for (let i = 0; i < n; i++) {
    const bank = new RegisterBank({ coils: 16, discreteInputs: 16, holdingRegisters: 16, inputRegisters: 16 });
    const server = new ModbusTcpSimServer({ port: 0, units: bank });
    const log: number[] = [];
    times.push(log);
    let count = 0;
    Object.defineProperty(server.stats, "requests", {
      get: () => count,
      set: (v: number) => {
        count = v;
        log.push(performance.now());
      },
    });
    if (i === 0) {
      bank.onWrite((area, addr) => {
        if (area === "coil" && addr === 0 && bank.getBit("coil", 0) === flipValue && flipAt > 0) {
          mirror.recordMs(performance.now() - flipAt);
          flipAt = 0;
        }
      });
    }
    ports.push((await server.start()).port);
    servers.push(server);
  }
  const flipper = setInterval(() => {
    flipValue = !flipValue;
    servers[0]!.bank().setBit("di", 0, flipValue);
    flipAt = performance.now();
  }, 57);
  process.send?.({ ports });
  process.on("message", (m: { cmd: string }) => {
    if (m.cmd === "reset") {
      for (const t of times) t.length = 0;
      mirror.reset();
      delay.reset();
    } else if (m.cmd === "report") {
      const h = new Histogram();
      const pollsPerSecond: number[] = [];
      for (const t of times) {
        const polls: number[] = [];
        for (const x of t) if (polls.length === 0 || x - polls[polls.length - 1]! > 3) polls.push(x);
        for (let i = 1; i < polls.length; i++) h.recordMs(polls[i]! - polls[i - 1]!);
        const span = (t[t.length - 1]! - t[0]!) / 1000;
        pollsPerSecond.push(span > 0 ? (polls.length - 1) / span : 0);
      }
      const report: SimReport = { simDelayP99: delay.percentile(99) / 1e6, simDelayMax: delay.max / 1e6, pollsPerSecond, interval: h.summary(), mirror: mirror.summary(), mirrorSamples: mirror.count };
      process.send?.(report);
    } else if (m.cmd === "stop") {
      clearInterval(flipper);
      void Promise.all(servers.map((s) => s.stop())).then(() => process.exit(0));
    }
  });
}

function fleetYaml(ports: readonly number[], realtimePriority?: number): string {
  const devs = ports
    .map(
      (p, i) => `  d${i}:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${p}
    timeout_ms: 50
    max_in_flight: ${MAX_IN_FLIGHT}
    points:
      in0: { address: "di:0" }
      in1: { address: "di:1" }
      level: { address: "ir:0:float32" }
      out0: { address: "coil:0", direction: output }`,
    )
    .join("\n");
  const logic = ports.map((_, i) => `  d${i}.out0: "d${i}.in0"`).join("\n");
  const rt = realtimePriority === undefined ? "" : `, realtime_priority: ${realtimePriority}`;
  return `version: 1\ncell: { id: fleet }\ncycle: { period_ms: ${PERIOD}, input_budget_ms: 4, output_budget_ms: 4${rt} }\ndevices:\n${devs}\nlogic:\n${logic}\n`;
}

function ask<T>(child: ChildProcess, cmd: string): Promise<T> {
  return new Promise((resolve) => {
    child.once("message", (m) => resolve(m as T));
    child.send({ cmd });
  });
}

/** The baseline: what people write by hand. setInterval, one modbus-serial client per device, read + mirror. */
async function runBaseline(ports: readonly number[], seconds: number, child: ChildProcess): Promise<{ cpu: number; rss: number; report: SimReport; reads: ReadFigures }> {
  const clients = await Promise.all(
    ports.map(async (port) => {
      const c = new ModbusRTU();
      await c.connectTCP("127.0.0.1", { port });
      c.setID(1);
      c.setTimeout(50);
      return c;
    }),
  );
  const last: (boolean | undefined)[] = clients.map(() => undefined);
  const rtt = new Histogram();
  let measuring = false;
  const timed = async <T>(p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await p();
    if (measuring) rtt.recordMs(performance.now() - t0);
    return r;
  };
  const timer = setInterval(() => {
    clients.forEach((c, i) => {
      timed(() => c.readDiscreteInputs(0, 2))
        .then(async (r) => {
          await timed(() => c.readInputRegisters(0, 2));
          const v = r.data[0] === true;
          if (v !== last[i]) {
            last[i] = v;
            await c.writeCoil(0, v);
          }
        })
        .catch(() => undefined);
    });
  }, PERIOD);
  await sleep(1000);
  child.send({ cmd: "reset" });
  const cpu = cpuMeter();
  measuring = true;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  measuring = false;
  const wallS = (performance.now() - t0) / 1000;
  const cpuPct = cpu();
  const rss = process.memoryUsage().rss / 2 ** 20;
  const report = await ask<SimReport>(child, "report");
  clearInterval(timer);
  await Promise.all(clients.map((c) => new Promise<void>((r) => c.close(() => r()))));
  return { cpu: cpuPct, rss, report, reads: readFigures(rtt, cpuPct, wallS) };
}

interface ReadFigures {
  /** Read requests per second over all devices. */
  readonly perSecond: number;
  /** Request round trip over all devices (send → answer decoded), ms. */
  readonly rtt: ReturnType<Histogram["summary"]>;
  /** CPU of the controller per 1,000 reads (everything it does, loop included), ms. */
  readonly cpuMsPer1000: number;
}

function readFigures(rtt: Histogram, cpuPct: number, wallS: number): ReadFigures {
  const perSecond = rtt.count / wallS;
  return { perSecond, rtt: rtt.summary(), cpuMsPer1000: perSecond > 0 ? ((cpuPct / 100) * 1000) / (perSecond / 1000) : 0 };
}

async function runCellio(ports: readonly number[], seconds: number, child: ChildProcess): Promise<{ cpu: number; rss: number; report: SimReport; lateP99: number; running: boolean; reads: ReadFigures }> {
  const app = new CellApp(loadConfigText(fleetYaml(ports), "fleet"), { log: silentLogger() });
  await app.start();
  await sleep(1000);
  child.send({ cmd: "reset" });
  app.loop.stats.resetWindow();
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
  const report = await ask<SimReport>(child, "report");
  const lateP99 = app.loop.stats.lateness.quantileMs(0.99);
  const running = app.loop.mode === "running";
  await app.stop(2000);
  return { cpu: cpuPct, rss, report, lateP99, running, reads: readFigures(rtt, cpuPct, wallS) };
}

/** utime + stime of a process in clock ticks, and its resident set in MiB, from /proc. */
async function procUsage(pid: number): Promise<{ ticks: number; rssMiB: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat(5))
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { ticks, rssMiB: kb / 1024 };
}

/** The fleet run by the daemon itself (`cellio run` in its own process): its CPU and RSS. */
async function runDaemon(ports: readonly number[], seconds: number, child: ChildProcess, realtimePriority?: number): Promise<{ cpu: number; rss: number; report: SimReport } | undefined> {
  if (process.platform !== "linux") return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-fleet-"));
  const file = path.join(dir, "fleet.yaml");
  await writeFile(file, fleetYaml(ports, realtimePriority));
  const main = fileURLToPath(new URL("../../src/main.js", import.meta.url));
  const proc = spawn(process.execPath, [SINGLE_THREADED_GC, main, "run", "-c", file, "--summary-every", "0", "--state-dir", dir], { stdio: ["ignore", "ignore", "inherit"] });
  try {
    await sleep(3000); // start, connect, first good scan
    child.send({ cmd: "reset" });
    const u0 = await procUsage(proc.pid!);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const u1 = await procUsage(proc.pid!);
    const wallS = (performance.now() - t0) / 1000;
    const hz = 100; // USER_HZ on Linux
    const report = await ask<SimReport>(child, "report");
    return { cpu: ((u1.ticks - u0.ticks) / hz / wallS) * 100, rss: u1.rssMiB, report };
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runFleetBench(seconds: number, devices = 32): Promise<Figure[]> {
  // The simulator runs as the daemon does, with --single-threaded-gc: under SCHED_FIFO its GC would
  // otherwise wait for V8 helper threads at normal priority (its stalls land in the device-side figures).
  const child = fork(fileURLToPath(import.meta.url), ["--fleet-sim", String(devices)], { stdio: ["ignore", "ignore", "inherit", "ipc"], execArgv: [SINGLE_THREADED_GC] });
  const { ports } = await new Promise<{ ports: number[] }>((resolve) => child.once("message", (m) => resolve(m as { ports: number[] })));
  const figures: Figure[] = [];
  try {
    const base = await runBaseline(ports, seconds, child);
    const cell = await runCellio(ports, seconds, child);
    const daemon = await runDaemon(ports, seconds, child);
    // The devices are 32 pieces of hardware: they answer whatever the controller's CPU is doing. The
    // simulator standing in for them shares this machine's two cores, so its own delays land in the
    // device-side figures. Second daemon run: the simulator's threads under SCHED_FIFO 20 (independent
    // of the controller's load, as real devices are) and the daemon's loop under cycle.realtime_priority 10.
    const independent = chrtAll(child.pid!, ["--fifo", "--all-tasks", "--pid", "20"]) ? await runDaemon(ports, seconds, child, 10) : undefined;
    chrtAll(child.pid!, ["--other", "--all-tasks", "--pid", "0"]);
    const k = `${devices} devices, 10 ms`;
    deviceSideFigures(figures, k, "controller", cell, base, "setInterval + modbus-serial");
    const add = (metric: string, v: number, b: number, unit: string): void => {
      figures.push({ bench: "modbus fleet", case: k, metric, value: v, unit, baseline: b, baselineName: "setInterval + modbus-serial" });
    };
    add("read requests", cell.reads.perSecond, base.reads.perSecond, "req/s");
    add("read round trip p50 (32 devices at once)", cell.reads.rtt.p50, base.reads.rtt.p50, "ms");
    add("read round trip p99 (32 devices at once)", cell.reads.rtt.p99, base.reads.rtt.p99, "ms");
    add("controller cpu per 1,000 reads (loop included)", cell.reads.cpuMsPer1000, base.reads.cpuMsPer1000, "ms");
    figures.push({ bench: "modbus fleet", case: k, metric: "loop lateness p99", value: cell.lateP99, unit: "ms" });
    const bench = "setInterval + modbus-serial (bench process)";
    if (daemon) deviceSideFigures(figures, `${k}, cellio run (own process)`, "process", daemon, base, bench);
    if (independent) deviceSideFigures(figures, `${k}, cellio run (own process), loop SCHED_FIFO 10, simulator SCHED_FIFO 20`, "process", independent, base, bench);
    figures.push({ bench: "modbus fleet", case: k, metric: "cellio mode at end (1 = running)", value: cell.running ? 1 : 0, unit: "" });
  } finally {
    child.send({ cmd: "stop" });
  }
  return figures;
}

/** Polls on time: the worst device's polls per second, as % of the nominal rate. */
function rate(r: SimReport): number {
  return (Math.min(...r.pollsPerSecond) / (1000 / PERIOD)) * 100;
}

/** The device-side figures of one controller run (and its CPU, RSS), against the baseline of the same run. */
function deviceSideFigures(
  figures: Figure[],
  kase: string,
  who: "controller" | "process",
  d: { cpu: number; rss: number; report: SimReport },
  base: { cpu: number; rss: number; report: SimReport },
  baselineName: string,
): void {
  const add = (metric: string, v: number, b: number, unit: string): void => {
    figures.push({ bench: "modbus fleet", case: kase, metric, value: v, unit, baseline: b, baselineName });
  };
  add("polls on time (worst device)", rate(d.report), rate(base.report), "% of nominal");
  add("poll interval p50", d.report.interval.p50, base.report.interval.p50, "ms");
  add("poll interval p99", d.report.interval.p99, base.report.interval.p99, "ms");
  add("poll interval max", d.report.interval.max, base.report.interval.max, "ms");
  add("input→output mirror p50", d.report.mirror.p50, base.report.mirror.p50, "ms");
  add("input→output mirror p99", d.report.mirror.p99, base.report.mirror.p99, "ms");
  add(`${who} cpu`, d.cpu, base.cpu, "% core");
  add(`${who} rss`, d.rss, base.rss, "MiB");
  add("simulator event-loop delay p99", d.report.simDelayP99, base.report.simDelayP99, "ms");
  add("simulator event-loop delay max", d.report.simDelayMax, base.report.simDelayMax, "ms");
}

/** chrt on every thread of a process; false (and a line on stderr) where that is not allowed. */
function chrtAll(pid: number, args: readonly string[]): boolean {
  const r = spawnSync("chrt", [...args, String(pid)], { encoding: "utf8" });
  if (r.status !== 0) process.stderr.write(`fleet bench: chrt ${args.join(" ")} ${pid} failed: ${r.stderr || String(r.error)}\n`);
  return r.status === 0;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && process.argv[2] === "--fleet-sim") void simMain(Number(process.argv[3] ?? 32));
