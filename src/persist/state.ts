/**
 * What of a cell survives a restart, and how it goes from the engines into
 * the state file's body and back.
 *
 * Retained (every interlock and sequence, by id):
 * - interlocks: tripped (brought back only for a latched one: it stays
 *   tripped until a reset, as if cellio had never stopped), trip count,
 *   cause and wall time of the latest trip;
 * - sequences: the last fault (history), and the active step, used only for
 *   a sequence configured `retain: true` (it resumes there, entering the step
 *   afresh so its timers restart); every other sequence starts at its
 *   initial step.
 *
 * Not retained: cycle, overrun and device counters and the loop statistics.
 * They describe one run; Prometheus treats a counter reset on restart as
 * normal, and keeping them exact would mean writing the file every cycle.
 * Unlatched interlocks, latches and manual values start from their defaults:
 * they are judged afresh on the first good scan.
 */
import { z } from "zod";
import type { InterlockEngine } from "../core/interlocks-engine.js";
import type { RestoreNote } from "../core/interlocks.js";
import type { SequenceEngine } from "../core/sequences.js";

/** Format version of the state file this cellio writes and reads. */
export const STATE_VERSION = 1;

const interlockSnapshot = z.object({
  id: z.string(),
  tripped: z.boolean(),
  latched: z.boolean(),
  tripCount: z.number().int().min(0),
  cause: z.string(),
  trippedAtWallMs: z.number().min(0),
});

const sequenceSnapshot = z.object({
  id: z.string(),
  step: z.string(),
  lastFault: z.string(),
});

const retainedSchema = z.object({
  cell: z.string(),
  savedAtWallMs: z.number(),
  interlocks: z.array(interlockSnapshot),
  sequences: z.array(sequenceSnapshot),
});

export type RetainedState = z.infer<typeof retainedSchema>;
export type RetainedContent = Omit<RetainedState, "savedAtWallMs">;

/** The engines whose state is retained (CellLogic has both). */
export interface RetainingEngines {
  readonly interlocks: Pick<InterlockEngine, "snapshot" | "restore">;
  readonly sequences: Pick<SequenceEngine, "snapshot" | "restore">;
}

/** The retained state, now. Cheap: a few plain objects per interlock and sequence. */
export function captureState(cell: string, engines: RetainingEngines): RetainedContent {
  return { cell, interlocks: engines.interlocks.snapshot(), sequences: engines.sequences.snapshot() };
}

/** JSON of the content alone: equal strings mean nothing retained has changed. */
export function contentKey(c: RetainedContent): string {
  return JSON.stringify(c);
}

/** The state file's body for `c`, stamped with the wall time it was saved. */
export function stateBody(c: RetainedContent, savedAtWallMs: number): string {
  return JSON.stringify({ cell: c.cell, savedAtWallMs, interlocks: c.interlocks, sequences: c.sequences });
}

export type ParseOutcome = { readonly ok: true; readonly state: RetainedState } | { readonly ok: false; readonly reason: string };

/** Parse and check a body that passed its checksum; one written for another cell is refused. */
export function parseStateBody(body: string, cell: string): ParseOutcome {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    return { ok: false, reason: `the body is not JSON (${e instanceof Error ? e.message : String(e)})` };
  }
  const r = retainedSchema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0];
    return { ok: false, reason: `the body does not have the v${STATE_VERSION} shape: ${first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "invalid"}` };
  }
  if (r.data.cell !== cell) return { ok: false, reason: `it was written by cell "${r.data.cell}", this is cell "${cell}"` };
  return { ok: true, state: r.data };
}

/** Put a saved state into engines that have not run a cycle yet; returns what was restored or dropped. */
export function restoreState(engines: RetainingEngines, state: RetainedState): RestoreNote[] {
  return [...engines.interlocks.restore(state.interlocks), ...engines.sequences.restore(state.sequences)];
}
