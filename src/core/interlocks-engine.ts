/**
 * Process interlocks, the engine, pure: evaluated every cycle after logic and
 * sequences, before the outputs are gated and written. What it takes and
 * gives (definition, events, state, snapshot): ./interlocks.ts.
 *
 * Rules (each one tested):
 * - An interlock is PERMITTED when its permit is true and every point its
 *   permit references (`refs`, including points only used inside
 *   quality_ok()/age()) has good quality. Otherwise it trips, latched or not:
 *   a device comm loss trips every interlock that references its points.
 * - A tripped interlock writes its forced value into `desired` for every
 *   output it names. Nothing written before apply() (logic, sequences,
 *   manual values from OPC UA/MQTT) can get past it. Two interlocks never
 *   force different values onto one output: the config compiler rejects it.
 * - Unlatched: clears by itself in the first cycle it is permitted again.
 * - Latched: stays tripped until reset(id, role) is accepted. A reset is
 *   accepted only while the interlock is permitted (judged on the latest
 *   apply()); one asked for while the permit is false is REFUSED and not
 *   remembered, so nothing ever clears by itself later.
 * - The permit is evaluated every cycle, tripped or not, so its timers and
 *   edges keep their time base.
 * - Before the first apply() nothing is tripped (but a latched trip that
 *   restore() brought back from the state file) and nothing is permitted; the
 *   loop keeps outputs safe until the first complete good scan anyway. A
 *   latched interlock whose inputs have not answered in the first evaluated
 *   cycle trips and needs a reset like any other trip.
 *
 * Events come out of apply() only on transitions (trip, clear, reset), never
 * every cycle. apply() allocates nothing when nothing changes.
 *
 * The engine keeps the latest EvalContext to explain a refused reset (its
 * false terms); give apply() a context whose image is not changed afterwards.
 */
import type { CommandResult, Role } from "./commands.js";
import type { EvalContext } from "./expr/index.js";
import type {
  InterlockDef,
  InterlockEvent,
  InterlockSnapshot,
  InterlockState,
  ResetRole,
  RestoreNote,
} from "./interlocks.js";
import type { PointDef } from "./points.js";
import type { Value } from "./sample.js";

type MutableState = { -readonly [K in keyof InterlockState]: InterlockState[K] };

const NO_EVENTS: readonly InterlockEvent[] = Object.freeze([]);

export class InterlockEngine {
  private readonly defs: readonly InterlockDef[];
  private readonly st: MutableState[];
  private readonly byId = new Map<string, number>();
  /** Per point index: the interlocks (by position) that force it. */
  private readonly forcers: (readonly number[] | undefined)[];
  /** Index of the first point in refs that was not good in the latest apply(), -1 if all were. */
  private readonly badRef: Int32Array;
  private readonly pendingResets: Array<{ k: number; role: ResetRole }> = [];
  private lastCtx: EvalContext | undefined;
  /** Original cause of a trip restored from the state file, until the next trip. */
  private readonly restoredCause: (string | undefined)[] = [];

  constructor(
    defs: readonly InterlockDef[],
    private readonly points: readonly PointDef[],
  ) {
    this.defs = defs;
    this.st = defs.map((d) => ({
      id: d.id,
      permitted: false,
      tripped: false,
      latched: d.latch,
      tripCount: 0,
      lastCause: "",
      lastTripWallMs: 0,
    }));
    this.badRef = new Int32Array(defs.length).fill(-1);
    const forcers: number[][] = [];
    defs.forEach((d, k) => {
      if (this.byId.has(d.id)) throw new Error(`duplicate interlock id ${d.id}`);
      this.byId.set(d.id, k);
      for (const f of d.force) (forcers[f.index] ??= []).push(k);
    });
    this.forcers = Array.from({ length: points.length }, (_, i) => forcers[i]);
  }

  /**
   * Evaluate every interlock on ctx.image, update its state and force the
   * outputs of every tripped one in `desired`. Returns the events of this
   * cycle (resets accepted since the last apply() first), or a shared empty
   * array when nothing changed.
   */
  apply(ctx: EvalContext, desired: (Value | null)[], cycle: number): readonly InterlockEvent[] {
    const image = ctx.image;
    let events: InterlockEvent[] | undefined;
    if (this.pendingResets.length > 0) {
      events = this.pendingResets.map(({ k, role }) => ({
        kind: "reset" as const,
        id: this.defs[k]!.id,
        cycle,
        wallMs: ctx.wallMs,
        cause: `reset by ${role}`,
      }));
      this.pendingResets.length = 0;
    }
    for (let k = 0; k < this.defs.length; k++) {
      const d = this.defs[k]!;
      const s = this.st[k]!;
      let bad = -1;
      const refs = d.permit.refs;
      for (let r = 0; r < refs.length; r++) {
        if (image[refs[r]!]!.quality !== "good") {
          bad = refs[r]!;
          break;
        }
      }
      this.badRef[k] = bad;
      const permitted = d.permit.evaluate(ctx) === true && bad < 0;
      s.permitted = permitted;
      if (!permitted && !s.tripped) {
        s.tripped = true;
        s.tripCount++;
        s.lastCause = this.causeOf(k, ctx);
        s.lastTripWallMs = ctx.wallMs;
        this.restoredCause[k] = undefined;
        (events ??= []).push({ kind: "trip", id: d.id, cycle, wallMs: ctx.wallMs, cause: s.lastCause });
      } else if (permitted && s.tripped && !d.latch) {
        s.tripped = false;
        (events ??= []).push({ kind: "clear", id: d.id, cycle, wallMs: ctx.wallMs, cause: "permit true" });
      }
      if (s.tripped) {
        const force = d.force;
        for (let f = 0; f < force.length; f++) desired[force[f]!.index] = force[f]!.value;
      }
    }
    this.lastCtx = ctx;
    return events ?? NO_EVENTS;
  }

