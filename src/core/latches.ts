/**
 * Set/reset latches, pure.
 *
 * Latches (SR, reset dominant): q = not reset and (set or q), initially false.
 * A `set` that uses a point that is not good does not set; a `reset` that
 * uses a point that is not good RESETS (a latch never holds an output on data
 * it cannot trust). Targets are bool outputs or memory points; memory values
 * go into the image and through `onMemory` only when they change.
 */
import type { CompiledExpr, EvalContext } from "./expr/index.js";
import { goodSample, type Sample, type Value } from "./sample.js";

function allGood(image: readonly Sample[], refs: readonly number[]): boolean {
  for (let r = 0; r < refs.length; r++) if (image[refs[r]!]!.quality !== "good") return false;
  return true;
}

export interface LatchDef {
  /** Point id, for state and messages. */
  readonly id: string;
  /** Bool output or memory point index. */
  readonly target: number;
  readonly memory: boolean;
  readonly set: CompiledExpr;
  readonly reset: CompiledExpr;
}

/** Evaluation context for latches: the image is writable so memory latches are visible to later phases. */
export interface LatchContext extends EvalContext {
  readonly image: Sample[];
}

export class LatchBank {
  private readonly q: Uint8Array;

  constructor(private readonly defs: readonly LatchDef[]) {
    this.q = new Uint8Array(defs.length);
  }

  /**
   * Evaluate every latch, write its state into `desired`, and for memory
   * points into ctx.image and `onMemory(index, value, sourceTs)` when the
   * image does not already hold it.
   */
  apply(ctx: LatchContext, desired: (Value | null)[], onMemory?: (index: number, value: boolean, sourceTs: number) => void): void {
    for (let k = 0; k < this.defs.length; k++) {
      const d = this.defs[k]!;
      const set = d.set.evaluate(ctx) === true && allGood(ctx.image, d.set.valueRefs);
      const rst = d.reset.evaluate(ctx) === true || !allGood(ctx.image, d.reset.valueRefs);
      const q = !rst && (set || this.q[k] === 1);
      this.q[k] = q ? 1 : 0;
      desired[d.target] = q;
      if (d.memory) {
        const cur = ctx.image[d.target];
        if (cur === undefined || cur.quality !== "good" || cur.value !== q) {
          ctx.image[d.target] = goodSample(q, ctx.wallMs);
          onMemory?.(d.target, q, ctx.wallMs);
        }
      }
    }
  }

  /** Current state of the latch on this point id (undefined for an unknown one). */
  value(id: string): boolean | undefined {
    const k = this.defs.findIndex((d) => d.id === id);
    return k < 0 ? undefined : this.q[k] === 1;
  }

  /** Reset the latches on outputs (not on memory points); their timers and edges keep running. Manual mode holds them reset. */
  resetOutputLatches(): void {
    for (let k = 0; k < this.defs.length; k++) if (!this.defs[k]!.memory) this.q[k] = 0;
  }

  /** Forget every state and every timer and edge (all latches reset). */
  resetAll(): void {
    this.q.fill(0);
    for (const d of this.defs) {
      d.set.reset();
      d.reset.reset();
    }
  }
}
