/**
 * The control mode, pure: `auto` (logic rules, latches and sequences drive
 * the outputs) or `manual` (outputs are set by command), both under the
 * interlocks. Switched by the command `{ kind: "set_mode", mode }`.
 *
 * Config (`manual_mode:`, src/config/mode-schema.ts): off unless the config
 * allows it; who may switch (default: engineer); an optional `permit`
 * expression, typically a key switch on the panel (`panel.key_manual`).
 *
 * Rules (each one tested):
 * - Switching either way clears every manual value: entering manual, every
 *   output goes to its safe value until it is set; back in auto, outputs
 *   return to the logic, and nothing set by hand stays on.
 * - In manual, output rules, output latches and sequences do not drive
 *   outputs; each output is its manual value, else its safe value. Rules and
 *   latches on memory points keep running (interlock permits may read them),
 *   and every expression is still evaluated, so timers keep their time base.
 * - Sequences are HALTED AND RESET when manual is entered (a `reset` event
 *   with cause "manual mode"), stay in their initial step without evaluating
 *   transitions while manual, and start afresh from the initial step in the
 *   first auto cycle. Not held mid-step: in manual the engineer moves things
 *   by hand, so whatever the active step assumed about the machine may no
 *   longer hold; the initial step is the one step that waits for its
 *   conditions instead of assuming them (the usual SFC practice of returning
 *   the chain to its initial step after manual operation).
 * - Tripped interlocks force their outputs in manual as in auto; a tripping
 *   interlock drops the manual values of the outputs it forces.
 * - The permit is evaluated every cycle. Manual may be entered only while it
 *   is true and every point it reads is good. When it drops in manual, every
 *   manual value is cleared (outputs safe) and set_point is refused; the cell
 *   stays in manual (a `permit_lost` event) and never falls back to auto by
 *   itself: going back to auto would restart the logic without anyone asking.
 */
import type { CommandResult, Role } from "./commands.js";
import type { CompiledExpr, EvalContext } from "./expr/index.js";

export type ControlMode = "auto" | "manual";

export interface ManualModeDef {
  /** Roles that may switch the mode, either way (an engineer always may). */
  readonly roles: readonly Exclude<Role, "viewer">[];
  /** Manual may be entered, and held, only while this is true (and its points good). */
  readonly permit: CompiledExpr | undefined;
}

export interface ModeEvent {
  /** switch: a set_mode command took effect; permit_lost: the manual permit dropped while in manual. */
  readonly kind: "switch" | "permit_lost";
  readonly from: ControlMode;
  readonly to: ControlMode;
  readonly cycle: number;
  readonly wallMs: number;
  /** switch: "<role> <caller>"; permit_lost: "cellio". */
  readonly by: string;
  /** switch: "set_mode"; permit_lost: the permit's false terms or the input that is not good. */
  readonly cause: string;
}

const NO_EVENTS: readonly ModeEvent[] = Object.freeze([]);
const reject = (code: "forbidden" | "not_ready" | "interlocked", reason: string): CommandResult => ({ accepted: false, code, reason });

export class ModeSwitch {
  private mode: ControlMode = "auto";
  /** Latest evaluation of the permit (true without one). */
  private permitted: boolean;
  private cause = "";
  private readonly pending: Array<{ from: ControlMode; to: ControlMode; by: string }> = [];

  /** `def` undefined: manual mode is not allowed in this cell. */
  constructor(
    private readonly def: ManualModeDef | undefined,
    private readonly points: readonly { readonly id: string }[] = [],
  ) {
    this.permitted = def !== undefined && def.permit === undefined;
  }

  get current(): ControlMode {
    return this.mode;
  }

  /** Manual is allowed and its permit held in the latest evaluation. */
  get manualPermitted(): boolean {
    return this.permitted;
  }

  /** Would setMode(mode, role) be accepted now? No side effect. */
  check(mode: ControlMode, role: Role): CommandResult {
    const d = this.def;
    if (d === undefined) return reject("forbidden", "manual mode is not allowed in this cell (config manual_mode)");
    if (role === "viewer" || (role !== "engineer" && !d.roles.includes(role))) {
      return reject("forbidden", `role ${role} may not switch the control mode (manual_mode.roles: ${d.roles.join(", ")})`);
    }
    if (mode === this.mode) return reject("not_ready", `already in ${mode} mode`);
    if (mode === "manual" && !this.permitted) return reject("interlocked", `manual permit is false: ${this.cause || "not evaluated yet"}`);
    return { accepted: true };
  }

  /** Switch now (the caller clears the manual values); the `switch` event comes out of the next evaluate(). */
  set(mode: ControlMode, role: Role, caller: string): CommandResult {
    const r = this.check(mode, role);
    if (!r.accepted) return r;
    this.pending.push({ from: this.mode, to: mode, by: `${role} ${caller}` });
    this.mode = mode;
    return r;
  }

  /** Why set_point is refused in manual now, if it is (the permit dropped). */
  setPointBlocked(): string | undefined {
    return this.mode === "manual" && !this.permitted ? `manual permit is false: ${this.cause}` : undefined;
  }

  /**
   * Evaluate the permit on this cycle's image. Returns the cycle's events:
   * the switches applied since the last call, then `permit_lost` when the
   * permit dropped while in manual; the caller then clears every manual value.
   */
  evaluate(ctx: EvalContext, cycle: number): readonly ModeEvent[] {
    let events: ModeEvent[] | undefined;
    if (this.pending.length > 0) {
      events = this.pending.map((p) => ({ kind: "switch" as const, ...p, cycle, wallMs: ctx.wallMs, cause: "set_mode" }));
      this.pending.length = 0;
    }
    const permit = this.def?.permit;
    if (permit === undefined) return events ?? NO_EVENTS;
    const was = this.permitted;
    let bad = -1;
    for (const r of permit.refs) {
      if (ctx.image[r]!.quality !== "good") {
        bad = r;
        break;
      }
    }
    const v = permit.evaluate(ctx);
    this.permitted = v === true && bad < 0;
    if (!this.permitted && (was || this.cause === "")) {
      this.cause = bad >= 0 ? `input ${this.points[bad]?.id ?? `#${bad}`} is ${ctx.image[bad]!.status}` : permit.falseTerms(ctx).join(", ");
    }
    if (was && !this.permitted && this.mode === "manual") {
      (events ??= []).push({ kind: "permit_lost", from: "manual", to: "manual", cycle, wallMs: ctx.wallMs, by: "cellio", cause: this.cause });
    }
    return events ?? NO_EVENTS;
  }
}
