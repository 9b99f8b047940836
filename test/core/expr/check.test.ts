import { describe, expect, it } from "vitest";
import { compileExpression, type ExprType } from "../../../src/core/expr/index.js";
import { closest } from "../../../src/core/expr/check.js";
import { compile, ENV, errorsOf } from "./helpers.js";

describe("static types: accepted expressions and their type", () => {
  it.each<[string, ExprType, ExprType]>([
    // source, expected by the caller, static type of the result
    ["io1.door_closed and not io1.part_present", "bool", "bool"],
    ["robot.in_zone == false or ton(door.closed, 2s)", "bool", "bool"],
    ["io1.pressure > 2.5 and quality_ok(io1.pressure)", "bool", "bool"],
    ["io1.count > 2.5", "bool", "bool"],
    ["robot.mode == 'auto' and robot.mode != \"teach\"", "bool", "bool"],
    ["io1.door_closed == io1.part_present", "bool", "bool"],
    ["io1.count + 1", "int", "int"],
    ["io1.count * 2 - 3 % 2", "int", "int"],
    ["-io1.count", "int", "int"],
    ["abs(io1.count)", "int", "int"],
    ["min(io1.count, 3, -4)", "int", "int"],
    ["limit(io1.count, 0, 10)", "int", "int"],
    ["io1.count / 2", "float", "float"],
    ["io1.count + 1", "float", "int"], // int is fine where float is expected
    ["io1.count + 0.5", "float", "float"],
    ["max(io1.count, io1.pressure)", "float", "float"],
    ["abs(io1.pressure)", "float", "float"],
    ["age(io1.pressure)", "float", "float"],
    ["1e3", "float", "float"],
    ["robot.mode", "string", "string"],
    ["'literal'", "string", "string"],
    ["cell.a.b.temp >= 20", "bool", "bool"],
  ])("%s (expect %s) has type %s", (src, want, type) => {
    expect(compile(src, want).type).toBe(type);
  });
});

describe("static errors: message, offset and length", () => {
  type Case = [string, ExprType, Array<[string, number, number]>];
  it.each<Case>([
    ["io1.door_closd", "bool", [["unknown point 'io1.door_closd' (did you mean 'io1.door_closed'?)", 0, 14]]],
    ["robot.in_zon or robot.mode == 'x'", "bool", [["unknown point 'robot.in_zon' (did you mean 'robot.in_zone'?)", 0, 12]]],
    ["nothing.like_it", "bool", [["unknown point 'nothing.like_it'", 0, 15]]],
    ["True", "bool", [["unknown point 'True' (keywords are lowercase: 'true')", 0, 4]]],
    ["rising", "bool", [["'rising' is a function; call it as rising(...)", 0, 6]]],
    ["io1.pressure", "bool", [["expected bool, got float", 0, 12]]],
    ["io1.pressure and io1.door_closed", "bool", [["expected bool, got float", 0, 12]]],
    ["io1.door_closed or io1.count", "bool", [["expected bool, got int", 19, 9]]],
    ["not io1.count", "bool", [["expected bool, got int", 4, 9]]],
    ["!(io1.pressure)", "bool", [["expected bool, got float", 1, 14]]],
    ["io1.count + true", "int", [["expected a number, got bool", 12, 4]]],
    ["-robot.mode", "string", [["expected a number, got string", 1, 10]]],
    ["io1.count == 'x'", "bool", [["cannot compare int with string", 0, 16]]],
    ["io1.door_closed != 1", "bool", [["cannot compare bool with int", 0, 20]]],
    ["robot.mode < 'x'", "bool", [["'<' needs numbers, got string", 0, 10]]],
    ["1 >= true", "bool", [["'>=' needs numbers, got bool", 5, 4]]],
    ["io1.count / 2", "int", [["expected int, got float", 0, 13]]],
    ["io1.count", "string", [["expected string, got int", 0, 9]]],
    ["io1.door_closed", "float", [["expected float, got bool", 0, 15]]],
    ["2s", "bool", [["a duration is only valid as the second argument of ton() or tof()", 0, 2]]],
    ["door.closed and rising(500ms)", "bool", [["a duration is only valid as the second argument of ton() or tof()", 23, 5]]],
    ["ton(door.closed, 2000)", "bool", [["the second argument of ton() must be a duration literal such as 500ms, 2s, 5min or 1h", 17, 4]]],
    ["tof(door.closed, io1.count)", "bool", [["the second argument of tof() must be a duration literal such as 500ms, 2s, 5min or 1h", 17, 9]]],
    ["ton(door.closed, 0s)", "bool", [["the delay of ton() must be greater than 0", 17, 2]]],
    ["ton(door.closed, -2s)", "bool", [["the delay of ton() must be greater than 0", 17, 3]]],
    ["ton(io1.pressure, 1s)", "bool", [["expected bool, got float", 4, 12]]],
    ["ton(door.closed)", "bool", [["ton() takes 2 arguments, got 1", 0, 16]]],
    ["rising(door.closed, x)", "bool", [["rising() takes 1 argument, got 2", 0, 22]]],
    ["min(1) > 0", "bool", [["min() takes at least 2 arguments, got 1", 0, 6]]],
    ["quality_ok(io1.pressure + 1)", "bool", [["quality_ok() takes a point name, e.g. quality_ok(io1.pressure)", 11, 16]]],
    ["age(3) > 1", "bool", [["age() takes a point name, e.g. age(io1.pressure)", 4, 1]]],
    ["quality_ok(io1.presure)", "bool", [["unknown point 'io1.presure' (did you mean 'io1.pressure'?)", 11, 11]]],
    ["frobnicate(door.closed)", "bool", [["unknown function 'frobnicate'", 0, 10]]],
    ["rissing(door.closed)", "bool", [["unknown function 'rissing' (did you mean 'rising'?)", 0, 7]]],
    ["abs(x)", "int", [["expected a number, got bool", 4, 1]]],
    ["limit(io1.count, 'a', 3)", "int", [["expected a number, got string", 17, 3]]],
  ])("%s (expect %s)", (src, want, expected) => {
    expect(errorsOf(src, want)).toEqual(expected.map(([message, offset, length]) => ({ message, offset, length })));
  });

  it("reports every error of an expression at once, in source order", () => {
    const src = "io1.door_closd and io1.pressure or frob(door.closed) and ton(x, 0s) and robot.mode > 1";
    expect(errorsOf(src)).toEqual([
      { message: "unknown point 'io1.door_closd' (did you mean 'io1.door_closed'?)", offset: 0, length: 14 },
      { message: "expected bool, got float", offset: 19, length: 12 },
      { message: "unknown function 'frob'", offset: 35, length: 4 },
      { message: "the delay of ton() must be greater than 0", offset: 64, length: 2 },
      { message: "'>' needs numbers, got string", offset: 72, length: 10 },
    ]);
  });

  it("gives the errors quoted in the README", () => {
    expect(errorsOf("io1.door_closd and io1.pressure or frob(x)")).toEqual([
      { message: "unknown point 'io1.door_closd' (did you mean 'io1.door_closed'?)", offset: 0, length: 14 },
      { message: "expected bool, got float", offset: 19, length: 12 },
      { message: "unknown function 'frob'", offset: 35, length: 4 },
    ]);
  });

  it("reports syntax errors together with unknown names and type errors", () => {
    expect(errorsOf("io1.door_closd = true and (x or 1")).toEqual([
      { message: "unknown point 'io1.door_closd' (did you mean 'io1.door_closed'?)", offset: 0, length: 14 },
      { message: "'=' is not an operator; use '==' to compare", offset: 15, length: 1 },
      { message: "expected bool, got int", offset: 32, length: 1 },
      { message: "expected ')' to close the '(' at character 27 of the expression, found end of expression", offset: 33, length: 0 },
    ]);
  });

  it("refuses stateful functions where they are not allowed, and says where", () => {
    const errs = errorsOf("ton(x, 1s) or rising(go) or io1.door_closed", "bool", false);
    expect(errs).toEqual([
      { message: "timers and edge functions are not allowed here", offset: 0, length: 3 },
      { message: "timers and edge functions are not allowed here", offset: 14, length: 6 },
    ]);
    expect(compile("io1.door_closed and quality_ok(x) and age(x) < 100", "bool", false).type).toBe("bool");
  });

  it("accepts a stateful function inside another's argument", () => {
    expect(compile("rising(ton(x, 1s)) or tof(rising(go), 20ms)").type).toBe("bool");
  });
});

