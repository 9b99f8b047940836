/**
 * Prometheus metrics of the cell (prom-client, one registry per cell).
 *
 * Cheap for the loop: per cycle five records into allocation-free loop
 * histograms (lateness, duration, phases; src/loop/histogram.ts, O(1)) and
 * counters for the rare events (interlock trips, commands), taken from the
 * cycle stream. Everything else, including the histograms' buckets, is read
 * on scrape from these and the loop's own counters (LoopStats, DeviceRunner
 * counters and read-latency histograms). Labels are bounded by the config: device,
 * interlock, phase, status, command kind; never a point. The loop thread's
 * garbage-collection pauses are recorded the same way, one record per
 * collection, between attach() and detach() (src/infra/gc-monitor.ts).
 */
import { Counter, Registry, collectDefaultMetrics, type Metric } from "prom-client";
import { EMPTY, take, timeout, type Subscription } from "rxjs";
import type { CellModel } from "../../config/compile.js";
import type { Clock } from "../../infra/clock.js";
import { GcPauseMonitor, gcPausesOfThisThread, type GcPauseSource } from "../../infra/gc-monitor.js";
import type { CycleResult, ControlLoop } from "../../loop/control-loop.js";
import type { DeviceRunner } from "../../loop/device-runner.js";
import type { DeviceDriver } from "../../loop/device-port.js";
import { Histogram } from "../../loop/histogram.js";
import { renderFamily, type Sample } from "./exposition.js";

/** Northbound client counts. A field left undefined is a part that is not configured (its metric is left out). */
export interface NorthStats {
  readonly mqttConnected?: boolean;
  readonly opcuaSessions?: number;
}

/** What the metrics and probes read: the cell as CellApp exposes it. */
export interface MetricsCell {
  readonly model: CellModel;
  readonly loop: Pick<ControlLoop, "cycles$" | "stats" | "mode">;
  readonly runners: readonly DeviceRunner[];
  readonly drivers: readonly DeviceDriver[];
  /** MQTT and OPC UA client counts, from wherever those run (main thread or a worker). */
  northStats?(): NorthStats | undefined;
  /** The loop thread's real-time priority as read back from the kernel (0: normal scheduling). */
  realtimePriority?(): number;
}

/** Optional link facts a driver may expose (the Modbus driver counts reconnects). */
interface DriverLink {
  readonly reconnects?: unknown;
  readonly connected?: unknown;
}

const LOOP_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 50, 100, 250, 500, 1000, 2500];
const DEVICE_BUCKETS_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
/** GC pauses: scavenges take tenths of a ms to a few ms, a mark-compact of a large heap tens; a 10 ms cycle needs the ms steps. */
const GC_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 100, 250, 1000];
const DEVICE_STATES = ["waiting", "good", "stale", "bad"] as const;
/** A scrape renders for at most this long after a cycle has published (the loop's idle time), then waits for the next. */
const SCRAPE_SLICE_MS = 1;
/** …or this long, when no cycle comes. */
const SCRAPE_WAIT_MS = 100;
const MODES = ["starting", "running", "faulted"] as const;

/** A metric whose samples are read from the cell on each scrape (rendered by exposition.ts, registered for prom-client's own rendering too). */
class ScrapeMetric {
  readonly aggregator = "sum";
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
    private readonly read: () => Sample[],
  ) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.read() };
  }
}

/**
 * A bucket's labels: the series' labels, then `le`, copied key by key.
 * `{ ...labels, le }` (object spread, then a property) gives every object it
 * makes a hidden class (Map and DescriptorArray) of its own in V8 11 (Node
 * 20), which V8 allocates in the old generation: at 5 scrapes/s on the
 * 32-device fleet (about 1,000 bucket samples a scrape) that was 21 MB of
 * old-generation garbage a minute, a mark-compact of up to 10 ms on the loop's
 * thread every minute or so. Copied this way, the objects share one class.
 * test/north/http/scrape-garbage.test.ts
 */
function withLe(labels: Readonly<Record<string, string>>, le: number | string): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const k of Object.keys(labels)) out[k] = labels[k]!;
  out.le = le;
  return out;
}

