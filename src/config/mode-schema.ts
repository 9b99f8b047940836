/**
 * The `manual_mode:` section: whether the cell may be switched to manual mode
 * (outputs set by command, still under the interlocks; src/core/control-mode.ts),
 * who may switch it, and an optional permit (typically a key switch).
 *
 * Absent: manual mode is not allowed, and set_mode is refused. An automation
 * engineer opts in per cell, because manual mode lets a remote client drive
 * any output the interlocks do not force.
 */
import { z } from "zod";
import { pathString, type ConfigIssue, type SourceMap } from "./issues.js";
import { compileExpression, type ExprEnv } from "../core/expr/index.js";
import type { ManualModeDef } from "../core/control-mode.js";

export const manualModeSchema = z
  .object({
    roles: z
      .array(z.enum(["operator", "engineer"]))
      .min(1)
      .default(["engineer"])
      .describe("Roles that may switch between auto and manual (an engineer always may)"),
    permit: z
      .string()
      .min(1)
      .optional()
      .describe('Bool expression, e.g. a key switch "panel.key_manual": manual may be entered only while it is true; when it drops, every manual value is cleared'),
  })
  .strict()
  .describe("Allow manual mode (outputs set by command, still under the interlocks); absent: not allowed");

export type ManualModeConfig = z.infer<typeof manualModeSchema>;

/** The compiled section, or undefined when manual mode is not allowed (absent) or has errors (reported). */
export function compileManualMode(cfg: ManualModeConfig | undefined, env: ExprEnv, map: SourceMap, issues: ConfigIssue[]): ManualModeDef | undefined {
  if (cfg === undefined) return undefined;
  let permit;
  if (cfg.permit !== undefined) {
    const path = ["manual_mode", "permit"] as const;
    const r = compileExpression(cfg.permit, env, { expect: "bool", allowStateful: true });
    if (!r.ok) {
      for (const e of r.errors) issues.push({ path: pathString(path), ...map.locateInString(path, e.offset), message: e.message });
      return undefined;
    }
    permit = r.expr;
  }
  return Object.freeze({ roles: Object.freeze([...cfg.roles]), permit });
}
