/**
 * Values into the address space, off the cycle.
 *
 * The cycles$ subscriber only keeps a reference to the latest cycle (one
 * assignment per cycle: nothing northbound can slow the loop). A timer every
 * `publish_interval_ms` (50 ms) takes the latest cycle and pushes the points
 * that changed (value beyond the point's deadband, or status) since the last
 * push: at most one update per variable per interval, and only on change
 * (plus, for a value re-read unchanged, its newer source timestamp about once
 * a second, which notifies no subscriber).
 *
 * Each value carries its sample's StatusCode (core/sample.ts
 * OPCUA_STATUS_CODE) and source timestamp. A bad sample is published with a
 * null value (OPC 10000-4: the value of a Bad DataValue is to be ignored, the
 * server shall set it to null) and its frozen source timestamp (the last
 * good read); a point never read has no source timestamp at all.
 */
import { DataType, DataValue, StatusCodes, Variant, coerceStatusCode } from "node-opcua";
import type { Logger } from "../../infra/logger.js";
import { errorMessage } from "../../infra/errors.js";
import { OPCUA_STATUS_CODE, type Sample } from "../../core/sample.js";
import type { Subscription } from "rxjs";
import { setDataValue, type CellNodes } from "./nodes.js";
import { fits, toVariant, type PointType } from "./data-types.js";
import type { CellView, CycleView, DeviceView, InterlockView } from "./ports.js";

/**
 * The DataValue of a sample for a point of type `t`. A value the type cannot
 * hold (a scaled value beyond the register's range, a wrong kind) is
 * Bad_OutOfRange with a null value, never a wrapped number.
 */
export function sampleDataValue(s: Sample, t: PointType, serverNow: Date): DataValue {
  const sourceTimestamp = s.sourceTs > 0 ? new Date(s.sourceTs) : null;
  if (s.quality === "bad" || s.value === null) {
    return new DataValue({
      value: new Variant({ dataType: DataType.Null }),
      statusCode: coerceStatusCode(OPCUA_STATUS_CODE[s.status]),
      sourceTimestamp,
      serverTimestamp: serverNow,
    });
  }
  if (!fits(t, s.value)) {
    return new DataValue({ value: new Variant({ dataType: DataType.Null }), statusCode: StatusCodes.BadOutOfRange, sourceTimestamp, serverTimestamp: serverNow });
  }
  return new DataValue({
    value: toVariant(t, s.value),
    statusCode: coerceStatusCode(OPCUA_STATUS_CODE[s.status]),
    sourceTimestamp,
    serverTimestamp: serverNow,
  });
}

/**
 * A value re-read unchanged still gets its newer source timestamp this often,
 * so a reader's staleness check on the timestamp's age works. Subscribers are
 * not notified of it (the default DataChangeTrigger is StatusValue).
 */
export const SOURCE_TS_REFRESH_MS = 1000;

/**
 * Should the sample be pushed, given what was pushed last? A new status; a
 * value change beyond the deadband; or the same value re-read more than
 * SOURCE_TS_REFRESH_MS after the pushed one.
 */
export function changed(prev: Sample | undefined, next: Sample, deadband: number): boolean {
  if (prev === undefined) return true;
  if (prev === next) return false;
  if (prev.status !== next.status) return true;
  if (prev.value !== next.value) {
    if (deadband > 0 && typeof prev.value === "number" && typeof next.value === "number") {
      if (Math.abs(next.value - prev.value) >= deadband) return true;
    } else {
      return true;
    }
  }
  return next.sourceTs - prev.sourceTs >= SOURCE_TS_REFRESH_MS;
}

export interface PublisherOptions {
  readonly intervalMs: number;
  readonly log: Logger;
  /** Called after each flush with the cycle it published (alarms). */
  readonly afterFlush?: (cycle: CycleView | undefined, devices: readonly DeviceView[], interlocks: readonly InterlockView[]) => void;
}

export class ValuePublisher {
  private latest: CycleView | undefined;
  private flushed: CycleView | undefined;
  private readonly published: (Sample | undefined)[];
  private readonly deadbands: readonly number[];
  private sub: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly startWall = Date.now();
  private failing = false;
  /** Variables pushed since start (points only). */
  pushes = 0;

  constructor(
    private readonly view: CellView,
    private readonly nodes: CellNodes,
    private readonly opts: PublisherOptions,
  ) {
    this.published = new Array<Sample | undefined>(view.points.length).fill(undefined);
    this.deadbands = view.points.map((p) => p.deadband);
  }

