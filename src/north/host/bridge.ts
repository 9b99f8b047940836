/**
 * Main-thread side of the north bridge: turns the loop's cycles into compact
 * deltas for the north worker, and does as little as it can on the loop's
 * thread.
 *
 * Per cycle: events (rare) are appended to a bounded list; then, at most
 * every `paceMs` of the loop's schedule (the cycles' due times: the end of a
 * cycle, when the bridge runs, moves with the devices' answer times, and a
 * pace of one period then skipped about every other cycle) and only when
 * the worker has applied the previous delta
 * (read from shared memory, no message), one delta is built: the samples
 * whose object changed since the last delta (samples are immutable, so a
 * reference comparison), the interlock, sequence, alarm and control mode
 * states that changed, the device states when one changed, and the loop and
 * device counters every `statsEveryMs`. A worker that lags is simply not
 * sent anything: the next delta carries everything that changed meanwhile
 * (latest wins), so nothing queues up anywhere; its events wait, bounded
 * (pending-events.ts).
 */
import type { ControlMode } from "../../core/control-mode.js";
import type { InterlockState } from "../../core/interlocks.js";
import type { Sample } from "../../core/sample.js";
import type { SequenceState } from "../../core/sequences.js";
import type { Clock } from "../../infra/clock.js";
import { Histogram } from "../../loop/histogram.js";
import { ControlTracker, type ControlState } from "./control.js";
import { PendingEvents, type CycleEvents } from "./pending-events.js";
import { encodeSamples, type AlarmSnap, type CycleDelta, type DeviceSnap, type LoopModeName, type LoopSnap, type SequenceSnap } from "./protocol.js";

/** What the bridge reads of one cycle (loop/control-loop.ts CycleResult fits). */
export interface BridgeCycle extends CycleEvents {
  readonly cycle: number;
  /** When the cycle was due on the loop's schedule (monotonic ms, whole numbers): deltas are paced on it. */
  readonly dueMs: number;
  readonly wallMs: number;
  readonly mode: LoopModeName;
  readonly latenessMs: number;
  readonly durationMs: number;
  readonly image: readonly Sample[];
  /** The control mode this cycle's outputs were computed in. */
  readonly control: ControlMode;
}

interface HistogramLike {
  summary(): { readonly p50: number; readonly p99: number; readonly max: number };
}

/** What the bridge reads of the cell (CellApp fits, structurally). */
export interface BridgeSource {
  interlocks(): readonly InterlockState[];
  sequences(): readonly SequenceState[];
  /** The core's alarm states, when the cell keeps them. */
  alarms?(): readonly AlarmSnap[];
  /** manual_mode is configured and its permit holds now (core ModeSwitch.manualPermitted); false without it. */
  manualPermitted?(): boolean;
  devices(): readonly {
    readonly name: string;
    readonly state: DeviceSnap["state"];
    readonly lastError: string;
    readonly counters: { readonly reads: number; readonly readFailures: number; readonly writes: number; readonly writeFailures: number; readonly deadlineMisses: number; readonly readLatency: HistogramLike };
  }[];
  loop(): {
    readonly cycles: number;
    readonly skipped: number;
    readonly overruns: number;
    readonly inputMisses: number;
    readonly outputMisses: number;
    readonly lateness: { readonly p50: number; readonly p99: number; readonly max: number };
    readonly duration: { readonly p99: number };
  };
}

export interface BridgeOptions {
  readonly points: number;
  readonly clock: Clock;
  /** Least time between two deltas, on the loop's schedule (default 10 ms). */
  readonly paceMs?: number;
  /** Device counters and loop stats this often (default 250 ms). */
  readonly statsEveryMs?: number;
  /** Events kept for a lagging worker (default 1000; the oldest are dropped and counted). */
  readonly maxEvents?: number;
}

export interface BridgeCounters {
  /** Cycles seen. */
  cycles: number;
  /** Deltas posted. */
  posts: number;
  /** Cycles not posted because the worker had not applied the previous delta. */
  lagged: number;
  /** Samples sent. */
  samples: number;
  /** Events dropped for a worker that lagged too long. */
  droppedEvents: number;
  /** Main-thread time spent per cycle building and posting (ms, total and the longest one). */
  busyMs: number;
  maxBusyMs: number;
}

