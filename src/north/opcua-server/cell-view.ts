/**
 * The CellView of a CellApp on the loop's own thread (tests, benchmarks; the
 * running cell hands the server the north worker's mirror instead, see
 * src/north/host).
 */
import type { Observable } from "rxjs";
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
    readonly cycles$: Observable<CycleView>;
    readonly stats: { summary(): StatsView };
    readonly logic: {
      readonly interlocks: { states(): readonly InterlockView[] };
      readonly sequences: { states(): readonly SequenceView[] };
      readonly commands: CommandPort;
      readonly alarms?: { states(): readonly AlarmView[] };
    };
  };
  readonly runners: readonly DeviceView[];
}

/** The CellView of a CellApp. Its command port is `app.loop.logic.commands`. */
export function cellViewOf(app: CellAppLike): CellView {
  const m = app.loaded.model;
  const logic = app.loop.logic;
  return {
    cellId: m.cellId,
    periodMs: m.cycle.periodMs,
    points: m.points,
    devices: m.devices.map((d) => d.name),
    interlocks: m.interlocks.map((i) => ({ id: i.id, description: i.description })),
    sequences: m.sequences.map((s) => ({ id: s.id, description: s.description })),
    cycles$: app.loop.cycles$,
    stats: () => app.loop.stats.summary(),
    deviceStates: () => app.runners,
    interlockStates: () => logic.interlocks.states(),
    sequenceStates: () => logic.sequences.states(),
    ...(logic.alarms === undefined ? {} : { alarmStates: () => logic.alarms!.states() }),
  };
}
