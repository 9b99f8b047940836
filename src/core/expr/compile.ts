/**
 * Compiler: typed tree (IR) -> plain closures, built once at config load.
 *
 * Each node becomes a closure; the closures only read `ctx.image`,
 * `ctx.nowMs` and `ctx.wallMs`. Evaluating allocates nothing: no objects,
 * arrays or closures are created, numbers travel through a Float64Array of
 * registers (so V8 need not box them), and the memory of timers and edges
 * lives in a second Float64Array, both made here.
 *
 * Stateful functions (rising, falling, ton, tof) are updated in a pre-pass:
 * on every evaluate(), each one is updated exactly once, inner before outer
 * (so `rising(ton(x, 1s))` sees this cycle's timer), whatever `and`/`or`
 * would have skipped. The expression itself then short-circuits normally and
 * only reads their stored results, so it is pure and can be re-read by
 * falseTerms() without advancing anything.
 */
import type { Sample, Value } from "../sample.js";
import type { ExprType, IR } from "./check.js";

export interface EvalContext {
  readonly image: readonly Sample[];
  /** Monotonic cycle time in ms, for timers. */
  readonly nowMs: number;
  /** Epoch ms (wall clock), for age(). */
  readonly wallMs: number;
}

export interface CompiledExpr {
  readonly source: string;
  /** Static type of the expression (an int expression stays "int" even where float was expected). */
  readonly type: ExprType;
  /** Point indices whose value is used (not counting those only used inside quality_ok()/age()), ascending. */
  readonly valueRefs: readonly number[];
  /** All point indices referenced, ascending. */
  readonly refs: readonly number[];
  evaluate(ctx: EvalContext): Value;
  /** For a bool expression that is false: the source of each false top-level `and` term (or of the whole expression). */
  falseTerms(ctx: EvalContext): string[];
  /** Reset timers and edge memory, as if never evaluated. */
  reset(): void;
}

type BoolFn = (c: EvalContext) => boolean;
type StrFn = (c: EvalContext) => string;
type Update = (c: EvalContext) => void;

/**
 * A numeric node: `run` computes its value into `regs[slot]`. Numbers go
 * through a Float64Array rather than being returned, because V8 boxes a
 * non-integer number returned from a closure it does not inline (a heap
 * allocation per call); booleans and strings are returned directly.
 */
interface NumCode {
  readonly slot: number;
  readonly run: Update;
}

const NOOP: Update = () => undefined;

/** Float64Array state slots per stateful node: edge [prev, seen, out]; timer [since, out, unused]. */
const SLOTS = 3;

/** `a and b and ...` as one closure that stops at the first false term. */
function allOf(fns: readonly BoolFn[]): BoolFn {
  if (fns.length === 1) return fns[0]!;
  return (c) => {
    for (let k = 0; k < fns.length; k++) if (!fns[k]!(c)) return false;
    return true;
  };
}

/** The top-level `and` terms, left to right. */
function andTerms(ir: IR): IR[] {
  return ir.k === "logic" && ir.op === "and" ? [...andTerms(ir.left), ...andTerms(ir.right)] : [ir];
}

function internal(ir: IR, want: string): never {
  throw new Error(`expression compiler bug: ${ir.k} of type ${ir.type} compiled as ${want}`);
}

