/**
 * Static checks: AST -> typed tree (IR) that the compiler turns into closures.
 *
 * Every name is resolved through the environment and nothing else, every
 * function through a fixed table (a Map, so `constructor` or `__proto__` are
 * just unknown). All errors are collected; a node that failed is `undefined`
 * and its parents stay quiet about it, so one mistake gives one message.
 */
import type { Value } from "../sample.js";
import type { ExprError } from "./lexer.js";
import type { BinaryOp, Node, Span } from "./parser.js";

export type ExprType = "bool" | "int" | "float" | "string";
export type NumType = "int" | "float";

export interface ExprEnv {
  resolve(name: string): { index: number; type: ExprType } | undefined;
  /** All known point names, for did-you-mean suggestions. */
  names(): Iterable<string>;
}

type Arith = "+" | "-" | "*" | "/" | "%";
type Cmp = "==" | "!=" | "<" | "<=" | ">" | ">=";

/** The typed tree. Every node knows its static type and its place in the source. */
export type IR =
  | { readonly k: "const"; readonly type: ExprType; readonly value: Value; readonly span: Span }
  | { readonly k: "point"; readonly type: ExprType; readonly index: number; readonly span: Span }
  | { readonly k: "not"; readonly type: "bool"; readonly arg: IR; readonly span: Span }
  | { readonly k: "neg" | "abs"; readonly type: NumType; readonly arg: IR; readonly span: Span }
  | { readonly k: "logic"; readonly type: "bool"; readonly op: "and" | "or"; readonly left: IR; readonly right: IR; readonly span: Span }
  | { readonly k: "arith"; readonly type: NumType; readonly op: Arith; readonly left: IR; readonly right: IR; readonly span: Span }
  | { readonly k: "cmp"; readonly type: "bool"; readonly op: Cmp; readonly left: IR; readonly right: IR; readonly span: Span }
  | { readonly k: "min" | "max"; readonly type: NumType; readonly args: readonly IR[]; readonly span: Span }
  | { readonly k: "limit"; readonly type: NumType; readonly x: IR; readonly lo: IR; readonly hi: IR; readonly span: Span }
  | { readonly k: "quality"; readonly type: "bool"; readonly index: number; readonly span: Span }
  | { readonly k: "age"; readonly type: "float"; readonly index: number; readonly span: Span }
  | { readonly k: "edge"; readonly type: "bool"; readonly rising: boolean; readonly arg: IR; readonly span: Span }
  | { readonly k: "timer"; readonly type: "bool"; readonly on: boolean; readonly arg: IR; readonly ms: number; readonly span: Span };

export interface CheckResult {
  readonly ir: IR | undefined;
  readonly errors: ExprError[];
  /** Point indices whose value is read. */
  readonly valueRefs: ReadonlySet<number>;
  /** All point indices referenced, including those only inside quality_ok()/age(). */
  readonly refs: ReadonlySet<number>;
}

export interface CheckOptions {
  readonly expect: ExprType;
  readonly allowStateful: boolean;
}

const TYPES: ReadonlySet<string> = new Set<ExprType>(["bool", "int", "float", "string"]);
const isNum = (t: ExprType): t is NumType => t === "int" || t === "float";
const numResult = (args: readonly IR[]): NumType => (args.every((a) => a.type === "int") ? "int" : "float");

/** Arity per function: [min, max]. */
const FUNCTIONS: ReadonlyMap<string, readonly [number, number]> = new Map([
  ["rising", [1, 1]],
  ["falling", [1, 1]],
  ["ton", [2, 2]],
  ["tof", [2, 2]],
  ["quality_ok", [1, 1]],
  ["age", [1, 1]],
  ["abs", [1, 1]],
  ["min", [2, Infinity]],
  ["max", [2, Infinity]],
  ["limit", [3, 3]],
]);
const STATEFUL: ReadonlySet<string> = new Set(["rising", "falling", "ton", "tof"]);

function arityText(min: number, max: number): string {
  if (min === max) return `${min} argument${min === 1 ? "" : "s"}`;
  return `at least ${min} arguments`;
}

export function check(root: Node | undefined, extra: readonly Node[], env: ExprEnv, opts: CheckOptions): CheckResult {
  return new Checker(env, opts).run(root, extra);
}

class Checker {
  private readonly errors: ExprError[] = [];
  private readonly valueRefs = new Set<number>();
  private readonly refs = new Set<number>();
  private knownNames: string[] | undefined;