  /**
   * Would reset(id, role) be accepted now? Judged on the latest apply(), no
   * side effect. Used by the command router to answer at once.
   */
  checkReset(id: string, role: Role): CommandResult {
    const k = this.byId.get(id);
    if (k === undefined) return { accepted: false, code: "unknown_target", reason: `no interlock "${id}"` };
    const d = this.defs[k]!;
    if (role === "viewer" || (role !== "engineer" && !d.resetRoles.includes(role))) {
      return {
        accepted: false,
        code: "forbidden",
        reason: `role ${role} may not reset interlock ${id} (reset_roles: ${d.resetRoles.join(", ")})`,
      };
    }
    const s = this.st[k]!;
    if (!s.tripped) return { accepted: false, code: "not_ready", reason: `interlock ${id} is not tripped` };
    if (!s.permitted) return { accepted: false, code: "interlocked", reason: this.notPermittedReason(k) };
    return { accepted: true };
  }

  /**
   * Reset a latched interlock: accepted only while it is tripped and
   * permitted (latest apply()); it is then clear at once and a "reset" event
   * comes out of the next apply(), which re-evaluates it on the new image and
   * trips it again in the same cycle if the permit has dropped meanwhile.
   * A refused reset is forgotten.
   */
  reset(id: string, role: Role): CommandResult {
    const r = this.checkReset(id, role);
    if (!r.accepted) return r;
    const k = this.byId.get(id)!;
    this.st[k]!.tripped = false;
    this.pendingResets.push({ k, role: role as ResetRole });
    return r;
  }

  /** Id of the first tripped interlock forcing this point, if any. */
  forcedBy(pointIndex: number): string | undefined {
    const ks = this.forcers[pointIndex];
    if (ks === undefined) return undefined;
    for (const k of ks) if (this.st[k]!.tripped) return this.defs[k]!.id;
    return undefined;
  }

  /** Point indices this interlock forces (empty for an unknown id). */
  forcedPoints(id: string): readonly number[] {
    const k = this.byId.get(id);
    return k === undefined ? [] : this.defs[k]!.force.map((f) => f.index);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  state(id: string): InterlockState | undefined {
    const k = this.byId.get(id);
    return k === undefined ? undefined : this.st[k];
  }

  /** Live states, in config order. */
  states(): readonly InterlockState[] {
    return this.st;
  }

  /** Trip counts, latest causes and the tripped flags, as plain data. */
  snapshot(): InterlockSnapshot[] {
    return this.st.map(({ id, tripped, latched, tripCount, lastCause, lastTripWallMs }, k) =>
      ({ id, tripped, latched, tripCount, cause: this.restoredCause[k] ?? lastCause, trippedAtWallMs: lastTripWallMs }));
  }

  /**
   * Before the first apply() only: counters and causes come back for every
   * id still in the config, and a trip comes back where the interlock is
   * latched (it stays tripped until reset, as if cellio had never stopped).
   * An unlatched one is judged afresh by its permit.
   */
  restore(saved: readonly InterlockSnapshot[]): RestoreNote[] {
    if (this.lastCtx !== undefined) throw new Error("InterlockEngine.restore() after apply()");
    const notes: RestoreNote[] = [];
    for (const x of saved) {
      const k = this.byId.get(x.id);
      if (k === undefined) {
        notes.push({ id: x.id, kind: "dropped", message: `interlock ${x.id} is no longer in the config: its saved state is dropped` });
        continue;
      }
      const s = this.st[k]!;
      s.tripCount = x.tripCount;
      s.lastCause = x.cause;
      s.lastTripWallMs = x.trippedAtWallMs;
      if (!x.tripped) continue;
      if (!this.defs[k]!.latch) {
        if (x.latched) notes.push({ id: x.id, kind: "dropped", message: `interlock ${x.id} was tripped and latched, but is no longer latched: its permit decides` });
        continue;
      }
      s.tripped = true;
      this.restoredCause[k] = x.cause;
      s.lastCause = `restored from state file (tripped at ${new Date(x.trippedAtWallMs).toISOString()}, cause ${x.cause})`;
      notes.push({ id: x.id, kind: "restored", message: `interlock ${x.id} is still tripped (latched): ${s.lastCause}; it needs a reset` });
    }
    return notes;
  }

  private causeOf(k: number, ctx: EvalContext): string {
    const bad = this.badRef[k]!;
    if (bad >= 0) {
      const parts: string[] = [];
      for (const r of this.defs[k]!.permit.refs) {
        const s = ctx.image[r]!;
        if (s.quality !== "good") parts.push(`input ${this.points[r]?.id ?? `#${r}`} is ${s.status}`);
      }
      return parts.join("; ");
    }
    return `permit false: ${this.defs[k]!.permit.falseTerms(ctx).join(", ")}`;
  }

  private notPermittedReason(k: number): string {
    if (this.lastCtx === undefined) return "not evaluated yet";
    if (this.badRef[k]! >= 0) return this.causeOf(k, this.lastCtx);
    return `permit is still false: ${this.defs[k]!.permit.falseTerms(this.lastCtx).join(", ")}`;
  }
}