export class CellMetrics {
  readonly registry = new Registry();
  private readonly lateness = new Histogram();
  private readonly duration = new Histogram();
  private readonly phases = { input: new Histogram(), logic: new Histogram(), output: new Histogram() };
  private readonly gcPauses = new Histogram();
  private readonly gc: GcPauseMonitor;
  /** cellio's own families by name: scrape() renders these itself. */
  private readonly own = new Map<string, ScrapeMetric>();
  private readonly trips: Counter<"interlock">;
  private readonly commands: Counter<"kind" | "result">;
  private sub: Subscription | undefined;
  private lastCycleMs: number | undefined;
  private readonly cumulative = new Array<number>(Math.max(DEVICE_BUCKETS_MS.length, LOOP_BUCKETS_MS.length, GC_BUCKETS_MS.length)).fill(0);

  /** `gcPauses`: where this thread's GC pauses come from (perf_hooks by default; tests feed their own). */
  constructor(
    private readonly cell: MetricsCell,
    private readonly clock: Clock,
    gcPauses: GcPauseSource = gcPausesOfThisThread,
  ) {
    this.gc = new GcPauseMonitor((ms) => this.gcPauses.recordMs(ms), gcPauses);
    const r = this.registry;
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 10 });
    this.trips = new Counter({ name: "cellio_interlock_trips_total", help: "Interlock trips", labelNames: ["interlock"] as const, registers: [r] });
    for (const il of cell.model.interlocks) this.trips.inc({ interlock: il.id }, 0);
    this.commands = new Counter({
      name: "cellio_commands_total",
      help: "Commands by kind and result (applied, or the refusal code)",
      labelNames: ["kind", "result"] as const,
      registers: [r],
    });
    for (const m of this.scrapeMetrics()) {
      r.registerMetric(m as unknown as Metric); // duck-typed: prom-client reads name, type and get()
      this.own.set(m.name, m);
    }
  }

  /** Start observing the cycle stream (before the loop starts, so the first cycle counts) and the GC pauses. */
  attach(): void {
    this.sub ??= this.cell.loop.cycles$.subscribe((c) => this.onCycle(c));
    this.gc.start();
  }

  detach(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.gc.stop();
  }

  /** Monotonic ms since the last published cycle; undefined before the first. */
  lastCycleAgeMs(): number | undefined {
    return this.lastCycleMs === undefined ? undefined : this.clock.now() - this.lastCycleMs;
  }

  /**
   * The exposition text and its content type, rendered in slices between
   * cycles. The server runs on the loop's thread, and `registry.metrics()`
   * renders everything in one go: measured on the 32-device fleet, 10–30 ms a
   * scrape (≈ 1,500 samples, code too rarely run to be optimised), so a tick
   * fell a whole period late and a cycle was skipped at almost every scrape.
   * One family per turn of the event loop instead ended the skips, but the
   * slices then ran among the devices' answers and delayed the input phase
   * (17 % of the reads past its deadline at 5 scrapes/s). So each slice starts
   * when a cycle has just published (the loop is idle until its next tick)
   * and renders families for at most SCRAPE_SLICE_MS; families are read at
   * slightly different moments, as any exporter's are. cellio's own families
   * are rendered by exposition.ts (prom-client's text, without V8's
   * number-to-string cache: see there), prom-client's by prom-client.
   */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const r = this.registry;
    const families = r.getMetricsAsArray();
    const parts: string[] = [];
    for (let i = 0; i < families.length; ) {
      await this.cycleEnd();
      const until = this.clock.now() + SCRAPE_SLICE_MS;
      do {
        const { name } = families[i++]!;
        const own = this.own.get(name);
        parts.push(own ? renderFamily(own.get()) : await r.getSingleMetricAsString(name));
      } while (i < families.length && this.clock.now() < until);
    }
    // as registry.metrics() joins them (Prometheus text format)
    return { contentType: r.contentType, body: `${parts.join("\n\n")}\n` };
  }

  /** The end of the next cycle (its publish), or SCRAPE_WAIT_MS if none comes (a stopped loop never holds a scrape). */
  private cycleEnd(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.cell.loop.cycles$.pipe(take(1), timeout({ first: SCRAPE_WAIT_MS, with: () => EMPTY })).subscribe({ complete: resolve });
    });
  }

  private onCycle(c: CycleResult): void {
    this.lastCycleMs = this.clock.now();
    this.lateness.recordMs(c.latenessMs);
    this.duration.recordMs(c.durationMs);
    this.phases.input.recordMs(c.inputMs);
    this.phases.logic.recordMs(c.logicMs);
    this.phases.output.recordMs(c.outputMs);
    for (const e of c.interlockEvents) if (e.kind === "trip") this.trips.inc({ interlock: e.id });
    for (const a of c.commands) this.commands.inc({ kind: a.command.kind, result: a.result.accepted ? "applied" : a.result.code });
  }

  private scrapeMetrics(): ScrapeMetric[] {
    const { loop, runners, drivers } = this.cell;
    const s = (): ControlLoop["stats"] => loop.stats;
    const perDevice = (f: (r: DeviceRunner) => number): (() => Sample[]) => () => runners.map((r) => ({ value: f(r), labels: { device: r.name } }));
    const link = (name: string): DriverLink => drivers.find((d) => d.name === name) as DriverLink;
    const out: ScrapeMetric[] = [
      new ScrapeMetric("cellio_cycle_lateness_seconds", "Cycle start minus its due time (t0 + k*T)", "histogram", () =>
        this.histogram("cellio_cycle_lateness_seconds", this.lateness, LOOP_BUCKETS_MS, {}),
      ),
      new ScrapeMetric("cellio_cycle_duration_seconds", "Cycle execution time, input phase start to output phase end", "histogram", () =>
        this.histogram("cellio_cycle_duration_seconds", this.duration, LOOP_BUCKETS_MS, {}),
      ),
      new ScrapeMetric("cellio_cycle_phase_duration_seconds", "Duration of each phase of the cycle", "histogram", () =>
        (["input", "logic", "output"] as const).flatMap((phase) =>
          this.histogram("cellio_cycle_phase_duration_seconds", this.phases[phase], LOOP_BUCKETS_MS, { phase }),
        ),
      ),
      new ScrapeMetric("cellio_gc_pause_seconds", "Garbage-collection pauses of the loop's thread (perf_hooks gc entries; not the north worker's)", "histogram", () =>
        this.histogram("cellio_gc_pause_seconds", this.gcPauses, GC_BUCKETS_MS, {}),
      ),
      new ScrapeMetric("cellio_cycles_total", "Cycles completed", "counter", () => [{ value: s().cycles }]),
      new ScrapeMetric("cellio_cycles_skipped_total", "Cycles skipped because a tick came a whole period late", "counter", () => [{ value: s().skipped }]),
      new ScrapeMetric("cellio_cycle_overruns_total", "Cycles that took longer than the period", "counter", () => [{ value: s().overruns }]),
      new ScrapeMetric("cellio_cycle_overrun_warnings_total", "Cycles above the warn_pct share of the period", "counter", () => [{ value: s().warnings }]),
      new ScrapeMetric("cellio_deadline_misses_total", "Device reads (input) or writes (output) not done by their phase deadline", "counter", () => [
        { value: s().inputMisses, labels: { phase: "input" } },
        { value: s().outputMisses, labels: { phase: "output" } },
      ]),
      new ScrapeMetric("cellio_loop_faulted", "1 while an overrun fault holds every output safe", "gauge", () => [{ value: loop.mode === "faulted" ? 1 : 0 }]),
      new ScrapeMetric("cellio_loop_mode", "Loop mode (1 for the current one): starting holds outputs safe until the first complete good scan", "gauge", () =>
        MODES.map((m) => ({ value: loop.mode === m ? 1 : 0, labels: { mode: m } })),
      ),
      new ScrapeMetric(
        "cellio_loop_realtime_priority",
        "SCHED_FIFO priority of the loop's thread as the kernel reports it (0: normal scheduling; compare with cycle.realtime_priority)",
        "gauge",
        () => [{ value: this.cell.realtimePriority?.() ?? 0 }],
      ),
      new ScrapeMetric("cellio_loop_last_cycle_age_seconds", "Time since the last completed cycle", "gauge", () => {
        const age = this.lastCycleAgeMs();
        return age === undefined ? [] : [{ value: age / 1000 }];
      }),
      new ScrapeMetric("cellio_device_reads_total", "Reads completed, per device", "counter", perDevice((r) => r.counters.reads)),
      new ScrapeMetric("cellio_device_writes_total", "Writes completed, per device", "counter", perDevice((r) => r.counters.writes)),
      new ScrapeMetric("cellio_device_write_errors_total", "Failed writes, per device", "counter", perDevice((r) => r.counters.writeFailures)),
      new ScrapeMetric("cellio_device_deadline_misses_total", "Reads not done by the input deadline, per device", "counter", perDevice((r) => r.counters.deadlineMisses)),
      new ScrapeMetric("cellio_device_busy_skips_total", "Polls skipped because the previous read was still in flight", "counter", perDevice((r) => r.counters.busySkips)),
      new ScrapeMetric("cellio_device_read_errors_total", "Failed reads, per device and kind (the status the points get)", "counter", () =>
        runners.flatMap((r) => [...r.counters.failuresByStatus].map(([kind, n]) => ({ value: n, labels: { device: r.name, kind } }))),
      ),
      new ScrapeMetric("cellio_device_state", "Device state (1 for the current one): waiting, good, stale, bad", "gauge", () =>
        runners.flatMap((r) => DEVICE_STATES.map((st) => ({ value: r.state === st ? 1 : 0, labels: { device: r.name, state: st } }))),
      ),
      new ScrapeMetric("cellio_device_reconnects_total", "Reconnections after a lost connection, per device", "counter", () =>
        runners.flatMap((r) => {
          const n = link(r.name)?.reconnects;
          return typeof n === "number" ? [{ value: n, labels: { device: r.name } }] : [];
        }),
      ),
      new ScrapeMetric("cellio_device_connected", "1 while the device's connection (TCP socket or serial bus) is open", "gauge", () =>
        runners.flatMap((r) => {
          const c = link(r.name)?.connected;
          return typeof c === "boolean" ? [{ value: c ? 1 : 0, labels: { device: r.name } }] : [];
        }),
      ),
      new ScrapeMetric("cellio_device_read_duration_seconds", "Read round trip per device (every request of one poll)", "histogram", () =>
        runners.flatMap((r) => this.histogram("cellio_device_read_duration_seconds", r.counters.readLatency, DEVICE_BUCKETS_MS, { device: r.name })),
      ),
      new ScrapeMetric("cellio_mqtt_connected", "1 while connected to the MQTT broker (absent without an mqtt: block)", "gauge", () => {
        const v = this.cell.northStats?.()?.mqttConnected;
        return v === undefined ? [] : [{ value: v ? 1 : 0 }];
      }),
      new ScrapeMetric("cellio_opcua_sessions", "OPC UA server sessions (absent without an opcua: block)", "gauge", () => {
        const v = this.cell.northStats?.()?.opcuaSessions;
        return v === undefined ? [] : [{ value: v }];
      }),
    ];
    return out;
  }

  /** A loop Histogram as Prometheus `_bucket` (cumulative, `le` in seconds), `_sum` and `_count` samples. */
  private histogram(name: string, h: Histogram, boundsMs: readonly number[], labels: Record<string, string>): Sample[] {
    const c = this.cumulative;
    h.cumulativeMs(boundsMs, c);
    const out: Sample[] = boundsMs.map((b, i) => ({ metricName: `${name}_bucket`, labels: withLe(labels, b / 1000), value: c[i]! }));
    out.push({ metricName: `${name}_bucket`, labels: withLe(labels, "+Inf"), value: h.count });
    out.push({ metricName: `${name}_sum`, labels, value: h.sumMs / 1000 });
    out.push({ metricName: `${name}_count`, labels, value: h.count });
    return out;
  }
}