  constructor(
    private readonly env: ExprEnv,
    private readonly opts: CheckOptions,
  ) {}

  run(root: Node | undefined, extra: readonly Node[]): CheckResult {
    let ir = root === undefined ? undefined : this.node(root);
    for (const n of extra) this.node(n);
    const want = this.opts.expect;
    if (ir !== undefined && ir.type !== want && !(want === "float" && ir.type === "int")) {
      this.error(`expected ${want}, got ${ir.type}`, ir.span);
      ir = undefined;
    }
    return { ir, errors: this.errors, valueRefs: this.valueRefs, refs: this.refs };
  }

  private error(message: string, span: Span): undefined {
    this.errors.push({ message, offset: span.offset, length: span.length });
    return undefined;
  }

  /** Check `n` and require one of `want` ("number" for int or float). */
  private expectType(n: Node, want: "bool" | "number"): IR | undefined {
    const ir = this.node(n);
    if (ir === undefined) return undefined;
    if (want === "bool" ? ir.type === "bool" : isNum(ir.type)) return ir;
    return this.error(`expected ${want === "bool" ? "bool" : "a number"}, got ${ir.type}`, ir.span);
  }

  private node(n: Node): IR | undefined {
    switch (n.kind) {
      case "bool":
        return { k: "const", type: "bool", value: n.value, span: n.span };
      case "int":
      case "float":
        return { k: "const", type: n.kind, value: n.value, span: n.span };
      case "string":
        return { k: "const", type: "string", value: n.value, span: n.span };
      case "duration":
        return this.error("a duration is only valid as the second argument of ton() or tof()", n.span);
      case "name":
        return this.point(n.name, n.span, true);
      case "not": {
        const arg = this.expectType(n.arg, "bool");
        return arg && { k: "not", type: "bool", arg, span: n.span };
      }
      case "neg": {
        const arg = this.expectType(n.arg, "number");
        if (arg === undefined || !isNum(arg.type)) return undefined;
        if (arg.k === "const") return { k: "const", type: arg.type, value: -(arg.value as number), span: n.span };
        return { k: "neg", type: arg.type, arg, span: n.span };
      }
      case "binary":
        return this.binary(n.op, n.left, n.right, n.span);
      case "call":
        return this.call(n.fn, n.fnSpan, n.args, n.span);
      case "error":
        return undefined;
    }
  }

  private point(name: string, span: Span, isValue: boolean): IR | undefined {
    const found = this.env.resolve(name);
    if (found === undefined) {
      if (FUNCTIONS.has(name)) return this.error(`'${name}' is a function; call it as ${name}(...)`, span);
      const lower = name.toLowerCase();
      if (lower === "true" || lower === "false" || lower === "and" || lower === "or" || lower === "not") {
        return this.error(`unknown point '${name}' (keywords are lowercase: '${lower}')`, span);
      }
      this.knownNames ??= [...this.env.names()];
      const hint = closest(name, this.knownNames);
      return this.error(`unknown point '${name}'${hint === undefined ? "" : ` (did you mean '${hint}'?)`}`, span);
    }
    if (!Number.isSafeInteger(found.index) || found.index < 0 || !TYPES.has(found.type)) {
      return this.error(`point '${name}' is misconfigured (index ${found.index}, type ${String(found.type)})`, span);
    }
    this.refs.add(found.index);
    if (isValue) this.valueRefs.add(found.index);
    return { k: "point", type: found.type, index: found.index, span };
  }

  private binary(op: BinaryOp, l: Node, r: Node, span: Span): IR | undefined {
    switch (op) {
      case "and":
      case "or": {
        const left = this.expectType(l, "bool");
        const right = this.expectType(r, "bool");
        return left && right && { k: "logic", type: "bool", op, left, right, span };
      }
      case "+":
      case "-":
      case "*":
      case "/":
      case "%": {
        const left = this.expectType(l, "number");
        const right = this.expectType(r, "number");
        if (left === undefined || right === undefined) return undefined;
        const type = op === "/" ? "float" : numResult([left, right]);
        return { k: "arith", type, op, left, right, span };
      }
      case "==":
      case "!=":
      case "<":
      case "<=":
      case ">":
      case ">=": {
        const left = this.node(l);
        const right = this.node(r);
        if (left === undefined || right === undefined) return undefined;
        const equality = op === "==" || op === "!=";
        if (isNum(left.type) && isNum(right.type)) return { k: "cmp", type: "bool", op, left, right, span };
        if (!equality) {
          const bad = isNum(left.type) ? right : left;
          return this.error(`'${op}' needs numbers, got ${bad.type}`, bad.span);
        }
        if (left.type !== right.type) return this.error(`cannot compare ${left.type} with ${right.type}`, span);
        return { k: "cmp", type: "bool", op, left, right, span };
      }
    }
  }

