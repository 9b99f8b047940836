/**
 * The logic phase, pure: evaluate the output mappings on the process image.
 *
 * A rule whose inputs are not all good drives its target to the target's safe
 * value: cellio never computes an output from data it cannot trust.
 * Memory points computed by a rule are visible to the rules after it in the
 * same cycle (PLC scan order) and in the next cycle's image.
 */
import type { LogicRule } from "../config/compile.js";
import type { PointDef } from "./points.js";
import { goodSample, type Sample, type Value } from "./sample.js";
import type { EvalContext } from "./expr/index.js";

export interface LogicContext extends EvalContext {
  readonly image: Sample[];
}

/**
 * Evaluate every rule into `desired` (indexed by point). Returns the number of
 * rules that fell back to the safe value because an input was not good.
 */
export function evaluateLogic(
  rules: readonly LogicRule[],
  points: readonly PointDef[],
  ctx: LogicContext,
  desired: (Value | null)[],
  onMemory: (index: number, value: Value) => void,
): number {
  let degraded = 0;
  for (const rule of rules) {
    const target = points[rule.target]!;
    let ok = true;
    for (const r of rule.expr.valueRefs) {
      if (ctx.image[r]!.quality !== "good") {
        ok = false;
        break;
      }
    }
    // Evaluate even when degraded so timers and edges keep their time base.
    const v = rule.expr.evaluate(ctx);
    const value = ok ? v : target.safe;
    if (!ok) degraded++;
    desired[rule.target] = value;
    if (target.direction === "memory" && value !== null) {
      ctx.image[rule.target] = goodSample(value, ctx.wallMs);
      onMemory(rule.target, value);
    }
  }
  return degraded;
}
