/**
 * The fleet bench's rows for a controller's runs (fleet.bench.ts): what the
 * devices saw (the simulator's stamps, and the wire's where it was
 * captured), what the controller says of itself, its CPU and RSS, each the
 * median of the runs with their min–max, against the baseline's figure. The
 * CPU is from a steady window of its own, without the capture.
 */
import { median } from "../integration/helpers.js";
import type { DeviceSide } from "./fleet-baseline.js";
import type { Figure } from "./util.js";
import { STALL_MS, type WakeProbeReport } from "./wake-probe.js";
import { LONG_INTERVAL_MS, type WireReport } from "./wire.js";

/** The fleet's cycle (ms). */
export const PERIOD = 10;
/**
 * The bare threads beside each daemon run (one pinned to each CPU) wake this often (ms): often enough
 * that a CPU held back for a period or more shows as a wake-up at least STALL_MS late.
 */
export const PROBE_PERIOD = 5;

/** Polls on time: the worst device's polls per second, as % of the nominal rate. */
function rate(r: { readonly pollsPerSecond: readonly number[] }): number {
  return (Math.min(...r.pollsPerSecond) / (1000 / PERIOD)) * 100;
}

/**
 * The device-side figures of a controller's runs (and its CPU, RSS), against the baseline of the
 * same bench: the median of the runs, with their min–max when there are several. "cpu ÷ simulator
 * cpu" divides the controller's CPU by the simulator's over the same window: both handle the same
 * requests with the same system calls, so the ratio does not move with the machine's speed (this
 * VM's CPU figures for the same work vary by ±30 % from run to run).
 */
