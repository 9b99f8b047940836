/**
 * The one internal command path: OPC UA and MQTT both call
 * CommandRouter.submit(). Pure: no I/O, time is a parameter.
 *
 * submit() answers synchronously: rate limit, target, role, value, then the
 * state of the cell as of the latest cycle. Accepted means "queued and will be
 * applied at the start of the next cycle's logic phase" (drain(cycle)), never
 * in the middle of a cycle. drain() re-checks what may have changed since
 * (an interlock that tripped, a reset whose permit dropped) and reports the
 * outcome of each command.
 *
 * Roles: viewer may do nothing; operator may set points flagged
 * operator-writable, reset interlocks whose reset_roles name operator,
 * acknowledge alarms, and switch the mode if manual_mode.roles names
 * operator; engineer may do everything.
 *
 * set_point writes the manual value table (manual-values.ts). The logic
 * phase uses it as the base for outputs without a logic rule, latch or
 * sequence, and in manual mode (control-mode.ts) for every output; tripped
 * interlocks still force over it. In auto, set_point on a driven output is
 * refused (not_ready: "switch to manual mode to set it"). When an interlock
 * trips, the manual values of the outputs it forces are dropped
 * (afterInterlocks()), so an output never restarts by itself from a stale
 * manual value once the interlock clears; an accepted set_mode drops them
 * all. Values are never coerced: "true" is not a bool.
 *
 * A set_mode takes effect at the start of the next cycle, so a set_point
 * that needs manual mode is accepted only once a cycle has run in manual.
 */
import { z } from "zod";
import { closest } from "./expr/check.js";
import type { InterlockEvent } from "./interlocks.js";
import { valueFits, type PointDef } from "./points.js";
import type { Value } from "./sample.js";
import type { ControlMode } from "./control-mode.js";
import { ManualValues } from "./manual-values.js";
import type { RateLimiter } from "./rate-limit.js";

export { ManualValues } from "./manual-values.js";
export { RateLimiter, TokenBucket } from "./rate-limit.js";

export type Role = "viewer" | "operator" | "engineer";

export const commandSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("set_point"), point: z.string().describe("point id <device>.<point>"), value: z.unknown().describe("new value, of the point's type") }).strict(),
  z.object({ kind: z.literal("reset_interlock"), id: z.string().describe("interlock id") }).strict(),
  z.object({ kind: z.literal("reset_sequence"), id: z.string().describe("sequence id") }).strict(),
  z.object({ kind: z.literal("acknowledge"), id: z.string().describe("alarm id") }).strict(),
  z.object({ kind: z.literal("reset_fault") }).strict(),
  z.object({ kind: z.literal("set_mode"), mode: z.enum(["auto", "manual"]).describe("control mode") }).strict(),
]);

export type Command =
  | { kind: "set_point"; point: string; value: unknown }
  | { kind: "reset_interlock"; id: string }
  | { kind: "reset_sequence"; id: string }
  | { kind: "acknowledge"; id: string }
  | { kind: "reset_fault" }
  | { kind: "set_mode"; mode: ControlMode };

export type RejectCode =
  | "bad_command" // not a command at all (parseCommand)
  | "unknown_target" // no such point, interlock, sequence or alarm
  | "bad_value" // value does not fit the point
  | "read_only" // the point is an input
  | "forbidden" // the role may not do this
  | "interlocked" // forced by a tripped interlock, or a reset while the permit is false
  | "not_ready" // the target is not in a state where this makes sense (also: already in that mode, alarm already acknowledged)
  | "rate_limited" // this caller sent too many commands
  | "busy"; // the queue for the next cycle is full

export type CommandResult = { accepted: true } | { accepted: false; code: RejectCode; reason: string };

export interface Caller {
  readonly role: Role;
  /** Who sent it (MQTT client id, OPC UA session): the rate limit key. */
  readonly caller: string;
  /** Monotonic ms, for the rate limiter. */
  readonly nowMs: number;
}

export interface AppliedCommand {
  readonly cycle: number;
  readonly command: Command;
  readonly role: Role;
  readonly caller: string;
  readonly result: CommandResult;
  /** For set_point: the point index, so the loop can also put memory points into the input table. */
  readonly pointIndex?: number;
}

