/**
 * Process interlocks, as data: the definition the config compiler builds
 * (src/config/logic-schema.ts), the events and live state the engine gives
 * the north side (OPC UA, MQTT), and what survives a restart (src/persist).
 * The engine that evaluates, trips, latches and resets them, and its rules:
 * ./interlocks-engine.ts.
 */
import type { Role } from "./commands.js";
import type { CompiledExpr } from "./expr/index.js";
import type { Value } from "./sample.js";

export type ResetRole = Exclude<Role, "viewer">;

export interface ForcedOutput {
  /** Output point index. */
  readonly index: number;
  readonly value: Value;
}

/** One interlock as compiled from the config (see src/config/logic-schema.ts). */
export interface InterlockDef {
  readonly id: string;
  readonly description: string | undefined;
  readonly permit: CompiledExpr;
  readonly force: readonly ForcedOutput[];
  readonly latch: boolean;
  /** Roles that may reset it. An engineer always may (engineers may do anything an operator may). */
  readonly resetRoles: readonly ResetRole[];
}

export interface InterlockEvent {
  /** trip: became tripped; clear: an unlatched one cleared by itself; reset: a latched one cleared by an accepted reset. */
  readonly kind: "trip" | "clear" | "reset";
  readonly id: string;
  readonly cycle: number;
  readonly wallMs: number;
  /** trip: "permit false: <false terms>" or "input <point> is <status>"; clear: "permit true"; reset: "reset by <role>". */
  readonly cause: string;
}

/** Live state of one interlock, for OPC UA and MQTT. Updated in place by apply(); copy it to keep it. */
export interface InterlockState {
  readonly id: string;
  /** Permit true and every referenced point good, in the latest apply(). */
  readonly permitted: boolean;
  readonly tripped: boolean;
  readonly latched: boolean;
  readonly tripCount: number;
  /** Cause of the latest trip ("" before the first). */
  readonly lastCause: string;
  /** Wall clock (epoch ms) of the latest trip, 0 before the first. */
  readonly lastTripWallMs: number;
}

/** What of an interlock survives a restart (src/persist). `cause`: as it happened, never the "restored from" wrapper. */
export interface InterlockSnapshot {
  readonly id: string;
  readonly tripped: boolean;
  readonly latched: boolean;
  readonly tripCount: number;
  readonly cause: string;
  readonly trippedAtWallMs: number;
}

/** What restore() did (restored: a latched trip or a retained step is back) or dropped (does not fit the config). */
export interface RestoreNote {
  readonly id: string;
  readonly kind: "restored" | "dropped";
  readonly message: string;
}
