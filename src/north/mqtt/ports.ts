/**
 * The narrow seams between MQTT and the rest of cellio: what MQTT reads of
 * the cell (CellView) and where it sends commands (CommandPort). Tests drive
 * them with fakes; app.ts builds them from the CellApp with cellViewOf().
 *
 * Field names follow the core types (CycleResult, InterlockState,
 * SequenceState, InterlockEvent, SequenceEvent) so those are assignable
 * without copying.
 */
import { map, type Observable } from "rxjs";
import type { Caller, Command, CommandResult } from "../../core/commands.js";
import type { InterlockState } from "../../core/interlocks.js";
import type { SequenceState } from "../../core/sequences.js";
import type { PointDef } from "../../core/points.js";
import type { Sample } from "../../core/sample.js";
import { ControlTracker } from "../host/control.js";

/** Live state of one interlock, as the interlock engine keeps it. */
export type InterlockView = InterlockState;

/** Live state of one sequence, as the sequence engine keeps it. */
export type SequenceView = Pick<SequenceState, "id" | "step" | "lastFault" | "faulted">;

export interface InterlockEventView {
  readonly kind: "trip" | "clear" | "reset";
  readonly id: string;
  readonly cycle: number;
  readonly wallMs: number;
  readonly cause: string;
}

export interface SequenceEventView {
  readonly kind: "step" | "fault" | "reset";
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly cycle: number;
  readonly wallMs: number;
  readonly cause: string;
}

/** A control mode switch, or the manual permit lost while in manual (core/control-mode.ts ModeEvent fits). */
export interface ModeEventView {
  readonly kind: "switch" | "permit_lost";
  readonly from: string;
  readonly to: string;
  readonly cycle: number;
  readonly wallMs: number;
  readonly by: string;
  readonly cause: string;
}

/** The control mode as of a cycle (src/north/host/control.ts ControlState fits). */
export interface ControlView {
  readonly mode: "auto" | "manual";
  readonly sinceWallMs: number;
  readonly by: string;
  readonly manualPermitted: boolean;
}

export interface AppliedCommandView {
  readonly cycle: number;
  readonly command: { readonly kind: string };
  readonly role: string;
  readonly caller: string;
  readonly result: { readonly accepted: true } | { readonly accepted: false; readonly code: string; readonly reason: string };
}

/** What MQTT reads of one cycle. CycleResult (src/loop/control-loop.ts) is one. */
export interface CycleView {
  readonly cycle: number;
  readonly wallMs: number;
  readonly mode: string;
  /** Indexed like CellView.points. */
  readonly image: readonly Sample[];
  /** Live interlock states (may be updated in place between cycles). */
  readonly interlocks?: readonly InterlockView[];
  readonly sequences?: readonly SequenceView[];
  /** Transitions in this cycle only. */
  readonly interlockEvents?: readonly InterlockEventView[];
  readonly sequenceEvents?: readonly SequenceEventView[];
  readonly modeEvents?: readonly ModeEventView[];
  /** The control mode (auto | manual, since, by): the north mirror and cellViewOf() carry it. */
  readonly controlState?: ControlView | undefined;
  /** Commands applied (or refused) at the start of this cycle. */
  readonly commands?: readonly AppliedCommandView[];
}

export interface DeviceView {
  readonly name: string;
  /** waiting | good | stale | bad (DeviceRunner.state). */
  readonly state: string;
  readonly lastError: string;
}

export interface LoopView {
  readonly cycles: number;
  readonly skipped: number;
  readonly overruns: number;
  readonly inputMisses: number;
  readonly latenessP99Ms: number;
  readonly latenessMaxMs: number;
  readonly cycleP99Ms: number;
}

export interface CellView {
  readonly cellId: string;
  readonly periodMs: number;
  readonly points: readonly PointDef[];
  /** Every cycle. MQTT keeps only the latest image (and accumulates events) and publishes at its own pace. */
  readonly cycles$: Observable<CycleView>;
  devices(): readonly DeviceView[];
  loop(): LoopView | undefined;
  /** Live interlock states (else CycleView.interlocks is used). */
  interlocks?(): readonly InterlockView[];
  /** Live sequence states (else CycleView.sequences is used). */
  sequences?(): readonly SequenceView[];
  /** Events dropped before they reached MQTT (the north bridge's bound, for a worker that lagged); counted in diagnostics. */
  droppedEvents?(): number;
}

/** Where commands go: the command router (src/core/commands.ts CommandRouter.submit). Answers synchronously. */
export interface CommandPort {
  submit(command: Command, from: Caller): CommandResult;
}

/** The parts of a CellApp that cellViewOf() reads (structural, so this file does not import app.ts). */
export interface CellAppLike {
  readonly loaded: { readonly model: { readonly cellId: string; readonly points: readonly PointDef[]; readonly cycle: { readonly periodMs: number } } };
  readonly loop: {
    /** CycleResult fits: `control` is the cycle's control mode. */
    readonly cycles$: Observable<CycleView & { readonly control?: "auto" | "manual" }>;
    readonly logic: {
      readonly interlocks: { states(): readonly InterlockView[] };
      readonly sequences: { states(): readonly SequenceView[] };
      readonly commands: CommandPort;
      /** The control mode switch (core/control-mode.ts ModeSwitch). */
      readonly mode?: { readonly manualPermitted: boolean };
    };
    readonly stats: {
      summary(): {
        readonly cycles: number;
        readonly skipped: number;
        readonly overruns: number;
        readonly inputMisses: number;
        readonly lateness: { readonly p99: number; readonly max: number };
        readonly duration: { readonly p99: number };
      };
    };
  };
  readonly runners: readonly DeviceView[];
}

export function cellViewOf(app: CellAppLike): CellView {
  const { model } = app.loaded;
  const control = new ControlTracker();
  const logic = app.loop.logic;
  return {
    cellId: model.cellId,
    periodMs: model.cycle.periodMs,
    points: model.points,
    // The control mode's since/by come from the switch events: folded from every cycle, as the north bridge does.
    cycles$: app.loop.cycles$.pipe(map((c) => ({ ...c, controlState: control.update(c, logic.mode?.manualPermitted ?? false) }))),
    devices: () => app.runners,
    interlocks: () => app.loop.logic.interlocks.states(),
    sequences: () => app.loop.logic.sequences.states(),
    loop: () => {
      const s = app.loop.stats.summary();
      return {
        cycles: s.cycles,
        skipped: s.skipped,
        overruns: s.overruns,
        inputMisses: s.inputMisses,
        latenessP99Ms: s.lateness.p99,
        latenessMaxMs: s.lateness.max,
        cycleP99Ms: s.duration.p99,
      };
    },
  };
}

/** The CellApp's command path (the command router: role, target, value, interlocks). */
export function commandPortOf(app: CellAppLike): CommandPort {
  return app.loop.logic.commands;
}
