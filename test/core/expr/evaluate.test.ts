import { describe, expect, it } from "vitest";
import { compileExpression, type EvalContext } from "../../../src/core/expr/index.js";
import { goodSample, INITIAL_SAMPLE, sample, type Value } from "../../../src/core/sample.js";
import { compile, ctx, image, INDEX, makeEnv } from "./helpers.js";

const CELL = {
  "io1.door_closed": true,
  "io1.part_present": false,
  "io1.pressure": 3.25,
  "io1.count": 7,
  "robot.in_zone": false,
  "door.closed": true,
  "robot.mode": "auto",
  x: true,
  go: false,
  "cell.a.b.temp": -4.5,
} as const;

describe("evaluation over a process image", () => {
  it.each<[string, Value]>([
    ["io1.door_closed and not io1.part_present", true],
    ["io1.door_closed and io1.part_present", false],
    ["robot.in_zone == false or go", true],
    ["io1.pressure > 2.5 and quality_ok(io1.pressure)", true],
    ["io1.pressure > 3.25", false],
    ["io1.pressure >= 3.25", true],
    ["io1.count == 7 and io1.count != 8 and io1.count < 8 and io1.count <= 7", true],
    ["io1.count == 7.0", true],
    ["robot.mode == 'auto'", true],
    ["robot.mode != \"auto\"", false],
    ["io1.door_closed == door.closed", true],
    ["not (go or io1.part_present)", true],
    ["!go && x || go", true],
    ["true and false or true", true],
    ["true and (false or false)", false],
    ["io1.count + 1", 8],
    ["io1.count - 10", -3],
    ["io1.count * 3", 21],
    ["io1.count / 2", 3.5],
    ["io1.count % 4", 3],
    ["-io1.count % 4", -3],
    ["io1.count % 0", 0],
    ["io1.pressure % 0", 0],
    ["io1.count / 0", Infinity],
    ["2 + 3 * 4", 14],
    ["(2 + 3) * 4", 20],
    ["10 - 4 - 3", 3],
    ["-2 * -3", 6],
    ["- -3", 3],
    ["abs(cell.a.b.temp)", 4.5],
    ["abs(-7)", 7],
    ["min(io1.count, 3, 9)", 3],
    ["max(io1.count, io1.pressure)", 7],
    ["max(1, 2, 3, 4, 5)", 5],
    ["limit(io1.count, 0, 5)", 5],
    ["limit(cell.a.b.temp, 0, 5)", 0],
    ["limit(io1.pressure, 0, 5)", 3.25],
    ["limit(io1.count, 10, 5)", 5], // lo > hi: hi wins
    ["1e3 + .5", 1000.5],
    ["robot.mode", "auto"],
    ["'it\\'s'", "it's"],
  ])("%s = %j", (src, want) => {
    const e = compile(src, typeof want === "boolean" ? "bool" : typeof want === "string" ? "string" : "float");
    expect(e.evaluate(ctx(CELL))).toBe(want);
  });

  it("short-circuits without reading further", () => {
    // An image that is too short: the right-hand side would read past its end.
    const short: EvalContext = { image: [goodSample(false, 1)], nowMs: 0, wallMs: 0 };
    expect(compile("io1.door_closed and go").evaluate(short)).toBe(false);
  });

  it("reads a point never read as false / 0 / empty string", () => {
    const c = ctx({});
    expect(compile("io1.door_closed").evaluate(c)).toBe(false);
    expect(compile("not io1.door_closed").evaluate(c)).toBe(true);
    expect(compile("io1.count + 1", "int").evaluate(c)).toBe(1);
    expect(compile("io1.pressure", "float").evaluate(c)).toBe(0);
    expect(compile("robot.mode", "string").evaluate(c)).toBe("");
    expect(compile("robot.mode == ''").evaluate(c)).toBe(true);
  });

  it("reads a value of the wrong runtime type as the null default, so the result keeps its type", () => {
    const img = image({});
    img[INDEX.get("io1.door_closed")!] = goodSample(1, 5);
    img[INDEX.get("io1.count")!] = goodSample("7", 5);
    img[INDEX.get("robot.mode")!] = goodSample(false, 5);
    const c = { image: img, nowMs: 0, wallMs: 0 };
    expect(compile("io1.door_closed").evaluate(c)).toBe(false);
    expect(compile("io1.count", "int").evaluate(c)).toBe(0);
    expect(compile("robot.mode", "string").evaluate(c)).toBe("");
  });

  it("keeps using the last value of a point that went bad: quality is the caller's business", () => {
    const img = image({ "io1.pressure": 4 });
    img[INDEX.get("io1.pressure")!] = sample(4, "bad_timeout", 1000);
    const c = { image: img, nowMs: 0, wallMs: 0 };
    expect(compile("io1.pressure > 2.5").evaluate(c)).toBe(true);
    expect(compile("io1.pressure > 2.5 and quality_ok(io1.pressure)").evaluate(c)).toBe(false);
  });

  it("quality_ok is true only for good samples", () => {
    const e = compile("quality_ok(io1.pressure)");
    const at = (status: Parameters<typeof sample>[1]): Value => {
      const img = image({});
      img[INDEX.get("io1.pressure")!] = sample(1.5, status, 10);
      return e.evaluate({ image: img, nowMs: 0, wallMs: 0 });
    };
    expect(at("good")).toBe(true);
    expect(at("uncertain_last_usable")).toBe(false);
    expect(at("bad_no_communication")).toBe(false);
    expect(e.evaluate(ctx({}))).toBe(false);
  });

  it("age() is wall-clock ms since the sample's source time, Infinity if never read", () => {
    const e = compile("age(io1.pressure)", "float");
    const img = image({});
    img[INDEX.get("io1.pressure")!] = goodSample(1, 1_700_000_000_000);
    expect(e.evaluate({ image: img, nowMs: 5, wallMs: 1_700_000_000_250.5 })).toBe(250.5);
    expect(e.evaluate({ image: image({}), nowMs: 5, wallMs: 1_700_000_000_000 })).toBe(Infinity);
    expect(compile("age(io1.pressure) < 1000").evaluate({ image: img, nowMs: 0, wallMs: 1_700_000_000_999 })).toBe(true);
  });

  it("reads the index the environment gave, not a position of its own", () => {
    const env = makeEnv([
      ["b", "int"],
      ["a", "int"],
    ]);
    const r = compileExpression("a * 10 + b", env, { expect: "int", allowStateful: false });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.expr.evaluate({ image: [goodSample(1, 1), goodSample(2, 1)], nowMs: 0, wallMs: 0 })).toBe(21);
    expect(r.expr.source).toBe("a * 10 + b");
  });

  it("an image too short for the expression reads the missing points as never read", () => {
    const c: EvalContext = { image: [INITIAL_SAMPLE], nowMs: 0, wallMs: 0 };
    expect(compile("x or go").evaluate(c)).toBe(false);
    expect(compile("quality_ok(x)").evaluate(c)).toBe(false);
  });
});

