/**
 * The CellView of a CellApp on the loop's own thread (tests, benchmarks; the
 * running cell hands the server the north worker's mirror instead, see
 * src/north/host).
 */
import { map, type Observable } from "rxjs";
import { ControlTracker, type ControlCycle } from "../host/control.js";
import type { AlarmView, CellView, CommandPort, CycleView, DeviceView, InterlockView, PointView, SequenceView, StatsView } from "./ports.js";

/** The parts of CellApp the server reads (structural, so app.ts needs no adapter class). */
export interface CellAppLike {
  readonly loaded: {
    readonly model: {
      readonly cellId: string;
      readonly cycle: { readonly periodMs: number };
      readonly points: readonly PointView[];
      readonly devices: readonly { readonly name: string }[];
      readonly interlocks: readonly { readonly id: string; readonly description: string | undefined }[];
      readonly sequences: readonly { readonly id: string; readonly description: string | undefined }[];
    };
  };
  readonly loop: {
    /** CycleResult fits (`control` and `modeEvents` give the control mode). */
    readonly cycles$: Observable<CycleView & ControlCycle>;
    readonly stats: { summary(): StatsView };
    readonly logic: {
      readonly interlocks: { states(): readonly InterlockView[] };
      readonly sequences: { states(): readonly SequenceView[] };
      readonly commands: CommandPort;
      readonly alarms?: { states(): readonly AlarmView[] };
      /** The control mode switch (core/control-mode.ts ModeSwitch). */
      readonly mode?: { readonly manualPermitted: boolean };
    };
  };
  readonly runners: readonly DeviceView[];
}

/** The CellView of a CellApp. Its command port is `app.loop.logic.commands`. */
export function cellViewOf(app: CellAppLike): CellView {
  const m = app.loaded.model;
  const logic = app.loop.logic;
  const control = new ControlTracker();
  return {
    cellId: m.cellId,
    periodMs: m.cycle.periodMs,
    points: m.points,
    devices: m.devices.map((d) => d.name),
    interlocks: m.interlocks.map((i) => ({ id: i.id, description: i.description })),
    sequences: m.sequences.map((s) => ({ id: s.id, description: s.description })),
    // The control mode's since comes from the switch events: folded from every cycle, as the north bridge does.
    cycles$: app.loop.cycles$.pipe(map((c) => ({ ...c, controlState: control.update(c, logic.mode?.manualPermitted ?? false) }))),
    stats: () => app.loop.stats.summary(),
    deviceStates: () => app.runners,
    interlockStates: () => logic.interlocks.states(),
    sequenceStates: () => logic.sequences.states(),
    ...(logic.alarms === undefined ? {} : { alarmStates: () => logic.alarms!.states() }),
  };
}
