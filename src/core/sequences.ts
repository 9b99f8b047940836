/**
 * SFC-style sequences, pure (set/reset latches are in latches.ts).
 * Time comes only from ctx.nowMs (monotonic ms).
 *
 * Sequences (one active step each):
 * - The active step's actions are written into `desired` every cycle while it
 *   is active (non-stored: when the step is left, its outputs fall back to
 *   whatever logic/manual/safe gives them). Actions drive outputs only.
 * - Per cycle, in this order: a pending reset goes to the initial step; else
 *   a step whose timeout has run out (elapsed >= timeout, checked at the
 *   first cycle at or after it) goes to the fault step, even if one of its
 *   transitions is true in that same cycle; else the step's transitions are
 *   evaluated in config order and the first true one is taken. At most one
 *   step change per cycle.
 * - Every transition of the active step is evaluated every cycle (so its
 *   timers and edges update once per cycle), starting in the cycle its step is
 *   entered, when its timers and edges are reset: `ton(x, 2s)` counts from
 *   step entry, `rising(x)` needs an edge after entry. A transition cannot
 *   fire in the cycle its step was entered.
 * - A transition whose condition uses the value of a point that is not good
 *   (its valueRefs) is not taken. quality_ok(p) does not count, so
 *   `not quality_ok(robot.mode)` can lead to a fault step.
 * - reset(id) takes effect at the next apply(): the initial step is entered
 *   afresh (so its transitions' timers and edges restart; every other step's
 *   restart when it is entered). lastFault is kept (it is history).
 * - halt(): every sequence goes to its initial step at once (a `reset` event
 *   each, unless it is there already and not yet started) and starts afresh
 *   at the next apply(). Used when manual mode is entered: apply() is not
 *   called while manual, so the steps do not run.
 */
import type { CompiledExpr, EvalContext } from "./expr/index.js";
import type { ForcedOutput, RestoreNote } from "./interlocks.js";
import type { Sample, Value } from "./sample.js";

export interface TransitionDef {
  /** Index of the target step in SequenceDef.steps. */
  readonly to: number;
  readonly when: CompiledExpr;
}

export interface StepDef {
  readonly name: string;
  readonly actions: readonly ForcedOutput[];
  readonly timeoutMs: number | undefined;
  /** Transitions out of this step, in config order. */
  readonly transitions: readonly TransitionDef[];
}

export interface SequenceDef {
  readonly id: string;
  readonly description: string | undefined;
  readonly initial: number;
  readonly faultStep: number | undefined;
  readonly steps: readonly StepDef[];
  /** Keep the active step over a restart (config `retain: true`); otherwise start at the initial step. */
  readonly retain?: boolean;
}

/** What of a sequence survives a restart (src/persist): the step is used only where the sequence is retained. */
export interface SequenceSnapshot {
  readonly id: string;
  readonly step: string;
  readonly lastFault: string;
}

export interface SequenceEvent {
  /** step: a transition was taken; fault: a step timed out; reset: reset to the initial step. */
  readonly kind: "step" | "fault" | "reset";
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly cycle: number;
  readonly wallMs: number;
  /** step: the condition's source; fault: the timeout message; reset: "reset". */
  readonly cause: string;
}

/** Live state of one sequence, updated in place by apply(); copy it to keep it. */
export interface SequenceState {
  readonly id: string;
  readonly step: string;
  readonly stepElapsedMs: number;
  /** "step <name> timed out after <ms> ms", or "" when none yet. */
  readonly lastFault: string;
  /** ctx.nowMs (monotonic) when the active step was entered. */
  readonly enteredAtMs: number;
  /** The active step is the fault step. */
  readonly faulted: boolean;
}

type MutableSeq = { -readonly [K in keyof SequenceState]: SequenceState[K] };

const NO_EVENTS: readonly SequenceEvent[] = Object.freeze([]);

function allGood(image: readonly Sample[], refs: readonly number[]): boolean {
  for (let r = 0; r < refs.length; r++) if (image[refs[r]!]!.quality !== "good") return false;
  return true;
}

export class SequenceEngine {
  /** Exactly the public state fields, so that it serialises cleanly. */
  private readonly st: MutableSeq[];
  private readonly stepIdx: Int32Array;
  private readonly started: Uint8Array;
  private readonly resetPending: Uint8Array;
  private readonly byId = new Map<string, number>();

  constructor(private readonly defs: readonly SequenceDef[]) {
    this.st = defs.map((d, k) => {
      if (this.byId.has(d.id)) throw new Error(`duplicate sequence id ${d.id}`);
      this.byId.set(d.id, k);
      return { id: d.id, step: d.steps[d.initial]!.name, stepElapsedMs: 0, lastFault: "", enteredAtMs: 0, faulted: false };
    });
    this.stepIdx = Int32Array.from(defs, (d) => d.initial);
    this.started = new Uint8Array(defs.length);
    this.resetPending = new Uint8Array(defs.length);
  }

