/**
 * Small helpers shared by the benchmarks: CPU measurement, a child-process
 * simulator, and result formatting. Benchmarks print figures; they never assert.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { PerformanceObserver, performance } from "node:perf_hooks";
import type { Observable } from "rxjs";
import { Histogram } from "../../src/loop/histogram.js";
import type { ControlLoop } from "../../src/loop/control-loop.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const MAIN = path.join(ROOT, "dist", "src", "main.js");

export interface Figure {
  readonly bench: string;
  readonly case: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** The same metric for the baseline measured in the same run, if any. */
  readonly baseline?: number;
  readonly baselineName?: string;
  /** Min and max over repeated runs, when `value` is their median. */
  readonly range?: readonly [number, number];
}

export function benchSeconds(fallback: number): number {
  const v = Number(process.env.BENCH_SECONDS);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** CPU time of this process over a window, as % of one core. */
export function cpuMeter(): () => number {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  return () => {
    const c = process.cpuUsage(c0);
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
    return ((c.user + c.system) / wallUs) * 100;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Start `cellio sim` for a config in its own process; resolves when it listens. */
export function startSimProcess(config: string, controlPort: number, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAIN, "sim", "--config", config, "--control-port", String(controlPort), "--exit-with-parent", ...extra], {
    stdio: ["pipe", "pipe", "ignore"],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    child.once("exit", (code) => reject(new Error(`simulator exited (${String(code)}) before it was ready`)));
    lines.on("line", (line) => {
      if (line.includes('"sim-ready"')) {
        child.removeAllListeners("exit");
        resolve(child);
      }
    });
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(3000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

export function fmt(n: number, digits = 3): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

/**
 * How long the loop's thread waited for a CPU, from the kernel's scheduler
 * statistics (/proc/thread-self/schedstat, Linux; field 2 is the time spent
 * runnable on a run queue, in ns). Read once per cycle on the loop's thread
 * (≈ 10 µs, the same in every case of a bench). It tells lateness that comes
 * from cellio's own work on that thread (little or no wait) from lateness
 * that comes from the machine's other threads and processes holding both
 * cores (the thread was ready but not running).
 */
export interface RunQueueFigures {
  /** Run-queue wait per cycle, ms. */
  readonly perCycle: ReturnType<Histogram["summary"]>;
  /** Total wait over the window, ms per second. */
  readonly msPerSecond: number;
  /** Cycles later than 1 ms. */
  readonly late: number;
  /** Of those, the cycles whose run-queue wait covers at least half their lateness. */
  readonly lateWaitingForCpu: number;
}

export function runQueueMeter(cycles$: Observable<{ readonly latenessMs: number }>): { read(): RunQueueFigures | undefined; stop(): void } {
  const file = "/proc/thread-self/schedstat";
  if (!existsSync(file)) return { read: () => undefined, stop: () => undefined };
  const waitNs = (): number => Number(readFileSync(file, "utf8").split(" ")[1]);
  const h = new Histogram();
  const t0 = performance.now();
  const w0 = waitNs();
  let prev = w0;
  let late = 0;
  let lateWaiting = 0;
  const sub = cycles$.subscribe((c) => {
    const w = waitNs();
    const ms = (w - prev) / 1e6;
    prev = w;
    h.recordMs(ms);
    if (c.latenessMs > 1) {
      late++;
      if (ms >= c.latenessMs / 2) lateWaiting++;
    }
  });
  return {
    read: () => ({ perCycle: h.summary(), msPerSecond: (prev - w0) / 1e6 / ((performance.now() - t0) / 1000), late, lateWaitingForCpu: lateWaiting }),
    stop: () => sub.unsubscribe(),
  };
}

/** The run-queue figures as bench rows (nothing where /proc has no schedstat). */
export function addRunQueueFigures(figures: Figure[], bench: string, kase: string, rq: RunQueueFigures | undefined): void {
  if (!rq) return;
  const add = (metric: string, value: number, unit: string): void => void figures.push({ bench, case: kase, metric, value, unit });
  add("loop thread: waiting for a CPU per cycle p99", rq.perCycle.p99, "ms");
  add("loop thread: waiting for a CPU per cycle max", rq.perCycle.max, "ms");
  add("loop thread: waiting for a CPU, total", rq.msPerSecond, "ms/s");
  add("cycles later than 1 ms", rq.late, "cycles");
  add("… of which the thread was waiting for a CPU", rq.lateWaitingForCpu, "cycles");
}


/** Garbage-collection pauses of this thread over a window (perf_hooks 'gc' entries). */
export function gcMeter(): { read(): { count: number; totalMs: number; maxMs: number }; stop(): void } {
  let count = 0;
  let totalMs = 0;
  let maxMs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      count++;
      totalMs += e.duration;
      if (e.duration > maxMs) maxMs = e.duration;
    }
  });
  obs.observe({ entryTypes: ["gc"] });
  return { read: () => ({ count, totalMs, maxMs }), stop: () => obs.disconnect() };
}

/** What one bench window measured of the loop (see loopWindow). */
export interface LoopWindow {
  readonly lateness: ReturnType<Histogram["summary"]>;
  readonly cycles: number;
  readonly skipped: number;
  readonly inputMisses: number;
  /** CPU of this process, all threads, % of one core. */
  readonly cpuPct: number;
  /** Event-loop utilization of the loop's thread, %. */
  readonly elu: number;
  readonly runQueue: RunQueueFigures | undefined;
  readonly gc: { count: number; totalMs: number; maxMs: number };
}

/** Run a cell (in this process) for `seconds` and return its loop's figures of that window. */
export async function loopWindow(app: { readonly loop: Pick<ControlLoop, "stats" | "cycles$"> }, seconds: number): Promise<LoopWindow> {
  const stats = app.loop.stats;
  stats.resetWindow();
  const s0 = stats.summary();
  const cpu = cpuMeter();
  const elu0 = performance.eventLoopUtilization();
  const rq = runQueueMeter(app.loop.cycles$);
  const gcm = gcMeter();
  await sleep(seconds * 1000);
  const s = stats.summary();
  const elu = performance.eventLoopUtilization(elu0).utilization * 100;
  const runQueue = rq.read();
  rq.stop();
  const gc = gcm.read();
  gcm.stop();
  return {
    lateness: s.lateness,
    cycles: s.cycles - s0.cycles,
    skipped: s.skipped - s0.skipped,
    inputMisses: s.inputMisses - s0.inputMisses,
    cpuPct: cpu(),
    elu,
    runQueue,
    gc,
  };
}
