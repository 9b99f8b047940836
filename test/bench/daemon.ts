/**
 * cellio as the daemon, `cellio run` (dist/src/main.js) in its own process,
 * measured from outside: what the bench process's own heap and work cannot
 * leak into. A bench that runs CellApp in its own process measures its own
 * garbage collections and its own threads as well as cellio's.
 *
 * - Loop lateness: from the daemon's `cycle summary` log line (stdout, JSON;
 *   `--summary-every <window>`). Its p99 and max are the loop's own
 *   histogram over exactly one summary window (max exact to the µs, p99 to
 *   1.6 %), where /metrics' cellio_cycle_lateness_seconds buckets (0.1, 0.25,
 *   0.5, 1, 2.5, 5 ms…) could only bound them. A window is the span between
 *   two consecutive summary lines, so the bench waits for one line to open it.
 * - GC pauses of the loop's thread: deltas of cellio_gc_pause_seconds over
 *   the same span (read from /metrics when each line arrives): count and
 *   total (_count, _sum) exact; the max only within one bucket (more than
 *   its lower bound, at most its upper: 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10,
 *   15, 20, 30, 50, 100 ms…), the lowest bucket that holds every new pause.
 * - CPU (utime + stime of every thread, % of one core) and RSS, from /proc.
 *
 * Linux only (/proc); elsewhere startDaemon returns undefined.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { DAEMON_NODE_FLAGS } from "../../src/infra/realtime.js";
import { MAIN, sleep, stopChild, type Figure } from "./util.js";

/** utime + stime of a process (every thread) in clock ticks, and its resident set in MiB, from /proc. */
export async function procUsage(pid: number): Promise<{ ticks: number; rssMiB: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat(5))
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { ticks, rssMiB: kb / 1024 };
}

/** USER_HZ on Linux: the unit of utime and stime. */
const TICKS_PER_SECOND = 100;

/** CPU between two procUsage() readings `seconds` apart, as % of one core. */
export function cpuPercent(u0: { ticks: number }, u1: { ticks: number }, seconds: number): number {
  return ((u1.ticks - u0.ticks) / TICKS_PER_SECOND / seconds) * 100;
}

/** A daemon's Prometheus /metrics text. */
export async function scrapeMetrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** Waits until `until` (performance.now() ms), scraping /metrics every `everyMs` meanwhile; the scrapes made. */
export async function scrapeWhile(port: number, everyMs: number | undefined, until: number): Promise<number> {
  let n = 0;
  for (let now = performance.now(); now < until; now = performance.now()) {
    if (everyMs === undefined) await sleep(until - now);
    else {
      await scrapeMetrics(port);
      n++;
      await sleep(Math.min(everyMs, until - performance.now()));
    }
  }
  return n;
}

/** A free TCP port on 127.0.0.1 (for a daemon's /metrics or OPC UA endpoint). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** One parsed JSON log line of the daemon. */
export type LogRecord = Record<string, unknown>;

/** The loop figures of one summary window, from the daemon's own log line and counters. */
export interface DaemonWindow {
  readonly latenessP99Ms: number;
  readonly latenessMaxMs: number;
  readonly cycles: number;
  readonly skipped: number;
  readonly inputMisses: number;
  /** CPU of the daemon process, all threads (loop, north worker, V8, libuv), % of one core. */
  readonly cpuPct: number;
  /** Resident set at the end of the window, MiB. */
  readonly rssMiB: number;
  /** The loop thread's GC pauses in the window: count and total exact, the max within a bucket (more than maxAboveMs, at most maxAtMostMs). */
  readonly gc: HistogramWindow;
  /** Wall time of the window as the bench saw it, s. */
  readonly seconds: number;
}

/** A histogram's observations in a window: count and total exact, the max within a bucket (more than maxAboveMs, at most maxAtMostMs). */
export interface HistogramWindow {
  readonly count: number;
  readonly totalMs: number;
  readonly maxAboveMs: number;
  readonly maxAtMostMs: number;
}

/** A histogram family (e.g. cellio_gc_pause_seconds) as read from one scrape: cumulative buckets (le in ms), sum (ms) and count. */
export interface HistogramCounts {
  readonly buckets: ReadonlyArray<readonly [number, number]>;
  readonly sumMs: number;
  readonly count: number;
}