  private call(fn: string, fnSpan: Span, args: readonly Node[], span: Span): IR | undefined {
    const arity = FUNCTIONS.get(fn);
    if (arity === undefined) {
      for (const a of args) this.node(a);
      const hint = closest(fn, [...FUNCTIONS.keys()]);
      return this.error(`unknown function '${fn}'${hint === undefined ? "" : ` (did you mean '${hint}'?)`}`, fnSpan);
    }
    let ok = true;
    if (STATEFUL.has(fn) && !this.opts.allowStateful) {
      ok = false;
      this.error("timers and edge functions are not allowed here", fnSpan);
    }
    const [min, max] = arity;
    if (args.length < min || args.length > max) {
      for (const a of args) this.node(a);
      return this.error(`${fn}() takes ${arityText(min, max)}, got ${args.length}`, span);
    }
    const ir = this.callChecked(fn, args, span);
    return ok ? ir : undefined;
  }

  /** A known function with the right number of arguments. */
  private callChecked(fn: string, args: readonly Node[], span: Span): IR | undefined {
    const a0 = args[0]!;
    switch (fn) {
      case "rising":
      case "falling": {
        const arg = this.expectType(a0, "bool");
        return arg && { k: "edge", type: "bool", rising: fn === "rising", arg, span };
      }
      case "ton":
      case "tof": {
        const arg = this.expectType(a0, "bool");
        const ms = this.duration(fn, args[1]!);
        return arg && ms !== undefined ? { k: "timer", type: "bool", on: fn === "ton", arg, ms, span } : undefined;
      }
      case "quality_ok":
      case "age": {
        if (a0.kind !== "name") return this.error(`${fn}() takes a point name, e.g. ${fn}(io1.pressure)`, a0.span);
        const p = this.point(a0.name, a0.span, false);
        if (p === undefined || p.k !== "point") return undefined;
        return fn === "age" ? { k: "age", type: "float", index: p.index, span } : { k: "quality", type: "bool", index: p.index, span };
      }
      case "abs": {
        const arg = this.expectType(a0, "number");
        return arg && { k: "abs", type: numResult([arg]), arg, span };
      }
      case "min":
      case "max": {
        const irs = args.map((a) => this.expectType(a, "number"));
        if (!irs.every((x): x is IR => x !== undefined)) return undefined;
        return { k: fn, type: numResult(irs), args: irs, span };
      }
      case "limit": {
        const [x, lo, hi] = args.map((a) => this.expectType(a, "number"));
        if (x === undefined || lo === undefined || hi === undefined) return undefined;
        return { k: "limit", type: numResult([x, lo, hi]), x, lo, hi, span };
      }
      default:
        return this.error(`unknown function '${fn}'`, span);
    }
  }

  /** The delay of ton()/tof(): a duration literal greater than zero. */
  private duration(fn: string, n: Node): number | undefined {
    if (n.kind === "duration") {
      if (Number.isNaN(n.ms)) return undefined; // unit error already reported by the lexer
      if (!(n.ms > 0)) return this.error(`the delay of ${fn}() must be greater than 0`, n.span);
      return n.ms;
    }
    if (n.kind === "neg" && n.arg.kind === "duration") return this.error(`the delay of ${fn}() must be greater than 0`, n.span);
    this.node(n);
    return this.error(`the second argument of ${fn}() must be a duration literal such as 500ms, 2s, 5min or 1h`, n.span);
  }
}

/** Levenshtein distance, giving up (returning limit + 1) once it exceeds `limit`. */
function distance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      const d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      cur.push(d);
      best = Math.min(best, d);
    }
    if (best > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known name closest to `name` within edit distance 2 (ties: alphabetical), if any. */
export function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = distance(name, k, 2);
    if (d < bestD || (d === bestD && best !== undefined && k < best)) {
      best = k;
      bestD = d;
    }
  }
  return best;
}
