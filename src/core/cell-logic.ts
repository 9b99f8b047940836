/**
 * The pure middle of a cycle, in order: commands queued since the last cycle
 * are applied → outputs start from their safe values with the manual
 * (commanded) values on top → logic rules → latches → sequences →
 * interlocks. Heartbeat outputs are set first (they are never driven by logic).
 * Nothing after the interlocks can change an output they force;
 * the loop's gate (safe until the first good scan, safe on fault) comes last.
 */
import type { CellModel } from "../config/compile.js";
import type { Sample, Value } from "./sample.js";
import { evaluateLogic } from "./logic.js";
import { LatchBank, SequenceEngine, type SequenceEvent } from "./sequences.js";
import { InterlockEngine, type InterlockEvent } from "./interlocks.js";
import { CommandRouter, RateLimiter, type AppliedCommand } from "./commands.js";

const NONE: readonly never[] = Object.freeze([]);

export interface CellLogicResult {
  readonly commands: readonly AppliedCommand[];
  readonly sequenceEvents: readonly SequenceEvent[];
  readonly interlockEvents: readonly InterlockEvent[];
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
  private readonly base: readonly (Value | null)[];
  private readonly toggles: readonly number[];
  private readonly counters: readonly number[];

  constructor(
    private readonly model: CellModel,
    ports: CellLogicPorts,
  ) {
    this.base = model.points.map((p) => (p.direction === "input" ? null : p.safe));
    this.toggles = model.points.filter((p) => p.heartbeat === "toggle").map((p) => p.index);
    this.counters = model.points.filter((p) => p.heartbeat === "counter").map((p) => p.index);
    this.interlocks = new InterlockEngine(model.interlocks, model.points);
    this.sequences = new SequenceEngine(model.sequences);
    this.latches = new LatchBank(model.latches);
    const drivers = new Map<number, string>();
    for (const r of model.logic) drivers.set(r.target, "a logic rule");
    for (const l of model.latches) drivers.set(l.target, "a latch");
    for (const s of model.sequences) for (const step of s.steps) for (const a of step.actions) drivers.set(a.index, `sequence ${s.id}`);
    this.commands = new CommandRouter({
      points: model.points,
      pointIndex: model.pointIndex,
      operatorWritable: new Set(model.points.filter((p) => p.operatorWritable).map((p) => p.index)),
      interlocks: this.interlocks,
      sequences: this.sequences,
      faults: { resetFault: () => ports.resetFault() },
      drivenBy: (i) => drivers.get(i),
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
    for (let i = 0; i < desired.length; i++) desired[i] = this.base[i]!;
    this.commands.manual.overlay(desired);
    for (const i of this.toggles) desired[i] = cycle % 2 === 1;
    for (const i of this.counters) desired[i] = (cycle + 1) % 65536;
    const ctx = { image, nowMs, wallMs };
    const degradedRules = evaluateLogic(this.model.logic, this.model.points, ctx, desired, onMemory);
    this.latches.apply(ctx, desired, (i, v) => onMemory(i, v));
    if (!started) return { commands, sequenceEvents: NONE, interlockEvents: NONE, degradedRules };
    const sequenceEvents = this.sequences.apply(ctx, desired, cycle);
    const interlockEvents = this.interlocks.apply(ctx, desired, cycle);
    if (interlockEvents.length > 0) this.commands.afterInterlocks(interlockEvents);
    return { commands, sequenceEvents, interlockEvents, degradedRules };
  }
}