  /** Run every sequence one cycle and write the active steps' actions into `desired`. */
  apply(ctx: EvalContext, desired: (Value | null)[], cycle: number): readonly SequenceEvent[] {
    let events: SequenceEvent[] | undefined;
    for (let k = 0; k < this.defs.length; k++) {
      const d = this.defs[k]!;
      const s = this.st[k]!;
      if (this.started[k] === 0) {
        this.started[k] = 1;
        this.enter(k, this.stepIdx[k]!, ctx); // the initial step, or the one restore() brought back
      } else if (this.resetPending[k] === 1) {
        this.resetPending[k] = 0;
        (events ??= []).push(this.event("reset", k, d.initial, cycle, ctx, "reset"));
        this.enter(k, d.initial, ctx);
      } else {
        const step = d.steps[this.stepIdx[k]!]!;
        if (step.timeoutMs !== undefined && d.faultStep !== undefined && ctx.nowMs - s.enteredAtMs >= step.timeoutMs) {
          s.lastFault = `step ${step.name} timed out after ${step.timeoutMs} ms`;
          (events ??= []).push(this.event("fault", k, d.faultStep, cycle, ctx, s.lastFault));
          this.enter(k, d.faultStep, ctx);
        } else {
          let next = -1;
          let why: CompiledExpr | undefined;
          const ts = step.transitions;
          for (let i = 0; i < ts.length; i++) {
            // Evaluate every one, so each timer and edge updates once per cycle.
            const t = ts[i]!;
            const v = t.when.evaluate(ctx);
            if (next < 0 && v === true && allGood(ctx.image, t.when.valueRefs)) {
              next = t.to;
              why = t.when;
            }
          }
          if (next >= 0) {
            (events ??= []).push(this.event("step", k, next, cycle, ctx, why!.source));
            this.enter(k, next, ctx);
          }
        }
      }
      s.stepElapsedMs = ctx.nowMs - s.enteredAtMs;
      const actions = d.steps[this.stepIdx[k]!]!.actions;
      for (let a = 0; a < actions.length; a++) desired[actions[a]!.index] = actions[a]!.value;
    }
    return events ?? NO_EVENTS;
  }

  /** Ask for a reset to the initial step at the next apply(). False for an unknown id. */
  reset(id: string): boolean {
    const k = this.byId.get(id);
    if (k === undefined) return false;
    this.resetPending[k] = 1;
    return true;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Halt every sequence in its initial step (see the rules above); returns the `reset` events. */
  halt(cycle: number, ctx: EvalContext, cause: string): readonly SequenceEvent[] {
    let events: SequenceEvent[] | undefined;
    for (let k = 0; k < this.defs.length; k++) {
      const d = this.defs[k]!;
      const s = this.st[k]!;
      if (this.started[k] === 1) (events ??= []).push(this.event("reset", k, d.initial, cycle, ctx, cause));
      this.started[k] = 0;
      this.resetPending[k] = 0;
      this.stepIdx[k] = d.initial;
      s.step = d.steps[d.initial]!.name;
      s.enteredAtMs = ctx.nowMs;
      s.stepElapsedMs = 0;
      s.faulted = d.initial === d.faultStep;
    }
    return events ?? NO_EVENTS;
  }

  state(id: string): SequenceState | undefined {
    const k = this.byId.get(id);
    return k === undefined ? undefined : this.st[k];
  }

  states(): readonly SequenceState[] {
    return this.st;
  }

  snapshot(): SequenceSnapshot[] {
    return this.st.map(({ id, step, lastFault }) => ({ id, step, lastFault }));
  }

  /**
   * Before the first apply() only: lastFault comes back for every id still in
   * the config; the active step only for a retained sequence whose saved step
   * still exists. It is entered afresh at the first apply() (timers restart).
   */
  restore(saved: readonly SequenceSnapshot[]): RestoreNote[] {
    if (this.started.includes(1)) throw new Error("SequenceEngine.restore() after apply()");
    const notes: RestoreNote[] = [];
    for (const x of saved) {
      const k = this.byId.get(x.id);
      const d = k === undefined ? undefined : this.defs[k];
      if (k === undefined || d === undefined) {
        notes.push({ id: x.id, kind: "dropped", message: `sequence ${x.id} is no longer in the config: its saved state is dropped` });
        continue;
      }
      const s = this.st[k]!;
      s.lastFault = x.lastFault;
      if (d.retain !== true) continue;
      const i = d.steps.findIndex((st) => st.name === x.step);
      if (i < 0) {
        notes.push({ id: x.id, kind: "dropped", message: `sequence ${x.id}: saved step ${x.step} is no longer in the config; it starts at ${s.step}` });
        continue;
      }
      this.stepIdx[k] = i;
      s.step = x.step;
      s.faulted = i === d.faultStep;
      if (i !== d.initial) notes.push({ id: x.id, kind: "restored", message: `sequence ${x.id} resumes at step ${x.step} (retained)` });
    }
    return notes;
  }

  /** Enter a step: its transitions start fresh and are evaluated once (not taken) so timers start now and edges have a previous value. */
  private enter(k: number, stepIdx: number, ctx: EvalContext): void {
    const d = this.defs[k]!;
    const s = this.st[k]!;
    const step = d.steps[stepIdx]!;
    this.stepIdx[k] = stepIdx;
    s.step = step.name;
    s.enteredAtMs = ctx.nowMs;
    s.faulted = stepIdx === d.faultStep;
    for (const t of step.transitions) {
      t.when.reset();
      t.when.evaluate(ctx);
    }
  }

  private event(kind: SequenceEvent["kind"], k: number, to: number, cycle: number, ctx: EvalContext, cause: string): SequenceEvent {
    const d = this.defs[k]!;
    return { kind, id: d.id, from: this.st[k]!.step, to: d.steps[to]!.name, cycle, wallMs: ctx.wallMs, cause };
  }
}

export { LatchBank, type LatchContext, type LatchDef } from "./latches.js";
