/**
 * The control mode (auto | manual, core/control-mode.ts) as the northbound
 * side shows it: the mode, since when and by whom, and whether manual may be
 * entered now. Pure; folded from every published cycle on the loop's thread
 * (the bridge, or cellViewOf() in tests), so a switch is never missed between
 * two paced deltas, and a restarted worker gets the whole state in its first
 * delta (the switch that led to it is long gone by then).
 */
import type { ControlMode, ModeEvent } from "../../core/control-mode.js";

export interface ControlState {
  readonly mode: ControlMode;
  /** Wall time of the cycle that applied the switch into `mode`; the first cycle seen when it never switched. */
  readonly sinceWallMs: number;
  /** Who switched: "<role> <caller>" (ModeEvent.by); "" when it never switched since cellio started. */
  readonly by: string;
  /** manual_mode is configured and its permit holds now: SetMode("manual") is not refused for the permit. */
  readonly manualPermitted: boolean;
  /** Wall time of the cycle in which manualPermitted took its value (the first cycle seen when it never changed). */
  readonly permitSinceWallMs: number;
}

/** What the tracker reads of a cycle (CycleResult fits); idempotent for the same cycle. */
export interface ControlCycle {
  readonly wallMs: number;
  readonly control?: ControlMode | undefined;
  /** ModeEvent fits: a `switch` dates the mode and names who switched. */
  readonly modeEvents?: readonly { readonly kind: ModeEvent["kind"]; readonly wallMs: number; readonly by: string }[] | undefined;
}

export class ControlTracker {
  private s: ControlState | undefined;

  /** The state after the latest update (undefined before a cycle that carries the mode). */
  get state(): ControlState | undefined {
    return this.s;
  }

  /**
   * Fold one cycle in. Returns the state: the SAME object while nothing
   * changed, so "did it change" is a reference comparison.
   */
  update(c: ControlCycle, manualPermitted: boolean): ControlState | undefined {
    const mode = c.control;
    if (mode === undefined) return this.s;
    const prev = this.s;
    let sinceWallMs = prev?.sinceWallMs ?? c.wallMs;
    let by = prev?.by ?? "";
    const events = c.modeEvents;
    if (events !== undefined && events.length > 0) {
      for (let i = events.length - 1; i >= 0; i--) {
        const e = events[i]!;
        if (e.kind === "switch") {
          sinceWallMs = e.wallMs;
          by = e.by;
          break;
        }
      }
    }
    if (prev !== undefined && prev.mode !== mode && by === prev.by && sinceWallMs === prev.sinceWallMs) {
      // A change without its switch event (not produced by the core; kept honest anyway).
      sinceWallMs = c.wallMs;
      by = "";
    }
    const permitSinceWallMs = prev === undefined || prev.manualPermitted !== manualPermitted ? c.wallMs : prev.permitSinceWallMs;
    if (prev !== undefined && prev.mode === mode && prev.sinceWallMs === sinceWallMs && prev.by === by && prev.manualPermitted === manualPermitted && prev.permitSinceWallMs === permitSinceWallMs) {
      return prev;
    }
    this.s = { mode, sinceWallMs, by, manualPermitted, permitSinceWallMs };
    return this.s;
  }
}