/** Validate an untrusted payload (JSON from MQTT, an OPC UA method argument) as a Command. */
export function parseCommand(input: unknown): { ok: true; command: Command } | { ok: false; result: CommandResult } {
  const r = commandSchema.safeParse(input);
  if (r.success) return { ok: true, command: r.data };
  const first = r.error.issues[0];
  const where = first && first.path.length > 0 ? `${first.path.join(".")}: ` : "";
  return { ok: false, result: { accepted: false, code: "bad_command", reason: `${where}${first?.message ?? "not a command"}` } };
}

export interface InterlockPort {
  forcedBy(pointIndex: number): string | undefined;
  forcedPoints(id: string): readonly number[];
  checkReset(id: string, role: Role): CommandResult;
  reset(id: string, role: Role): CommandResult;
}
export interface SequencePort {
  has(id: string): boolean;
  reset(id: string): boolean;
}
/** The alarms (alarms.ts AlarmBank). */
export interface AlarmPort {
  has(id: string): boolean;
  checkAcknowledge(id: string, role: Role): CommandResult;
  acknowledge(id: string, role: Role, caller: string): CommandResult;
}
/** The control mode (control-mode.ts ModeSwitch). */
export interface ModePort {
  readonly current: ControlMode;
  check(mode: ControlMode, role: Role): CommandResult;
  set(mode: ControlMode, role: Role, caller: string): CommandResult;
  /** Why set_point is refused now (manual permit dropped), if it is. */
  setPointBlocked(): string | undefined;
}
export interface FaultPort {
  /** True when the fault was cleared (the loop refuses while it still overruns). */
  resetFault(): boolean;
}

export interface CommandRouterOptions {
  readonly points: readonly PointDef[];
  readonly pointIndex: ReadonlyMap<string, number>;
  /** Points an operator may set. */
  readonly operatorWritable: ReadonlySet<number>;
  readonly interlocks: InterlockPort;
  readonly sequences: SequencePort;
  readonly alarms?: AlarmPort;
  readonly faults?: FaultPort;
  /** Without one, set_mode is refused (forbidden: no manual mode). */
  readonly mode?: ModePort;
  /** What drives this point automatically in the current mode ("logic rule", "sequence pick"), if anything: set_point is then refused. */
  readonly drivenBy?: (pointIndex: number) => string | undefined;
  readonly limiter?: RateLimiter;
  /** Commands queued for one cycle at most (default 256). */
  readonly maxQueue?: number;
}

interface Queued {
  readonly command: Command;
  readonly role: Role;
  readonly caller: string;
  readonly index: number;
}

const NOTHING: readonly AppliedCommand[] = Object.freeze([]);
const reject = (code: RejectCode, reason: string): CommandResult => ({ accepted: false, code, reason });
const OK: CommandResult = Object.freeze({ accepted: true });

export class CommandRouter {
  readonly manual: ManualValues;
  private queue: Queued[] = [];
  private spare: Queued[] = [];

  constructor(private readonly o: CommandRouterOptions) {
    this.manual = new ManualValues(o.points.length);
  }

  /** Validate and queue a command for the next cycle. */
  submit(command: Command, from: Caller): CommandResult {
    if (this.o.limiter && !this.o.limiter.allow(from.caller, from.nowMs)) {
      return reject("rate_limited", `too many commands from ${from.caller}`);
    }
    const { role } = from;
    if (role === "viewer") return reject("forbidden", "role viewer may not send commands");
    let index = -1;
    switch (command.kind) {
      case "set_point": {
        const r = this.checkSetPoint(command.point, command.value, role);
        if (typeof r !== "number") return r;
        index = r;
        break;
      }
      case "reset_interlock": {
        const r = this.o.interlocks.checkReset(command.id, role);
        if (!r.accepted) return r;
        break;
      }
      case "reset_sequence":
        if (!this.o.sequences.has(command.id)) return reject("unknown_target", `no sequence "${command.id}"`);
        if (role !== "engineer") return reject("forbidden", `role ${role} may not reset sequences`);
        break;
      case "acknowledge": {
        if (!this.o.alarms?.has(command.id)) return reject("unknown_target", `no alarm "${command.id}"`);
        const r = this.o.alarms.checkAcknowledge(command.id, role);
        if (!r.accepted) return r;
        break;
      }
      case "reset_fault":
        if (role !== "engineer") return reject("forbidden", `role ${role} may not reset the cell fault`);
        if (!this.o.faults) return reject("not_ready", "no fault handler");
        break;
      case "set_mode": {
        if (!this.o.mode) return reject("forbidden", "manual mode is not allowed in this cell");
        const r = this.o.mode.check(command.mode, role);
        if (!r.accepted) return r;
        break;
      }
    }
    if (this.queue.length >= (this.o.maxQueue ?? 256)) return reject("busy", "command queue is full; try again next cycle");
    this.queue.push({ command, role, caller: from.caller, index });
    return OK;
  }