export class CycleBridge {
  readonly counters: BridgeCounters = { cycles: 0, posts: 0, lagged: 0, samples: 0, droppedEvents: 0, busyMs: 0, maxBusyMs: 0 };
  /** Main-thread time per cycle (build and post), for p50/p99 (benchmarks: resetWindow() between windows). */
  readonly busy = new Histogram();
  private sent: (Sample | undefined)[];
  private readonly scratch: Int32Array;
  private sentInterlocks = new Map<string, InterlockState>();
  private sentSequences = new Map<string, SequenceSnap>();
  private sentAlarms = new Map<string, AlarmSnap>();
  private sentDevices = new Map<string, { state: string; lastError: string }>();
  private readonly control = new ControlTracker();
  private sentControl: ControlState | undefined;
  private readonly events: PendingEvents;
  private seq = 0;
  /** Due time of the cycle last posted. */
  private lastPost = -Infinity;
  private lastStats = -Infinity;
  private readonly paceMs: number;
  private readonly statsEveryMs: number;

  constructor(
    private readonly source: BridgeSource,
    private readonly opts: BridgeOptions,
  ) {
    this.sent = new Array<Sample | undefined>(opts.points).fill(undefined);
    this.scratch = new Int32Array(opts.points);
    this.paceMs = opts.paceMs ?? 10;
    this.statsEveryMs = opts.statsEveryMs ?? 250;
    this.events = new PendingEvents(opts.maxEvents ?? 1000);
  }

  /** A new worker: the next delta carries everything. */
  reset(): void {
    this.sent.fill(undefined);
    this.sentInterlocks.clear();
    this.sentSequences.clear();
    this.sentAlarms.clear();
    this.sentDevices.clear();
    this.sentControl = undefined;
    this.seq = 0;
    this.lastPost = -Infinity;
    this.lastStats = -Infinity;
  }

  /**
   * A cycle while there is no worker to post to (starting, restarting): its
   * events are kept for the next worker (bounded) and the control mode
   * follows it, so nothing of it is lost while north is away.
   */
  observe(c: BridgeCycle): void {
    this.counters.cycles++;
    this.events.add(c);
    this.counters.droppedEvents = this.events.droppedTotal;
    // Every cycle (not only the posted ones): a switch's time and author come from its event.
    this.control.update(c, this.source.manualPermitted?.() ?? false);
  }

  /**
   * One cycle. `applied` is the last delta the worker applied; returns the
   * delta to post now, if any (with the buffers to transfer).
   */
  onCycle(c: BridgeCycle, applied: number): { delta: CycleDelta; transfer: ArrayBuffer[] } | undefined {
    const t0 = this.opts.clock.now();
    this.observe(c);
    if (c.dueMs - this.lastPost < this.paceMs) return undefined;
    if (applied < this.seq) {
      this.counters.lagged++;
      return undefined;
    }
    return this.build(c, t0);
  }

  /** Main-thread time of one cycle's bridge work (measured by the caller, around build and post). */
  addBusy(ms: number): void {
    this.busy.recordMs(ms);
    this.counters.busyMs += ms;
    if (ms > this.counters.maxBusyMs) this.counters.maxBusyMs = ms;
  }