describe("references", () => {
  it("separates points whose value is read from points only asked about quality or age", () => {
    const e = compile("io1.pressure > 2.5 and quality_ok(io1.pressure) and quality_ok(x) and age(io1.count) < 100 and go");
    // io1.pressure=2, io1.count=3, x=7, go=8
    expect(e.valueRefs).toEqual([2, 8]);
    expect(e.refs).toEqual([2, 3, 7, 8]);
  });

  it("lists each point once, ascending", () => {
    const e = compile("go and x and go and io1.door_closed and rising(x)");
    expect(e.valueRefs).toEqual([0, 7, 8]);
    expect(e.refs).toEqual([0, 7, 8]);
  });
});

describe("nothing outside the environment is reachable", () => {
  it.each([
    ["constructor", "unknown point 'constructor'"],
    ["__proto__", "unknown point '__proto__'"],
    ["__proto__.polluted", "unknown point '__proto__.polluted'"],
    ["io1.door_closed.constructor", "unknown point 'io1.door_closed.constructor'"],
    ["toString", "unknown point 'toString'"],
    ["globalThis", "unknown point 'globalThis'"],
    ["this", "unknown point 'this'"],
    ["process.exit(1)", "unknown function 'process.exit'"],
    ["constructor(1)", "unknown function 'constructor'"],
    ["hasOwnProperty(x)", "unknown function 'hasOwnProperty'"],
    ["__proto__(x)", "unknown function '__proto__'"],
    ["eval('1')", "unknown function 'eval'"],
    ["Function('return 1')", "unknown function 'Function'"],
    ["require('fs')", "unknown function 'require'"],
    ["io1.door_closed.valueOf()", "unknown function 'io1.door_closed.valueOf'"],
  ])("%s", (src, message) => {
    expect(errorsOf(src).map((e) => e.message)).toEqual([message]);
  });

  it("asks the environment only for the names written in the expression", () => {
    const asked: string[] = [];
    const env = {
      resolve: (name: string) => (asked.push(name), ENV.resolve(name)),
      names: () => ENV.names(),
    };
    const r = compileExpression("x and quality_ok(go) and constructor(toString)", env, { expect: "bool", allowStateful: true });
    expect(r.ok).toBe(false);
    expect(asked.sort()).toEqual(["go", "toString", "x"]);
  });
});

describe("did-you-mean", () => {
  it.each([
    ["io1.door_closd", ["io1.door_closed", "io1.door_open"], "io1.door_closed"],
    ["abc", ["abd", "abe"], "abd"], // tie: alphabetical
    ["ab", ["abcd"], "abcd"], // distance 2
    ["ab", ["abcde"], undefined], // distance 3
    ["xyz", [], undefined],
  ])("%s among %j", (name, known, want) => {
    expect(closest(name, known)).toBe(want);
  });
});
