/** Properties over random expressions and random images (fast-check). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileExpression, type ExprType } from "../../../src/core/expr/index.js";
import { sample, STATUSES, type Sample } from "../../../src/core/sample.js";
import { ENV, POINTS } from "./helpers.js";

const names = (type: ExprType): string[] => POINTS.filter(([, t]) => t === type).map(([n]) => n);
const anyPoint = fc.constantFrom(...POINTS.map(([n]) => n));
const depth = { maxDepth: 4, depthIdentifier: "expr" } as const;
const bin = (ops: readonly string[], a: fc.Arbitrary<string>, b: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(a, fc.constantFrom(...ops), b).map(([l, op, r]) => `(${l} ${op} ${r})`);
const call = (fn: string, ...args: Array<fc.Arbitrary<string>>): fc.Arbitrary<string> =>
  fc.tuple(...args).map((xs) => `${fn}(${xs.join(", ")})`);
const duration = fc.constantFrom("10ms", "20ms", "35ms", "1s", "0.05s", "1min", "1h");

/** Well-typed expression sources, one arbitrary per static type. */
const typed = fc.letrec<Record<ExprType, string>>((tie) => {
  const bool = tie("bool");
  const int = tie("int");
  const float = tie("float");
  const str = tie("string");
  const num = fc.oneof(int, float);
  return {
    bool: fc.oneof(
      depth,
      fc.constantFrom("true", "false", ...names("bool")),
      call("quality_ok", anyPoint),
      bin(["and", "or", "&&", "||", "==", "!="], bool, bool),
      bool.map((b) => `(not ${b})`),
      bool.map((b) => `!${b}`),
      bin(["==", "!=", "<", "<=", ">", ">="], num, num),
      bin(["==", "!="], str, str),
      call("rising", bool),
      call("falling", bool),
      call("ton", bool, duration),
      call("tof", bool, duration),
    ),
    int: fc.oneof(
      depth,
      fc.oneof(fc.integer({ min: -1000, max: 1000 }).map(String), fc.constantFrom(...names("int"))),
      bin(["+", "-", "*", "%"], int, int),
      int.map((i) => `(-${i})`),
      call("abs", int),
      call("min", int, int),
      call("max", int, int, int),
      call("limit", int, int, int),
    ),
    float: fc.oneof(
      depth,
      fc.oneof(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((d) => d.toFixed(3)),
        fc.constantFrom(...names("float")),
        call("age", anyPoint),
      ),
      bin(["+", "-", "*", "/", "%"], float, num),
      bin(["+", "-", "*", "/", "%"], int, float),
      bin(["/"], int, int),
      float.map((f) => `(-${f})`),
      call("abs", float),
      call("min", float, num),
      call("max", num, float, num),
      call("limit", num, float, num),
    ),
    string: fc.oneof(
      depth,
      fc.constantFrom(...names("string")),
      fc.stringMatching(/^[a-z ]{0,8}$/).map((s) => `'${s}'`),
    ),
  };
});

const valueOf = (type: ExprType): fc.Arbitrary<boolean | number | string> => {
  switch (type) {
    case "bool":
      return fc.boolean();
    case "int":
      return fc.integer({ min: -1000, max: 1000 });
    case "float":
      return fc.double({ noNaN: true, min: -1e6, max: 1e6 });
    case "string":
      return fc.string({ maxLength: 5 });
  }
};

/** A random image over the test points: any status, values of the point's type or never read. */
const images: fc.Arbitrary<Sample[]> = fc.tuple(
  ...POINTS.map(([, type]) =>
    fc
      .tuple(fc.option(valueOf(type), { nil: null }), fc.constantFrom(...STATUSES), fc.integer({ min: 0, max: 2_000_000_000_000 }))
      .map(([v, status, ts]) => sample(v, status, v === null ? 0 : ts)),
  ),
);

function hasType(v: unknown, type: ExprType): boolean {
  switch (type) {
    case "bool":
      return typeof v === "boolean";
    case "int":
      return typeof v === "number" && Number.isInteger(v);
    case "float":
      return typeof v === "number";
    case "string":
      return typeof v === "string";
  }
}

describe("properties", () => {
  for (const type of ["bool", "int", "float", "string"] as const) {
    it(`a random well-typed ${type} expression compiles, and every evaluation returns a ${type}`, () => {
      fc.assert(
        fc.property(typed[type], fc.array(images, { minLength: 1, maxLength: 6 }), (src, imgs) => {
          const r = compileExpression(src, ENV, { expect: type, allowStateful: true });
          if (!r.ok) throw new Error(`${src}: ${JSON.stringify(r.errors)}`);
          expect(r.expr.type).toBe(type);
          imgs.forEach((image, k) => {
            const c = { image, nowMs: k * 10, wallMs: 1_900_000_000_000 + k * 10 };
            const v = r.expr.evaluate(c);
            expect(hasType(v, type), `${src} gave ${String(v)}`).toBe(true);
            const terms = r.expr.falseTerms(c);
            expect(terms.length > 0).toBe(type === "bool" && v === false);
            for (const t of terms) expect(src).toContain(t);
          });
          r.expr.reset();
          expect(hasType(r.expr.evaluate({ image: [], nowMs: 0, wallMs: 0 }), type)).toBe(true);
        }),
        { numRuns: 300 },
      );
    });
  }

  it("without allowStateful, an expression compiles exactly when it uses no timer or edge", () => {
    fc.assert(
      fc.property(typed.bool, (src) => {
        const r = compileExpression(src, ENV, { expect: "bool", allowStateful: false });
        const stateful = /\b(rising|falling|ton|tof)\(/.test(src);
        expect(r.ok).toBe(!stateful);
        if (!r.ok) for (const e of r.errors) expect(e.message).toBe("timers and edge functions are not allowed here");
      }),
      { numRuns: 300 },
    );
  });

  const TOKENS = [
    "and", "or", "not", "!", "&&", "||", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "=", "&", "(", ")", ",",
    "true", "false", "1", "2.5", "1e3", "2s", "0s", "250ms", "5sec", "'s'", '"t', ".", "§",
    "x", "go", "io1.count", "io1.pressure", "robot.mode", "io1.door_closd", "rising", "ton", "quality_ok", "age", "min", "limit",
    "constructor", "__proto__", "process.exit",
  ];
  const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 12 }).map((ts) => ts.join(" "));

  it("any input, token soup or raw text, compiles or gives located errors, and never throws", () => {
    fc.assert(
      fc.property(fc.oneof(soup, fc.string({ maxLength: 30 })), fc.constantFrom<ExprType>("bool", "int", "float", "string"), (src, type) => {
        const r = compileExpression(src, ENV, { expect: type, allowStateful: true });
        if (r.ok) {
          expect(hasType(r.expr.evaluate({ image: [], nowMs: 0, wallMs: 0 }), r.expr.type)).toBe(true);
          return;
        }
        expect(r.errors.length).toBeGreaterThan(0);
        for (const e of r.errors) {
          expect(e.message.length).toBeGreaterThan(0);
          expect(e.offset).toBeGreaterThanOrEqual(0);
          expect(e.length).toBeGreaterThanOrEqual(0);
          expect(e.offset + e.length).toBeLessThanOrEqual(src.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