  private build(c: BridgeCycle, now: number): { delta: CycleDelta; transfer: ArrayBuffer[] } {
    const image = c.image;
    const sent = this.sent;
    const idx = this.scratch;
    let n = 0;
    const len = Math.min(image.length, sent.length);
    for (let i = 0; i < len; i++) {
      const s = image[i]!;
      if (s !== sent[i]) {
        sent[i] = s;
        idx[n++] = i;
      }
    }
    const samples = n > 0 ? encodeSamples(image, idx, n) : undefined;
    this.counters.samples += n;
    const interlocks = this.changedInterlocks();
    const sequences = this.changedSequences();
    const alarms = this.changedAlarms();
    const control = this.control.state !== this.sentControl ? this.control.state : undefined;
    this.sentControl = this.control.state;
    const stats = now - this.lastStats >= this.statsEveryMs;
    const devices = this.devicesIfChanged(stats);
    let loop: LoopSnap | undefined;
    if (stats) {
      this.lastStats = now;
      const s = this.source.loop();
      loop = {
        cycles: s.cycles,
        skipped: s.skipped,
        overruns: s.overruns,
        inputMisses: s.inputMisses,
        outputMisses: s.outputMisses,
        lateness: { p50: s.lateness.p50, p99: s.lateness.p99, max: s.lateness.max },
        duration: { p99: s.duration.p99 },
      };
    }
    const delta: CycleDelta = {
      t: "cycle",
      seq: ++this.seq,
      cycle: c.cycle,
      wallMs: c.wallMs,
      mode: c.mode,
      latenessMs: c.latenessMs,
      durationMs: c.durationMs,
      ...(samples ? { samples } : {}),
      ...(interlocks ? { interlocks } : {}),
      ...(sequences ? { sequences } : {}),
      ...(alarms ? { alarms } : {}),
      ...(control ? { control } : {}),
      ...this.events.take(),
      ...(devices ? { devices } : {}),
      ...(loop ? { loop } : {}),
    };
    this.lastPost = c.dueMs;
    this.counters.posts++;
    return { delta, transfer: samples ? [samples.buf] : [] };
  }

  private changedInterlocks(): InterlockState[] | undefined {
    let out: InterlockState[] | undefined;
    for (const s of this.source.interlocks()) {
      const p = this.sentInterlocks.get(s.id);
      if (
        p !== undefined &&
        p.permitted === s.permitted &&
        p.tripped === s.tripped &&
        p.latched === s.latched &&
        p.tripCount === s.tripCount &&
        p.lastCause === s.lastCause &&
        p.lastTripWallMs === s.lastTripWallMs
      ) {
        continue;
      }
      // The engine updates its states in place: send (and remember) a copy.
      const copy: InterlockState = { id: s.id, permitted: s.permitted, tripped: s.tripped, latched: s.latched, tripCount: s.tripCount, lastCause: s.lastCause, lastTripWallMs: s.lastTripWallMs };
      this.sentInterlocks.set(s.id, copy);
      (out ??= []).push(copy);
    }
    return out;
  }

  private changedSequences(): SequenceSnap[] | undefined {
    let out: SequenceSnap[] | undefined;
    for (const s of this.source.sequences()) {
      const p = this.sentSequences.get(s.id);
      if (p !== undefined && p.step === s.step && p.stepElapsedMs === s.stepElapsedMs && p.lastFault === s.lastFault && p.faulted === s.faulted) continue;
      const copy: SequenceSnap = { id: s.id, step: s.step, stepElapsedMs: s.stepElapsedMs, lastFault: s.lastFault, faulted: s.faulted };
      this.sentSequences.set(s.id, copy);
      (out ??= []).push(copy);
    }
    return out;
  }

  private changedAlarms(): AlarmSnap[] | undefined {
    let out: AlarmSnap[] | undefined;
    for (const a of this.source.alarms?.() ?? []) {
      const p = this.sentAlarms.get(a.id);
      if (p !== undefined && p.active === a.active && p.acked === a.acked && p.message === a.message) continue;
      const copy: AlarmSnap = { id: a.id, active: a.active, acked: a.acked, message: a.message };
      this.sentAlarms.set(a.id, copy);
      (out ??= []).push(copy);
    }
    return out;
  }

  /** Every device, when one changed state or error (or at the stats pace, with the counters). */
  private devicesIfChanged(force: boolean): DeviceSnap[] | undefined {
    const list = this.source.devices();
    let changed = force;
    for (const d of list) {
      const p = this.sentDevices.get(d.name);
      if (p === undefined || p.state !== d.state || p.lastError !== d.lastError) {
        this.sentDevices.set(d.name, { state: d.state, lastError: d.lastError });
        changed = true;
      }
    }
    if (!changed) return undefined;
    return list.map((d) => {
      const c = d.counters;
      const l = c.readLatency.summary();
      return {
        name: d.name,
        state: d.state,
        lastError: d.lastError,
        counters: { reads: c.reads, readFailures: c.readFailures, writes: c.writes, writeFailures: c.writeFailures, deadlineMisses: c.deadlineMisses, readLatency: { p50: l.p50, p99: l.p99, max: l.max } },
      };
    });
  }
}