export function deviceSideFigures(figures: Figure[], kase: string, who: "controller" | "process", runs: readonly DeviceSide[], base: DeviceSide, baselineName: string): void {
  // One row: the runs' median, their min–max when there are several, and the baseline's figure if it has one.
  const row = (metric: string, xs: readonly number[], unit: string, baseline?: number): void => {
    const range = xs.length > 1 ? ([Math.min(...xs), Math.max(...xs)] as const) : undefined;
    const b = baseline === undefined ? {} : { baseline, baselineName };
    figures.push({ bench: "modbus fleet", case: kase, metric, value: median(xs), unit, ...b, ...(range ? { range } : {}) });
  };
  const add = (metric: string, of: (d: DeviceSide) => number, unit: string): void => row(metric, runs.map(of), unit, of(base));
  add("polls on time (worst device)", (d) => rate(d.report), "% of nominal");
  // Controller side (cellio only, no baseline): a row when every run has the figure.
  const own = (metric: string, of: (d: DeviceSide) => number | undefined, unit: string): void => {
    const xs = runs.map(of).filter((x): x is number => x !== undefined);
    if (xs.length > 0 && xs.length === runs.length) row(metric, xs, unit);
  };
  // A poll can be on time at the device and still answer after the input phase ended (its values then
  // wait for the next cycle's logic). The baseline has no input deadline.
  own("reads past the input deadline (controller side)", (d) => d.inputMissPct, "% of reads");
  // Why a device-side interval can be two periods or more.
  own("polls not sent, device's last read still in flight (controller side)", (d) => d.skips?.busy, "in the window");
  own("cycles skipped, tick a whole period late (controller side)", (d) => d.skips?.cycles, "in the window");
  // the window's own two scrapes (start, end) are not counted here: the bench's, not a Prometheus server's
  if (runs.some((d) => (d.skips?.scrapes ?? 0) > 0)) own("/metrics scrapes during the window", (d) => d.skips?.scrapes, "in the window");
  // Whether a long interval was the loop thread's own GC, or its tick starting late (bucket bounds).
  own("loop thread: longest GC pause, at most (daemon /metrics bucket)", (d) => d.gcMaxAtMostMs, "ms");
  own("loop: latest cycle start, at most (daemon /metrics bucket)", (d) => d.latenessMaxAtMostMs, "ms");
  // The machine's own jitter in the same window: bare threads of the bench process, one pinned to
  // each CPU (wake-probe.ts); rows only when they were pinned.
  const probe = (d: DeviceSide): WakeProbeReport | undefined => (d.probe?.pinned ? d.probe : undefined);
  const bare = `bare threads, one on each CPU, waking every ${PROBE_PERIOD} ms`;
  own(`${bare}: lateness p99 (the machine's jitter)`, (d) => probe(d)?.p99, "ms");
  own(`${bare}: lateness max`, (d) => probe(d)?.max, "ms");
  own(`${bare}: wake-ups at least ${STALL_MS} ms late (a CPU held back)`, (d) => probe(d)?.over5, "in the window");
  add("poll interval p50", (d) => d.report.interval.p50, "ms");
  add("poll interval p99", (d) => d.report.interval.p99, "ms");
  add("poll interval max", (d) => d.report.interval.max, "ms");
  add("input→output mirror p50", (d) => d.report.mirror.p50, "ms");
  add("input→output mirror p99", (d) => d.report.mirror.p99, "ms");
  add("mirror part 1, flip → next poll p99 (waiting for a read)", (d) => d.report.mirrorWait.p99, "ms");
  add("mirror part 2, that poll → output write p50 (one cycle's read, logic, write)", (d) => d.report.mirrorCycle.p50, "ms");
  add("mirror part 2 p99", (d) => d.report.mirrorCycle.p99, "ms");
  // The same window timed by the kernel as each segment is sent (wire.ts): the simulator's own
  // scheduling is out of these. Rows only when every run (and the baseline, for its column) was captured.
  if (runs.every((d) => d.report.wire !== undefined)) {
    const wire = (metric: string, of: (w: WireReport) => number, unit: string): void =>
      row(`on the wire: ${metric}`, runs.map((d) => of(d.report.wire!)), unit, base.report.wire ? of(base.report.wire) : undefined);
    wire("polls on time (worst device)", rate, "% of nominal");
    wire("poll interval p50", (w) => w.interval.p50, "ms");
    wire("poll interval p99", (w) => w.interval.p99, "ms");
    wire("poll interval max", (w) => w.interval.max, "ms");
    wire(`poll intervals over ${LONG_INTERVAL_MS} ms`, (w) => w.longIntervals, "in the window");
    // Which of those no CPU stall overlapped (no pinned bare thread woke STALL_MS late or more during
    // it): the ones the machine's stalls do not explain.
    const unexplained = (w: WireReport | undefined): number | undefined => (w?.longDuringStall === undefined ? undefined : w.longIntervals - w.longDuringStall);
    own(`on the wire: poll intervals over ${LONG_INTERVAL_MS} ms with no CPU held back during them`, (d) => unexplained(d.report.wire), "in the window");
    wire("input→output mirror p50", (w) => w.mirror.p50, "ms");
    wire("input→output mirror p99", (w) => w.mirror.p99, "ms");
    wire("mirror part 2 p50 (that poll → output write)", (w) => w.mirrorCycle.p50, "ms");
    wire("mirror part 2 p99", (w) => w.mirrorCycle.p99, "ms");
    wire("device answer time p50 (the simulator's share of a read)", (w) => w.answer.p50, "ms");
    wire("device answer time p99", (w) => w.answer.p99, "ms");
    wire("controller reaction p50 (the cycle's last answer → output write)", (w) => w.reaction.p50, "ms");
    wire("controller reaction p99", (w) => w.reaction.p99, "ms");
  }
  add(`${who} cpu`, (d) => d.cpu, "% core");
  add(`${who} rss`, (d) => d.rss, "MiB");
  add("simulator cpu (the same requests)", (d) => d.simCpu, "% core");
  add(`${who} cpu ÷ simulator cpu`, (d) => d.cpu / d.simCpu, "");
  // The CPU rows above are a steady window of their own without the capture (FleetSim.cpuFigures);
  // these are the timing window's, which starts soon after the controller and is captured.
  const timing = (metric: string, of: (c: DeviceSide["timing"]) => number, unit: string): void =>
    add(`timing window (from just after start, wire captured): ${metric}`, (d) => of(d.timing), unit);
  timing(`${who} cpu`, (c) => c.cpu, "% core");
  timing("simulator cpu", (c) => c.simCpu, "% core");
  add("simulator event-loop delay p99", (d) => d.report.simDelayP99, "ms");
  add("simulator event-loop delay max", (d) => d.report.simDelayMax, "ms");
}
