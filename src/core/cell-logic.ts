/**
 * The pure middle of a cycle, in order: commands queued since the last cycle
 * are applied → the control mode's permit is evaluated → outputs start from
 * their safe values with the manual (commanded) values on top → logic rules →
 * latches → (manual mode: every output back to its manual or safe value) →
 * sequences (auto only) → interlocks. Heartbeat outputs are set first (they
 * are never driven by logic). Nothing after the interlocks can change an
 * output they force; the loop's gate (safe until the first good scan, safe
 * on fault) comes last. Alarms are updated by the loop after run(), when it
 * knows the devices' states (updateAlarms()).
 *
 * Modes: see control-mode.ts. In manual, rules and latches still run (memory
 * points stay live for the interlocks, timers keep their time base); only
 * their OUTPUT values are replaced, and latches on outputs are held reset so
 * none is still set when auto resumes.
 */
import type { CellModel } from "../config/compile.js";
import type { Sample, Value } from "./sample.js";
import { evaluateLogic } from "./logic.js";
import { SequenceEngine, type SequenceEvent } from "./sequences.js";
import { LatchBank } from "./latches.js";
import { InterlockEngine } from "./interlocks-engine.js";
import type { InterlockEvent } from "./interlocks.js";
import { CommandRouter, type AppliedCommand } from "./commands.js";
import { RateLimiter } from "./rate-limit.js";
import { ModeSwitch, type ControlMode, type ModeEvent } from "./control-mode.js";
import { AlarmBank, alarmDefs, type AlarmEvent, type AlarmInputs } from "./alarms.js";

const NONE: readonly never[] = Object.freeze([]);

export interface CellLogicResult {
  readonly commands: readonly AppliedCommand[];
  readonly sequenceEvents: readonly SequenceEvent[];
  readonly interlockEvents: readonly InterlockEvent[];
  readonly modeEvents: readonly ModeEvent[];
  /** The control mode the outputs of this cycle were computed in. */
  readonly control: ControlMode;
  /** Logic rules that fell back to the safe value for lack of good inputs. */
  readonly degradedRules: number;
}

export interface CellLogicPorts {
  /** Clears the loop's overrun fault; false while it still overruns. */
  resetFault(): boolean;
}

export class CellLogic {
  readonly interlocks: InterlockEngine;
  readonly sequences: SequenceEngine;
  readonly latches: LatchBank;
  readonly commands: CommandRouter;
  readonly mode: ModeSwitch;
  readonly alarms: AlarmBank;
  private readonly base: readonly (Value | null)[];
  private readonly toggles: readonly number[];
  private readonly counters: readonly number[];
  /** Outputs (not heartbeats) whose value manual mode decides. */
  private readonly manualOutputs: readonly number[];
  private lastControl: ControlMode = "auto";
  /** Cycles run (a heartbeat changes in every cycle that runs; a skipped cycle is not one). */
  private beats = 0;

  constructor(
    private readonly model: CellModel,
    ports: CellLogicPorts,
  ) {
    this.base = model.points.map((p) => (p.direction === "input" ? null : p.safe));
    this.toggles = model.points.filter((p) => p.heartbeat === "toggle").map((p) => p.index);
    this.counters = model.points.filter((p) => p.heartbeat === "counter").map((p) => p.index);
    this.manualOutputs = model.points.filter((p) => p.direction === "output" && p.heartbeat === undefined).map((p) => p.index);
    this.interlocks = new InterlockEngine(model.interlocks, model.points);
    this.sequences = new SequenceEngine(model.sequences);
    this.latches = new LatchBank(model.latches);
    this.mode = new ModeSwitch(model.manualMode, model.points);
    this.alarms = new AlarmBank(
      alarmDefs(
        model.interlocks.map((i) => i.id),
        model.devices.map((d) => d.name),
      ),
    );
    const drivers = new Map<number, string>();
    for (const r of model.logic) drivers.set(r.target, "a logic rule");
    for (const l of model.latches) drivers.set(l.target, "a latch");
    for (const s of model.sequences) for (const step of s.steps) for (const a of step.actions) drivers.set(a.index, `sequence ${s.id}`);
    const points = model.points;
    this.commands = new CommandRouter({
      points,
      pointIndex: model.pointIndex,
      operatorWritable: new Set(points.filter((p) => p.operatorWritable).map((p) => p.index)),
      interlocks: this.interlocks,
      sequences: this.sequences,
      alarms: this.alarms,
      mode: this.mode,
      faults: { resetFault: () => ports.resetFault() },
      // In manual, outputs are free; memory points stay with their rules and latches.
      drivenBy: (i) => (this.mode.current === "manual" && points[i]!.direction === "output" ? undefined : drivers.get(i)),
      limiter: new RateLimiter({ capacity: 20, perSecond: 10, maxCallers: 1000 }),
    });
  }

  /** The values every output has when nothing drives it: its safe value. */
  get safe(): readonly (Value | null)[] {
    return this.base;
  }

  /**
   * Run one cycle's logic on `image` (memory points computed here are written
   * into it and reported through `onMemory`). Fills and returns `desired`.
   */
  run(
    cycle: number,
    image: Sample[],
    nowMs: number,
    wallMs: number,
    desired: (Value | null)[],
    onMemory: (index: number, value: Value) => void,
    /**
     * False until the first complete good scan: every output is held safe by
     * the loop's gate then, so sequences and interlocks wait for good data
     * instead of starting (or tripping latched) on values never read.
     */
    started = true,
  ): CellLogicResult {
    const commands = this.commands.drain(cycle);
    const ctx = { image, nowMs, wallMs };
    const modeEvents = this.mode.evaluate(ctx, cycle);
    for (const e of modeEvents) if (e.kind === "permit_lost") this.commands.manual.clearAll();
    const control = this.mode.current;
    for (let i = 0; i < desired.length; i++) desired[i] = this.base[i]!;
    this.commands.manual.overlay(desired);
    // Counted in cycles run, not by the cycle number: after an odd number of skipped cycles a
    // toggle taken from the number's parity would hold its value through a cycle that ran.
    this.beats += 1;
    for (const i of this.toggles) desired[i] = this.beats % 2 === 0;
    for (const i of this.counters) desired[i] = this.beats % 65536;
    const degradedRules = evaluateLogic(this.model.logic, this.model.points, ctx, desired, onMemory);
    this.latches.apply(ctx, desired, (i, v) => onMemory(i, v));
    let sequenceEvents: readonly SequenceEvent[] = NONE;
    if (control === "manual") {
      const manual = this.commands.manual;
      for (const i of this.manualOutputs) desired[i] = manual.get(i) ?? this.base[i]!;
      this.latches.resetOutputLatches(); // back in auto, an output latch needs a fresh set
      if (this.lastControl === "auto") sequenceEvents = this.sequences.halt(cycle, ctx, "manual mode");
    }
    this.lastControl = control;
    if (!started) return { commands, sequenceEvents, interlockEvents: NONE, modeEvents, control, degradedRules };
    if (control === "auto") sequenceEvents = this.sequences.apply(ctx, desired, cycle);
    const interlockEvents = this.interlocks.apply(ctx, desired, cycle);
    if (interlockEvents.length > 0) this.commands.afterInterlocks(interlockEvents);
    return { commands, sequenceEvents, interlockEvents, modeEvents, control, degradedRules };
  }

  /** Raise and clear alarms from this cycle's state (after run()); acknowledges applied by run() come out first. */
  updateAlarms(inputs: AlarmInputs, cycle: number, wallMs: number): readonly AlarmEvent[] {
    return this.alarms.update(inputs, cycle, wallMs);
  }
}
