/** Shared fixtures for the expression tests: a small cell's points and images built from plain values. */
import { compileExpression, type CompiledExpr, type EvalContext, type ExprEnv, type ExprType } from "../../../src/core/expr/index.js";
import { goodSample, INITIAL_SAMPLE, type Sample, type Value } from "../../../src/core/sample.js";

export const POINTS: ReadonlyArray<readonly [string, ExprType]> = [
  ["io1.door_closed", "bool"],
  ["io1.part_present", "bool"],
  ["io1.pressure", "float"],
  ["io1.count", "int"],
  ["robot.in_zone", "bool"],
  ["door.closed", "bool"],
  ["robot.mode", "string"],
  ["x", "bool"],
  ["go", "bool"],
  ["cell.a.b.temp", "float"],
];

export const INDEX: ReadonlyMap<string, number> = new Map(POINTS.map(([n], i) => [n, i]));

/** An env backed by a Map: nothing but these names resolves. */
export function makeEnv(points: ReadonlyArray<readonly [string, ExprType]> = POINTS): ExprEnv {
  const map = new Map(points.map(([n, type], index) => [n, { index, type }]));
  return { resolve: (name) => map.get(name), names: () => map.keys() };
}

export const ENV = makeEnv();

/** An image with good samples for the given values and never-read samples for the rest. */
export function image(values: Readonly<Record<string, Value>>, ts = 1000): Sample[] {
  const img: Sample[] = POINTS.map(() => INITIAL_SAMPLE);
  for (const [name, v] of Object.entries(values)) {
    const i = INDEX.get(name);
    if (i === undefined) throw new Error(`test bug: no point ${name}`);
    img[i] = goodSample(v, ts);
  }
  return img;
}

export function ctx(values: Readonly<Record<string, Value>>, nowMs = 0, wallMs = 2000): EvalContext {
  return { image: image(values), nowMs, wallMs };
}

/** Compile or fail the test with the errors in the message. */
export function compile(source: string, expect: ExprType = "bool", allowStateful = true): CompiledExpr {
  const r = compileExpression(source, ENV, { expect, allowStateful });
  if (!r.ok) throw new Error(`${source}: ${JSON.stringify(r.errors)}`);
  return r.expr;
}

/** The errors of a source that must not compile. */
export function errorsOf(source: string, expect: ExprType = "bool", allowStateful = true): Array<{ message: string; offset: number; length: number }> {
  const r = compileExpression(source, ENV, { expect, allowStateful });
  if (r.ok) throw new Error(`${source}: compiled, expected errors`);
  return r.errors.map((e) => ({ message: e.message, offset: e.offset, length: e.length }));
}
