/**
 * cellio's expression language: compile once at config load, evaluate every cycle.
 *
 *   const r = compileExpression("io1.door_closed and ton(io1.part_present, 2s)", env, { expect: "bool", allowStateful: true });
 *   if (!r.ok) report(r.errors);            // every error, each with offset and length into the source
 *   else r.expr.evaluate({ image, nowMs, wallMs });
 *
 * See README.md in this folder for the language reference.
 */
import { check, type ExprEnv, type ExprType } from "./check.js";
import { compileIR, type CompiledExpr, type EvalContext } from "./compile.js";
import type { ExprError } from "./lexer.js";
import { parse } from "./parser.js";

export type { CompiledExpr, EvalContext, ExprEnv, ExprError, ExprType };

export interface CompileOptions {
  /** The type the caller needs: bool for permits, the output point's type for mappings (int is accepted where float is expected). */
  readonly expect: ExprType;
  /** When false, rising/falling/ton/tof are errors (e.g. forced values). */
  readonly allowStateful: boolean;
}

export type CompileResult = { ok: true; expr: CompiledExpr } | { ok: false; errors: ExprError[] };

/** Compile `source` against the points of `env`. Never throws on bad input: every problem comes back as an error. */
export function compileExpression(source: string, env: ExprEnv, opts: CompileOptions): CompileResult {
  const parsed = parse(source);
  const checked = check(parsed.root, parsed.extra, env, opts);
  const errors = dedupe([...parsed.errors, ...checked.errors]);
  if (errors.length > 0 || checked.ir === undefined) {
    if (errors.length === 0) errors.push({ message: "expression could not be compiled", offset: 0, length: source.length });
    return { ok: false, errors };
  }
  return { ok: true, expr: compileIR(source, checked.ir, checked.refs, checked.valueRefs) };
}

/** Sorted by position; the same message at the same place once. */
function dedupe(errors: readonly ExprError[]): ExprError[] {
  const seen = new Set<string>();
  return [...errors]
    .sort((a, b) => a.offset - b.offset || a.length - b.length)
    .filter((e) => {
      const key = `${e.offset}:${e.length}:${e.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}