/** The value `re` captures in /metrics text; `what` names it when it is missing. */
export function metricSample(text: string, re: RegExp, what: string): number {
  const m = re.exec(text);
  if (!m) throw new Error(`daemon bench: ${what} not in the daemon's /metrics`);
  return Number(m[1]);
}

/** The unlabelled histogram `family` (in seconds) from /metrics text. */
export function histogramCounts(text: string, family: string): HistogramCounts {
  const buckets: Array<readonly [number, number]> = [];
  for (const m of text.matchAll(new RegExp(`^${family}_bucket\\{le="([^"]+)"\\} (\\S+)$`, "gm"))) {
    buckets.push([m[1] === "+Inf" ? Infinity : Number(m[1]) * 1000, Number(m[2])]);
  }
  if (buckets.length === 0) throw new Error(`daemon bench: ${family} not in the daemon's /metrics`);
  return {
    buckets,
    sumMs: metricSample(text, new RegExp(`^${family}_sum (\\S+)$`, "m"), `${family}_sum`) * 1000,
    count: metricSample(text, new RegExp(`^${family}_count (\\S+)$`, "m"), `${family}_count`),
  };
}

export function gcCounts(text: string): HistogramCounts {
  return histogramCounts(text, "cellio_gc_pause_seconds");
}

/** The observations between two scrapes; the max lies in the lowest bucket whose new count holds all the new observations. */
export function histogramDelta(a: HistogramCounts, b: HistogramCounts): HistogramWindow {
  const count = b.count - a.count;
  const i = count > 0 ? b.buckets.findIndex(([, n], k) => n - a.buckets[k]![1] === count) : -1;
  return {
    count,
    totalMs: b.sumMs - a.sumMs,
    maxAboveMs: i > 0 ? b.buckets[i - 1]![0] : 0,
    maxAtMostMs: i >= 0 ? b.buckets[i]![0] : 0,
  };
}

export interface DaemonOptions {
  /** The cell config without an `http:` block (one is appended, on a free port). */
  readonly yaml: string;
  /** Folder for the config file and the state file (--state-dir). */
  readonly dir: string;
  /** Length of a measuring window: the daemon logs its cycle summary this often. */
  readonly windowSeconds: number;
}

/** A running `cellio run`: its log lines, its /metrics and its /proc figures. */
export class Daemon {
  private readonly waiters = new Set<{ match: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void; reject: (e: Error) => void }>();
  private exited: Error | undefined;

  private constructor(
    private readonly proc: ChildProcess,
    readonly metricsPort: number,
    private readonly windowSeconds: number,
  ) {
    createInterface({ input: proc.stdout! }).on("line", (line) => this.onLine(line));
    proc.once("exit", (code, signal) => {
      this.exited = new Error(`the daemon exited (${String(code ?? signal)})`);
      for (const w of this.waiters) w.reject(this.exited);
      this.waiters.clear();
    });
  }