describe("falseTerms", () => {
  const permit = "io1.door_closed and not io1.part_present and (robot.in_zone == false or go)  and quality_ok(io1.pressure)";

  it("lists the false top-level 'and' terms in source order, as written", () => {
    const e = compile(permit);
    const img = image({ ...CELL, "io1.door_closed": false, "robot.in_zone": true });
    img[INDEX.get("io1.pressure")!] = sample(3, "bad_timeout", 1000);
    const c = { image: img, nowMs: 0, wallMs: 0 };
    expect(e.evaluate(c)).toBe(false);
    expect(e.falseTerms(c)).toEqual(["io1.door_closed", "(robot.in_zone == false or go)", "quality_ok(io1.pressure)"]);
  });

  it("is empty when the expression is true", () => {
    const e = compile(permit);
    const c = ctx({ ...CELL, "io1.pressure": 1 });
    expect(e.evaluate(c)).toBe(true);
    expect(e.falseTerms(c)).toEqual([]);
  });

  it("gives the whole expression when it is not an 'and'", () => {
    const e = compile("  go or io1.part_present ");
    const c = ctx(CELL);
    expect(e.evaluate(c)).toBe(false);
    expect(e.falseTerms(c)).toEqual(["go or io1.part_present"]);
  });

  it("flattens parenthesised 'and's at the top", () => {
    const e = compile("(go and x) and (io1.part_present and door.closed)");
    const c = ctx(CELL);
    e.evaluate(c);
    expect(e.falseTerms(c)).toEqual(["go", "io1.part_present"]);
  });

  it("is empty for a non-bool expression", () => {
    const e = compile("io1.count * 0", "int");
    expect(e.falseTerms(ctx(CELL))).toEqual([]);
  });
});