  /**
   * Apply every queued command, in order. Call at the start of the logic
   * phase of `cycle`, before logic, sequences and interlocks run.
   */
  drain(cycle: number): readonly AppliedCommand[] {
    if (this.queue.length === 0) return NOTHING;
    const batch = this.queue;
    this.queue = this.spare;
    const out: AppliedCommand[] = [];
    for (const q of batch) {
      const result = this.applyOne(q);
      out.push({ cycle, command: q.command, role: q.role, caller: q.caller, result, ...(q.index >= 0 ? { pointIndex: q.index } : {}) });
    }
    batch.length = 0;
    this.spare = batch;
    return out;
  }

  /** Call with the events of InterlockEngine.apply(): drops the manual values of the outputs a tripping interlock forces. */
  afterInterlocks(events: readonly InterlockEvent[]): void {
    for (let e = 0; e < events.length; e++) {
      const ev = events[e]!;
      if (ev.kind === "trip") for (const i of this.o.interlocks.forcedPoints(ev.id)) this.manual.clear(i);
    }
  }

  private applyOne(q: Queued): CommandResult {
    const c = q.command;
    switch (c.kind) {
      case "set_point": {
        const busy = this.stateCheck(q.index);
        if (busy) return busy;
        this.manual.set(q.index, c.value as Value); // checked by submit()
        return OK;
      }
      case "reset_interlock":
        return this.o.interlocks.reset(c.id, q.role);
      case "reset_sequence":
        return this.o.sequences.reset(c.id) ? OK : reject("unknown_target", `no sequence "${c.id}"`);
      case "acknowledge":
        return this.o.alarms ? this.o.alarms.acknowledge(c.id, q.role, q.caller) : reject("unknown_target", `no alarm "${c.id}"`);
      case "reset_fault":
        return this.o.faults?.resetFault() ? OK : reject("not_ready", "the fault is still active");
      case "set_mode": {
        if (!this.o.mode) return reject("forbidden", "manual mode is not allowed in this cell");
        const r = this.o.mode.set(c.mode, q.role, q.caller);
        if (r.accepted) this.manual.clearAll();
        return r;
      }
    }
  }

  private checkSetPoint(point: string, value: unknown, role: Role): number | CommandResult {
    const i = this.o.pointIndex.get(point);
    const p = i === undefined ? undefined : this.o.points[i];
    if (p === undefined) {
      const hint = closest(point, this.o.pointIndex.keys());
      return reject("unknown_target", `unknown point "${point}"${hint ? ` (did you mean "${hint}"?)` : ""}`);
    }
    if (p.direction === "input") return reject("read_only", `${point} is an input`);
    if (role !== "engineer" && !this.o.operatorWritable.has(p.index)) {
      return reject("forbidden", `role ${role} may not set ${point} (not operator-writable)`);
    }
    if (!valueFits(p.kind, value) || (typeof value === "number" && !Number.isFinite(value))) {
      return reject("bad_value", `${JSON.stringify(value) ?? String(value)} does not fit ${point} (${p.kind})`);
    }
    return this.stateCheck(p.index) ?? p.index;
  }

  private stateCheck(index: number): CommandResult | undefined {
    const id = this.o.points[index]!.id;
    const by = this.o.interlocks.forcedBy(index);
    if (by !== undefined) return reject("interlocked", `${id} is forced by interlock ${by}`);
    const blocked = this.o.mode?.setPointBlocked();
    if (blocked !== undefined) return reject("interlocked", `${id} cannot be set: ${blocked}`);
    const driver = this.o.drivenBy?.(index);
    if (driver !== undefined) return reject("not_ready", `${id} is driven by ${driver}; switch to manual mode to set it`);
    return undefined;
  }
}
