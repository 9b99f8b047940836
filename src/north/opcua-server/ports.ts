/**
 * What the OPC UA server needs from the rest of cellio, as narrow interfaces:
 * a read-only view of the cell (model, the published cycles, stats, device
 * states) and the one command path. CellApp satisfies them with a few lines
 * (see README.md, "Wiring"); tests pass fakes or a real CommandRouter.
 */
import type { Observable } from "rxjs";
import type { Caller, Command, CommandResult } from "../../core/commands.js";
import type { InterlockState } from "../../core/interlocks.js";
import type { AlarmState } from "../../core/alarms.js";
import type { SequenceState } from "../../core/sequences.js";
import type { PointDef } from "../../core/points.js";
import type { Sample, Value } from "../../core/sample.js";

export type { Caller, Command, CommandResult };

/** The part of a point the address space uses (PointDef fits). */
export type PointView = Pick<PointDef, "index" | "id" | "device" | "name" | "kind" | "direction" | "unit" | "description" | "scale" | "deadband" | "wireType"> & {
  /** Operators may set it (the point's `operator_writable`); engineers may set every output. */
  readonly operatorWritable: boolean;
};

/** Live state of one interlock, as the interlock engine keeps it. */
export type InterlockView = InterlockState;

/** Live state of one sequence, as the sequence engine keeps it. */
export type SequenceView = Pick<SequenceState, "id" | "step" | "stepElapsedMs" | "lastFault" | "faulted">;

/** The control mode as of a cycle (src/north/host/control.ts ControlState fits). */
export interface ControlView {
  readonly mode: "auto" | "manual";
  /** Wall time of the cycle that applied the switch into `mode`. */
  readonly sinceWallMs: number;
  /** Who switched: "<role> <caller>"; "" when it never switched since cellio started (the startup mode, auto). */
  readonly by: string;
  readonly manualPermitted: boolean;
  /** Wall time of the cycle in which manualPermitted took its value. */
  readonly permitSinceWallMs: number;
}

/** One published cycle (loop/control-loop.ts CycleResult fits). */
export interface CycleView {
  readonly cycle: number;
  readonly wallMs: number;
  readonly latenessMs: number;
  readonly durationMs: number;
  readonly image: readonly Sample[];
  readonly commanded?: readonly (Value | null)[];
  readonly mode: "starting" | "running" | "faulted";
  /** The control mode: the north mirror and cellViewOf() carry it. */
  readonly controlState?: ControlView | undefined;
}

export interface HistogramView {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** loop/stats.ts LoopSummary fits. */
export interface StatsView {
  readonly cycles: number;
  readonly skipped: number;
  readonly overruns: number;
  readonly inputMisses: number;
  readonly outputMisses: number;
  readonly lateness: HistogramView;
}

/** One device (loop/device-runner.ts DeviceRunner fits). */
export interface DeviceView {
  readonly name: string;
  readonly state: "waiting" | "good" | "stale" | "bad";
  readonly lastError: string;
  readonly counters: {
    readonly reads: number;
    readonly readFailures: number;
    readonly writes: number;
    readonly writeFailures: number;
    readonly deadlineMisses: number;
    readonly readLatency: { summary(): HistogramView };
  };
}

export interface CellView {
  readonly cellId: string;
  readonly periodMs: number;
  readonly points: readonly PointView[];
  /** Device names, in config order. */
  readonly devices: readonly string[];
  /** Interlocks and sequences of the config (ids and descriptions): they get nodes at start. */
  readonly interlocks: readonly { readonly id: string; readonly description?: string | undefined }[];
  readonly sequences: readonly { readonly id: string; readonly description?: string | undefined }[];
  readonly cycles$: Observable<CycleView>;
  stats(): StatsView;
  deviceStates(): readonly DeviceView[];
  /** Live interlock and sequence states as of the latest cycle (read off the cycle, by the publish timer). */
  interlockStates(): readonly InterlockView[];
  sequenceStates(): readonly SequenceView[];
  /**
   * The core's alarms (core/alarms.ts AlarmBank), when the view carries them:
   * the OPC UA conditions then mirror their active and acked state, so an
   * acknowledge from MQTT shows here too. Without it the server derives
   * active from the interlocks, devices and mode, and acked from its own
   * acknowledges.
   */
  alarmStates?(): readonly AlarmView[];
}

/** One alarm of the core (core/alarms.ts AlarmState fits). */
export type AlarmView = Pick<AlarmState, "id" | "active" | "acked" | "message">;

/** The one internal command path (core/commands.ts CommandRouter fits). */
export interface CommandPort {
  submit(command: Command, from: Caller): CommandResult;
}