  /** Write the config (with `http:` on a free port) and start `node <DAEMON_NODE_FLAGS> main.js run`. */
  static async start(o: DaemonOptions): Promise<Daemon> {
    const metricsPort = await freePort();
    const file = path.join(o.dir, "daemon.yaml");
    await writeFile(file, `${o.yaml}\nhttp: { port: ${metricsPort} }\n`);
    const args = [...DAEMON_NODE_FLAGS, MAIN, "run", "-c", file, "--summary-every", String(o.windowSeconds), "--state-dir", path.join(o.dir, "daemon-state")];
    const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, CELLIO_LOG_PRETTY: "0" } });
    return new Daemon(proc, metricsPort, o.windowSeconds);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  private onLine(line: string): void {
    if (!line.startsWith("{")) return;
    let rec: LogRecord;
    try {
      rec = JSON.parse(line) as LogRecord;
    } catch {
      return;
    }
    for (const w of this.waiters) {
      if (w.match(rec)) {
        this.waiters.delete(w);
        w.resolve(rec);
      }
    }
  }

  /** The first log line from now on that `match`es. */
  waitLog(match: (r: LogRecord) => boolean, timeoutMs: number, what: string): Promise<LogRecord> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (r: LogRecord) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`daemon bench: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** The next `cycle summary` line. */
  nextSummary(): Promise<LogRecord> {
    return this.waitLog((r) => typeof r.msg === "string" && r.msg.startsWith("cycle summary") && typeof r.latenessP99Ms === "number", (2 * this.windowSeconds + 10) * 1000, "cycle summary line");
  }

  async metrics(): Promise<string> {
    return scrapeMetrics(this.metricsPort);
  }

  /** A sample of /metrics without labels (e.g. cellio_mqtt_connected), undefined while /metrics does not answer. */
  async metric(name: string): Promise<number | undefined> {
    try {
      const m = new RegExp(`^${name} (\\S+)$`, "m").exec(await this.metrics());
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Poll /metrics until `name` satisfies `ok` (e.g. the loop has cycled, MQTT is connected); its value. */
  async waitMetric(name: string, ok: (v: number) => boolean, timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    for (;;) {
      if (this.exited) throw this.exited;
      const v = await this.metric(name);
      if (v !== undefined && ok(v)) return v;
      if (performance.now() - t0 > timeoutMs) throw new Error(`daemon bench: ${name} was ${String(v)} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Once the loop cycles: throw unless its thread runs at the SCHED_FIFO priority the config asked for. */
  async requireRealtime(priority: number | undefined): Promise<void> {
    await this.waitMetric("cellio_cycles_total", (n) => n > 0, 30_000);
    const got = await this.waitMetric("cellio_loop_realtime_priority", () => true, 5000);
    if (got !== (priority ?? 0)) throw new Error(`daemon bench: the loop thread's priority is ${got}, not ${priority ?? 0} (real-time refused? see the daemon's log)`);
  }

  /**
   * One measuring window: from the next summary line to the one after it.
   * `onOpen`/`onClose` run as each line arrives (e.g. to read a counter of the load).
   */
  async window(hooks: { onOpen?: () => void; onClose?: () => void } = {}): Promise<DaemonWindow> {
    const s0 = await this.nextSummary();
    hooks.onOpen?.();
    const [u0, g0] = await Promise.all([procUsage(this.pid), this.metrics().then(gcCounts)]);
    const t0 = performance.now();
    const s1 = await this.nextSummary();
    hooks.onClose?.();
    const [u1, g1] = await Promise.all([procUsage(this.pid), this.metrics().then(gcCounts)]);
    const seconds = (performance.now() - t0) / 1000;
    const n = (r: LogRecord, k: string): number => Number(r[k]);
    return {
      latenessP99Ms: n(s1, "latenessP99Ms"),
      latenessMaxMs: n(s1, "latenessMaxMs"),
      cycles: n(s1, "cycles") - n(s0, "cycles"),
      skipped: n(s1, "skipped") - n(s0, "skipped"),
      inputMisses: n(s1, "inputMisses") - n(s0, "inputMisses"),
      cpuPct: cpuPercent(u0, u1, seconds),
      rssMiB: u1.rssMiB,
      gc: histogramDelta(g0, g1),
      seconds,
    };
  }

  async stop(): Promise<void> {
    await stopChild(this.proc);
  }
}

/** A daemon window as bench rows; `baseline` is the same figure of another daemon window of the same run. */
export function daemonFigures(figures: Figure[], bench: string, kase: string, w: DaemonWindow, baseline?: { w: DaemonWindow; name: string }): void {
  const add = (metric: string, of: (x: DaemonWindow) => number, unit: string): void => {
    figures.push({ bench, case: kase, metric, value: of(w), unit, ...(baseline ? { baseline: of(baseline.w), baselineName: baseline.name } : {}) });
  };
  add("loop lateness p99 (daemon's summary line)", (x) => x.latenessP99Ms, "ms");
  add("loop lateness max (daemon's summary line)", (x) => x.latenessMaxMs, "ms");
  add("skipped cycles", (x) => x.skipped, "cycles");
  add("input deadline misses", (x) => x.inputMisses, "reads");
  add("cpu (daemon process, all threads)", (x) => x.cpuPct, "% core");
  add("rss (daemon process)", (x) => x.rssMiB, "MiB");
  add("loop thread: GC pauses (daemon /metrics)", (x) => x.gc.count, "count");
  add("loop thread: GC pause total (daemon /metrics)", (x) => x.gc.totalMs, "ms");
  add("loop thread: GC pause max, more than (daemon /metrics bucket)", (x) => x.gc.maxAboveMs, "ms");
  add("loop thread: GC pause max, at most (daemon /metrics bucket)", (x) => x.gc.maxAtMostMs, "ms");
}