export function compileIR(source: string, ir: IR, refs: Iterable<number>, valueRefs: Iterable<number>): CompiledExpr {
  // Both arrays are sized once compiling is done; the closures read them through these bindings.
  let regs = new Float64Array(0);
  let st = new Float64Array(0);
  const constants: Array<readonly [number, number]> = [];
  const inits: Array<readonly [number, number, number]> = [];
  const updates: Update[] = [];
  let nRegs = 0;

  const text = (x: IR): string => source.slice(x.span.offset, x.span.offset + x.span.length);

  const bool = (x: IR): BoolFn => {
    switch (x.k) {
      case "const": {
        const v = x.value === true;
        return () => v;
      }
      case "point": {
        const i = x.index;
        return (c) => c.image[i]?.value === true;
      }
      case "not": {
        const a = bool(x.arg);
        return (c) => !a(c);
      }
      case "logic": {
        const l = bool(x.left);
        const r = bool(x.right);
        return x.op === "and" ? (c) => l(c) && r(c) : (c) => l(c) || r(c);
      }
      case "cmp":
        return compare(x.op, x.left, x.right);
      case "quality": {
        const i = x.index;
        return (c) => c.image[i]?.quality === "good";
      }
      case "edge":
        return edge(x.rising, bool(x.arg));
      case "timer":
        return timer(x.on, bool(x.arg), x.ms);
      case "neg":
      case "abs":
      case "arith":
      case "min":
      case "max":
      case "limit":
      case "age":
        return internal(x, "bool");
    }
  };

  const num = (x: IR): NumCode => {
    const s = nRegs++;
    const at = (run: Update): NumCode => ({ slot: s, run });
    switch (x.k) {
      case "const":
        constants.push([s, typeof x.value === "number" ? x.value : internal(x, "number")]);
        return at(NOOP);
      case "point": {
        const i = x.index;
        return at((c) => {
          const v = c.image[i]?.value;
          regs[s] = typeof v === "number" ? v : 0;
        });
      }
      case "neg":
      case "abs": {
        const { slot: a, run } = num(x.arg);
        const isNeg = x.k === "neg";
        return at((c) => {
          run(c);
          regs[s] = isNeg ? -regs[a]! : Math.abs(regs[a]!);
        });
      }
      case "arith": {
        const { op } = x;
        const [{ slot: a, run: ra }, { slot: b, run: rb }] = [num(x.left), num(x.right)];
        return at((c) => {
          ra(c);
          rb(c);
          const l = regs[a]!;
          const r = regs[b]!;
          // x % 0 is 0 (not NaN), so an int expression stays an int.
          regs[s] = op === "+" ? l + r : op === "-" ? l - r : op === "*" ? l * r : op === "/" ? l / r : r === 0 ? 0 : l % r;
        });
      }
      case "min":
      case "max": {
        const codes = x.args.map(num);
        const runs = codes.map((k) => k.run);
        const slots = Int32Array.from(codes, (k) => k.slot);
        const isMin = x.k === "min";
        return at((c) => {
          for (let k = 0; k < runs.length; k++) runs[k]!(c);
          let m = regs[slots[0]!]!;
          for (let k = 1; k < slots.length; k++) m = isMin ? Math.min(m, regs[slots[k]!]!) : Math.max(m, regs[slots[k]!]!);
          regs[s] = m;
        });
      }
      case "limit": {
        const [v, lo, hi] = [num(x.x), num(x.lo), num(x.hi)];
        return at((c) => {
          v.run(c);
          lo.run(c);
          hi.run(c);
          regs[s] = Math.min(Math.max(regs[v.slot]!, regs[lo.slot]!), regs[hi.slot]!);
        });
      }
      case "age": {
        const i = x.index;
        return at((c) => {
          const smp = c.image[i];
          if (smp === undefined || smp.sourceTs === 0) regs[s] = Infinity;
          else regs[s] = c.wallMs - smp.sourceTs;
        });
      }
      case "not":
      case "logic":
      case "cmp":
      case "quality":
      case "edge":
      case "timer":
        return internal(x, "number");
    }
  };

  const str = (x: IR): StrFn => {
    if (x.k === "const" && typeof x.value === "string") {
      const v = x.value;
      return () => v;
    }
    if (x.k === "point") {
      const i = x.index;
      return (c) => {
        const v = c.image[i]?.value;
        return typeof v === "string" ? v : "";
      };
    }
    return internal(x, "string");
  };

  const compare = (op: "==" | "!=" | "<" | "<=" | ">" | ">=", left: IR, right: IR): BoolFn => {
    if (left.type === "bool" || left.type === "string") {
      const [l, r] = left.type === "bool" ? [bool(left), bool(right)] : [str(left), str(right)];
      if (op === "==") return (c) => l(c) === r(c);
      if (op === "!=") return (c) => l(c) !== r(c);
      return internal(left, `ordered ${op}`);
    }
    const [{ slot: a, run: ra }, { slot: b, run: rb }] = [num(left), num(right)];
    return (c) => {
      ra(c);
      rb(c);
      const l = regs[a]!;
      const r = regs[b]!;
      return op === "==" ? l === r : op === "!=" ? l !== r : op === "<" ? l < r : op === "<=" ? l <= r : op === ">" ? l > r : l >= r;
    };
  };

  /** rising/falling: false on the first evaluation (and after reset), then the edge since the previous one. */
  const edge = (rising: boolean, arg: BoolFn): BoolFn => {
    const b = inits.length * SLOTS;
    inits.push([0, 0, 0]);
    updates.push((c) => {
      const v = arg(c) ? 1 : 0;
      st[b + 2] = st[b + 1] === 1 && v !== st[b] && v === (rising ? 1 : 0) ? 1 : 0;
      st[b] = v;
      st[b + 1] = 1;
    });
    return () => st[b + 2] === 1;
  };

  /** ton: true once arg has been true for `ms`. tof: true while arg is true and for `ms` after it goes false. */
  const timer = (on: boolean, arg: BoolFn, ms: number): BoolFn => {
    const b = inits.length * SLOTS;
    inits.push([NaN, 0, 0]);
    updates.push(
      on
        ? (c) => {
            if (arg(c)) {
              if (Number.isNaN(st[b]!)) st[b] = c.nowMs;
              st[b + 1] = c.nowMs - st[b]! >= ms ? 1 : 0;
            } else {
              st[b] = NaN;
              st[b + 1] = 0;
            }
          }
        : (c) => {
            if (arg(c)) {
              st[b] = NaN;
              st[b + 1] = 1;
            } else if (st[b + 1] === 1) {
              if (Number.isNaN(st[b]!)) st[b] = c.nowMs;
              if (c.nowMs - st[b]! >= ms) {
                st[b] = NaN;
                st[b + 1] = 0;
              }
            }
          },
    );
    return () => st[b + 1] === 1;
  };

  // Compile the root; a bool root is built from its top-level `and` terms so falseTerms() can re-read them.
  const terms = ir.type === "bool" ? andTerms(ir).map((t) => ({ text: text(t), fn: bool(t) })) : [];
  const root: (c: EvalContext) => Value = ir.type === "bool" ? allOf(terms.map((t) => t.fn)) : ir.type === "string" ? str(ir) : numRoot(num(ir));

  /**
   * Returns the same number as last time while the value is unchanged, so an
   * unchanging non-integer result is not boxed again. (Object.is would box its
   * arguments when not inlined; hence the spelled-out NaN and -0 cases.)
   */
  function numRoot({ slot, run }: NumCode): (c: EvalContext) => number {
    let last = NaN;
    return (c) => {
      run(c);
      const v = regs[slot]!;
      const changed = v === last ? v === 0 && 1 / v !== 1 / last : v === v || last === last;
      if (changed) last = v;
      return last;
    };
  }

  regs = new Float64Array(nRegs);
  for (const [slot, v] of constants) regs[slot] = v;
  st = new Float64Array(inits.length * SLOTS);
  const reset = (): void => {
    inits.forEach((init, n) => st.set(init, n * SLOTS));
  };
  reset();

  const sorted = (xs: Iterable<number>): readonly number[] => Object.freeze([...new Set(xs)].sort((a, b) => a - b));

  return Object.freeze({
    source,
    type: ir.type,
    valueRefs: sorted(valueRefs),
    refs: sorted(refs),
    evaluate(ctx: EvalContext): Value {
      for (let k = 0; k < updates.length; k++) updates[k]!(ctx);
      return root(ctx);
    },
    falseTerms(ctx: EvalContext): string[] {
      if (ir.type !== "bool" || root(ctx) === true) return [];
      if (terms.length === 1) return [text(ir)];
      return terms.filter((t) => !t.fn(ctx)).map((t) => t.text);
    },
    reset,
  });
}
