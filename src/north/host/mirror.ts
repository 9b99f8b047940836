/**
 * Worker side of the north bridge: a mirror of the cell built from
 * NorthInit and the deltas, offered to MQTT and the OPC UA server as the
 * same CellView interfaces they read on the loop's thread (ports.ts of each).
 *
 * Each applied delta becomes one cycle on `cycles$` with a new image array
 * (unchanged points keep their Sample object, so "did it change" stays a
 * reference comparison for the publishers) and the events since the
 * previous delta.
 */
import { Subject } from "rxjs";
import type { AppliedCommand } from "../../core/commands.js";
import type { ModeEvent } from "../../core/control-mode.js";
import type { InterlockEvent, InterlockState } from "../../core/interlocks.js";
import { INITIAL_SAMPLE, type Sample } from "../../core/sample.js";
import type { SequenceEvent } from "../../core/sequences.js";
import type { CellView as MqttCellView, LoopView } from "../mqtt/ports.js";
import type { CellView as OpcuaCellView, DeviceView as OpcuaDeviceView, StatsView } from "../opcua-server/ports.js";
import type { ControlState } from "./control.js";
import { applySamples, type AlarmSnap, type CycleDelta, type DeviceSnap, type HistogramSnap, type LoopModeName, type NorthInit, type SequenceSnap } from "./protocol.js";

/** One mirrored cycle: fits both publishers' CycleView. */
export interface MirrorCycle {
  readonly cycle: number;
  readonly wallMs: number;
  readonly mode: LoopModeName;
  readonly latenessMs: number;
  readonly durationMs: number;
  readonly image: readonly Sample[];
  readonly interlocks: readonly InterlockState[];
  readonly sequences: readonly SequenceSnap[];
  /** The control mode as of this cycle (undefined until the main thread sent it). */
  readonly controlState: ControlState | undefined;
  readonly interlockEvents: readonly InterlockEvent[];
  readonly sequenceEvents: readonly SequenceEvent[];
  readonly modeEvents: readonly ModeEvent[];
  readonly commands: readonly AppliedCommand[];
}

const NONE: readonly never[] = Object.freeze([]);
const ZERO: HistogramSnap = Object.freeze({ p50: 0, p99: 0, max: 0 });

function deviceView(d: DeviceSnap): OpcuaDeviceView {
  const latency = d.counters.readLatency;
  return { name: d.name, state: d.state, lastError: d.lastError, counters: { ...d.counters, readLatency: { summary: () => latency } } };
}

export class CellMirror {
  readonly cycles$ = new Subject<MirrorCycle>();
  /** Deltas applied. */
  applied = 0;
  /** Events the main thread dropped because this worker lagged. */
  droppedEvents = 0;
  private image: Sample[];
  private readonly interlocks: InterlockState[];
  private readonly sequences: SequenceSnap[];
  private readonly interlockAt = new Map<string, number>();
  private readonly sequenceAt = new Map<string, number>();
  private readonly alarms: AlarmSnap[] = [];
  private readonly alarmAt = new Map<string, number>();
  private devices: OpcuaDeviceView[];
  private control: ControlState | undefined;
  private stats: StatsView & { readonly duration: { readonly p99: number } };

  constructor(readonly init: NorthInit) {
    this.image = new Array<Sample>(init.points.length).fill(INITIAL_SAMPLE);
    this.interlocks = init.interlocks.map((i, k) => {
      this.interlockAt.set(i.id, k);
      return { id: i.id, permitted: false, tripped: false, latched: false, tripCount: 0, lastCause: "", lastTripWallMs: 0 };
    });
    this.sequences = init.sequences.map((s, k) => {
      this.sequenceAt.set(s.id, k);
      return { id: s.id, step: "", stepElapsedMs: 0, lastFault: "", faulted: false };
    });
    this.devices = init.devices.map((name) =>
      deviceView({ name, state: "waiting", lastError: "", counters: { reads: 0, readFailures: 0, writes: 0, writeFailures: 0, deadlineMisses: 0, readLatency: ZERO } }),
    );
    this.stats = { cycles: 0, skipped: 0, overruns: 0, inputMisses: 0, outputMisses: 0, lateness: ZERO, duration: { p99: 0 } };
  }

  apply(d: CycleDelta): void {
    if (d.samples) {
      const next = this.image.slice();
      applySamples(d.samples, next);
      Object.freeze(next);
      this.image = next;
    }
    for (const s of d.interlocks ?? NONE) {
      const k = this.interlockAt.get(s.id);
      if (k !== undefined) this.interlocks[k] = s;
    }
    for (const s of d.sequences ?? NONE) {
      const k = this.sequenceAt.get(s.id);
      if (k !== undefined) this.sequences[k] = s;
    }
    for (const a of d.alarms ?? NONE) {
      const k = this.alarmAt.get(a.id);
      if (k !== undefined) this.alarms[k] = a;
      else {
        this.alarmAt.set(a.id, this.alarms.length);
        this.alarms.push(a);
      }
    }
    if (d.devices) this.devices = d.devices.map(deviceView);
    if (d.control) this.control = d.control;
    if (d.loop) this.stats = d.loop;
    this.droppedEvents += d.droppedEvents ?? 0;
    this.applied++;
    this.cycles$.next({
      cycle: d.cycle,
      wallMs: d.wallMs,
      mode: d.mode,
      latenessMs: d.latenessMs,
      durationMs: d.durationMs,
      image: this.image,
      interlocks: this.interlocks,
      sequences: this.sequences,
      controlState: this.control,
      interlockEvents: d.interlockEvents ?? NONE,
      sequenceEvents: d.sequenceEvents ?? NONE,
      modeEvents: d.modeEvents ?? NONE,
      commands: d.commands ?? NONE,
    });
  }

  private loopView(): LoopView {
    const s = this.stats;
    return {
      cycles: s.cycles,
      skipped: s.skipped,
      overruns: s.overruns,
      inputMisses: s.inputMisses,
      latenessP99Ms: s.lateness.p99,
      latenessMaxMs: s.lateness.max,
      cycleP99Ms: s.duration.p99,
    };
  }

  /** The cell as MQTT reads it. */
  mqttView(): MqttCellView {
    const i = this.init;
    return {
      cellId: i.cellId,
      periodMs: i.periodMs,
      points: i.points,
      cycles$: this.cycles$,
      devices: () => this.devices,
      loop: () => this.loopView(),
      interlocks: () => this.interlocks,
      sequences: () => this.sequences,
      droppedEvents: () => this.droppedEvents,
    };
  }

  /** The cell as the OPC UA server reads it. */
  opcuaView(): OpcuaCellView {
    const i = this.init;
    return {
      cellId: i.cellId,
      periodMs: i.periodMs,
      points: i.points,
      devices: i.devices,
      interlocks: i.interlocks,
      sequences: i.sequences,
      cycles$: this.cycles$,
      stats: () => this.stats,
      deviceStates: () => this.devices,
      interlockStates: () => this.interlocks,
      sequenceStates: () => this.sequences,
      ...(i.alarms ? { alarmStates: () => this.alarms } : {}),
    };
  }
}