  start(): void {
    if (this.sub) return;
    this.sub = this.view.cycles$.subscribe((c) => (this.latest = c));
    this.timer = setInterval(() => this.flush(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Push what changed since the last flush. Never throws (a failure is logged once, recovery once). */
  flush(): void {
    try {
      const c = this.latest;
      if (c !== undefined && c !== this.flushed) {
        this.flushPoints(c);
        this.flushLogic(c.wallMs);
      }
      this.flushed = c;
      const devices = this.view.deviceStates();
      this.flushDevices(devices);
      this.flushDiagnostics(c);
      this.opts.afterFlush?.(c, devices, this.view.interlockStates());
      if (this.failing) {
        this.failing = false;
        this.opts.log.info("OPC UA values are published again");
      }
    } catch (e) {
      if (!this.failing) this.opts.log.error({ err: errorMessage(e) }, "OPC UA value publish failed");
      this.failing = true;
    }
  }

  private flushPoints(c: CycleView): void {
    const now = new Date();
    const { points, pointTypes } = this.nodes;
    const image = c.image;
    for (let i = 0; i < image.length; i++) {
      const s = image[i]!;
      if (!changed(this.published[i], s, this.deadbands[i] ?? 0)) continue;
      const node = points[i];
      if (node === undefined) continue;
      setDataValue(node, sampleDataValue(s, pointTypes[i]!, now));
      this.published[i] = s;
      this.pushes++;
    }
  }

  private flushLogic(wall: number): void {
    for (const s of this.view.interlockStates()) {
      const n = this.nodes.interlocks.get(s.id);
      if (n === undefined) continue;
      n.permitted.set(s.permitted, wall);
      n.tripped.set(s.tripped, s.tripped ? s.lastTripWallMs || wall : wall);
      n.latched.set(s.latched, wall);
      n.tripCount.set(s.tripCount, wall);
      n.lastCause.set(s.lastCause, s.lastTripWallMs || wall);
      if (s.lastTripWallMs > 0) n.lastTripTime.set(new Date(s.lastTripWallMs), s.lastTripWallMs);
    }
    for (const s of this.view.sequenceStates()) {
      const n = this.nodes.sequences.get(s.id);
      if (n === undefined) continue;
      n.step.set(s.step, wall);
      n.stepElapsedMs.set(Math.round(s.stepElapsedMs), wall);
      n.lastFault.set(s.lastFault, wall);
      n.faulted.set(s.faulted, wall);
    }
  }

  private flushDevices(devices: readonly DeviceView[]): void {
    const wall = Date.now();
    for (const d of devices) {
      const n = this.nodes.devices.get(d.name);
      if (n === undefined) continue;
      n.connected.set(d.state === "good" || d.state === "stale", wall);
      n.state.set(d.state, wall);
      n.lastError.set(d.lastError, wall);
      n.latencyP99.set(round3(d.counters.readLatency.summary().p99), wall);
      n.reads.set(u32(d.counters.reads), wall);
      n.readFailures.set(u32(d.counters.readFailures), wall);
      n.writes.set(u32(d.counters.writes), wall);
      n.writeFailures.set(u32(d.counters.writeFailures), wall);
      n.deadlineMisses.set(u32(d.counters.deadlineMisses), wall);
    }
  }

  private flushDiagnostics(c: CycleView | undefined): void {
    const wall = Date.now();
    const d = this.nodes.diagnostics;
    const s = this.view.stats();
    d.periodMs.set(this.view.periodMs, wall);
    d.latenessP50.set(round3(s.lateness.p50), wall);
    d.latenessP99.set(round3(s.lateness.p99), wall);
    d.latenessMax.set(round3(s.lateness.max), wall);
    d.inputMisses.set(u32(s.inputMisses), wall);
    d.outputMisses.set(u32(s.outputMisses), wall);
    d.overruns.set(u32(s.overruns), wall);
    d.skipped.set(u32(s.skipped), wall);
    d.cycleCount.set(s.cycles, wall);
    d.uptimeS.set(Math.floor((wall - this.startWall) / 1000), wall);
    if (c !== undefined) {
      d.mode.set(c.mode, c.wallMs);
      d.faulted.set(c.mode === "faulted", c.wallMs);
      const cs = c.controlState;
      if (cs !== undefined) {
        this.nodes.control.mode.setDated(cs.mode, cs.sinceWallMs);
        this.nodes.control.by.setDated(cs.by, cs.sinceWallMs);
        this.nodes.control.since.set(new Date(cs.sinceWallMs), cs.sinceWallMs);
        this.nodes.control.manualAllowed.setDated(cs.manualPermitted, cs.permitSinceWallMs);
      }
    }
  }
}

function round3(ms: number): number {
  return Number.isFinite(ms) ? Math.round(ms * 1000) / 1000 : 0;
}

/** Counters as UInt32 (they wrap after 2^32, like any PLC counter). */
function u32(n: number): number {
  return n >>> 0;
}
