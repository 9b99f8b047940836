/**
 * The events the bridge keeps for the next delta: every interlock, sequence,
 * control mode and command event since the previous one, in order per kind.
 * Bounded per kind (a worker that lags for long must not grow the loop
 * thread's memory): past `max`, the oldest are dropped and counted, and the
 * count travels with the next delta (`droppedEvents`), so nothing is lost
 * silently.
 */
import type { AppliedCommand } from "../../core/commands.js";
import type { ModeEvent } from "../../core/control-mode.js";
import type { InterlockEvent } from "../../core/interlocks.js";
import type { SequenceEvent } from "../../core/sequences.js";
import type { CycleDelta } from "./protocol.js";

/** The events of one cycle (CycleResult fits). */
export interface CycleEvents {
  readonly interlockEvents: readonly InterlockEvent[];
  readonly sequenceEvents: readonly SequenceEvent[];
  readonly modeEvents: readonly ModeEvent[];
  readonly commands: readonly AppliedCommand[];
}

export type DeltaEvents = Pick<CycleDelta, "interlockEvents" | "sequenceEvents" | "modeEvents" | "commands" | "droppedEvents">;

export class PendingEvents {
  /** Dropped since start. */
  droppedTotal = 0;
  private interlock: InterlockEvent[] = [];
  private sequence: SequenceEvent[] = [];
  private mode: ModeEvent[] = [];
  private commands: AppliedCommand[] = [];
  private dropped = 0;

  constructor(private readonly max: number) {}

  /** Keep a cycle's events (most cycles have none: four length checks). */
  add(c: CycleEvents): void {
    if (c.interlockEvents.length > 0) this.keep(this.interlock, c.interlockEvents);
    if (c.sequenceEvents.length > 0) this.keep(this.sequence, c.sequenceEvents);
    if (c.modeEvents.length > 0) this.keep(this.mode, c.modeEvents);
    if (c.commands.length > 0) this.keep(this.commands, c.commands);
  }

  /** Everything kept, as delta fields (only the non-empty ones); starts empty again. */
  take(): DeltaEvents {
    const out: DeltaEvents = {
      ...(this.interlock.length > 0 ? { interlockEvents: this.interlock } : {}),
      ...(this.sequence.length > 0 ? { sequenceEvents: this.sequence } : {}),
      ...(this.mode.length > 0 ? { modeEvents: this.mode } : {}),
      ...(this.commands.length > 0 ? { commands: this.commands } : {}),
      ...(this.dropped > 0 ? { droppedEvents: this.dropped } : {}),
    };
    if (this.interlock.length > 0) this.interlock = [];
    if (this.sequence.length > 0) this.sequence = [];
    if (this.mode.length > 0) this.mode = [];
    if (this.commands.length > 0) this.commands = [];
    this.dropped = 0;
    return out;
  }

  private keep<T>(list: T[], add: readonly T[]): void {
    for (const e of add) list.push(e);
    const over = list.length - this.max;
    if (over > 0) {
      list.splice(0, over);
      this.dropped += over;
      this.droppedTotal += over;
    }
  }
}
