import { describe, expect, it } from "vitest";
import { tokenize } from "../../../src/core/expr/lexer.js";
import { parse, type Node } from "../../../src/core/expr/parser.js";

/** The tree as an s-expression, so precedence is visible in one string. */
function show(n: Node | undefined): string {
  if (n === undefined) return "<none>";
  switch (n.kind) {
    case "bool":
    case "int":
    case "float":
      return String(n.value);
    case "string":
      return JSON.stringify(n.value);
    case "duration":
      return `${n.ms}ms`;
    case "name":
      return n.name;
    case "not":
      return `(not ${show(n.arg)})`;
    case "neg":
      return `(- ${show(n.arg)})`;
    case "binary":
      return `(${n.op} ${show(n.left)} ${show(n.right)})`;
    case "call":
      return `${n.fn}(${n.args.map(show).join(", ")})`;
    case "error":
      return "<error>";
  }
}

describe("parser: precedence and shapes", () => {
  it.each([
    ["a or b and c", "(or a (and b c))"],
    ["a and b or c", "(or (and a b) c)"],
    ["a || b && !c", "(or a (and b (not c)))"],
    ["not a and b", "(and (not a) b)"],
    ["not a == b", "(not (== a b))"],
    ["!a == b", "(not (== a b))"],
    ["a == not b", "(== a (not b))"],
    ["not not a", "(not (not a))"],
    ["(a or b) and c", "(and (or a b) c)"],
    ["a + b * c", "(+ a (* b c))"],
    ["a * b + c", "(+ (* a b) c)"],
    ["a - b - c", "(- (- a b) c)"],
    ["a / b % c", "(% (/ a b) c)"],
    ["-a * b", "(* (- a) b)"],
    ["- -3", "(- (- 3))"],
    ["a + b > c * 2 and d", "(and (> (+ a b) (* c 2)) d)"],
    ["a <= b or c != d", "(or (<= a b) (!= c d))"],
    ["x.y.z >= 1.5e3", "(>= x.y.z 1500)"],
    ["1e3", "1000"],
    [".5", "0.5"],
    ["ton(door.closed, 2s)", "ton(door.closed, 2000ms)"],
    ["tof(a, 250ms) or ton(b, 1.5s) or ton(c, 5min) or ton(d, 1h)", "(or (or (or tof(a, 250ms) ton(b, 1500ms)) ton(c, 300000ms)) ton(d, 3600000ms))"],
    ["limit(a + 1, -2, max(b, c))", "limit((+ a 1), (- 2), max(b, c))"],
    ["f()", "f()"],
    [`"it's" == 'say "hi"'`, `(== "it's" "say \\"hi\\"")`],
    [`'a\\'b\\\\c\\n'`, JSON.stringify("a'b\\c\n")],
    ["true and false", "(and true false)"],
    ["io1.door_closed and not io1.part_present", "(and io1.door_closed (not io1.part_present))"],
    ["robot.in_zone == false or ton(door.closed, 2s)", "(or (== robot.in_zone false) ton(door.closed, 2000ms))"],
  ])("%s", (src, expected) => {
    const r = parse(src);
    expect(r.errors).toEqual([]);
    expect(show(r.root)).toBe(expected);
  });

  it("distinguishes int and float literals", () => {
    const kinds = tokenize("3 3.0 1e3 -3").tokens.map((t) => t.kind);
    expect(kinds).toEqual(["int", "float", "float", "op", "int", "eof"]);
  });

  it("gives parenthesised nodes the span of the parentheses, so their source reads back whole", () => {
    const src = "  (a or b)  and c";
    const root = parse(src).root!;
    expect(root.kind).toBe("binary");
    if (root.kind !== "binary") return;
    expect(src.slice(root.left.span.offset, root.left.span.offset + root.left.span.length)).toBe("(a or b)");
    expect(root.span).toEqual({ offset: 2, length: 15 });
  });
});

describe("parser and lexer: errors with offsets", () => {
  it.each([
    ["", [{ message: "empty expression", offset: 0, length: 0 }]],
    ["   ", [{ message: "empty expression", offset: 0, length: 3 }]],
    ["a = b", [{ message: "'=' is not an operator; use '==' to compare", offset: 2, length: 1 }]],
    ["a & b", [{ message: "'&' is not an operator; use 'and' or '&&'", offset: 2, length: 1 }]],
    ["a | b", [{ message: "'|' is not an operator; use 'or' or '||'", offset: 2, length: 1 }]],
    ["a § b", [{ message: "unexpected character '§'", offset: 2, length: 1 }]],
    ["'abc", [{ message: "unterminated string (missing closing ')", offset: 0, length: 4 }]],
    ['"a\\qb"', [{ message: "unknown escape '\\q' in string", offset: 2, length: 2 }]],
    ["ton(a, 5sec)", [{ message: "unknown duration unit 'sec' (use ms, s, min or h)", offset: 8, length: 3 }]],
    ["io1. and b", [{ message: "a name cannot end with '.': 'io1.'", offset: 0, length: 4 }]],
    ["99999999999999999999", [{ message: "integer '99999999999999999999' is out of range (largest is 9007199254740991)", offset: 0, length: 20 }]],
    ["a and", [{ message: "expected a value, found end of expression", offset: 5, length: 0 }]],
    ["(a and b", [{ message: "expected ')' to close the '(' at character 1 of the expression, found end of expression", offset: 8, length: 0 }]],
    ["(a and b c", [{ message: "expected ')' to close the '(' at character 1 of the expression, found 'c'", offset: 9, length: 1 }]],
    ["f(a, b", [{ message: "expected ')' to close the '(' at character 2 of the expression, found end of expression", offset: 6, length: 0 }]],
    ["f(a,)", [{ message: "expected a value, found ')'", offset: 4, length: 1 }]],
    ["a b", [{ message: "unexpected 'b'; expected an operator or the end of the expression", offset: 2, length: 1 }]],
    ["a) and b", [{ message: "unexpected ')'; expected an operator or the end of the expression", offset: 1, length: 1 }]],
    ["1 < 2 < 3", [{ message: "comparisons cannot be chained; combine them with 'and'", offset: 6, length: 1 }]],
    ["* a", [{ message: "expected a value, found '*'", offset: 0, length: 1 }]],
  ])("%j", (src, expected) => {
    expect(parse(src).errors).toEqual(expected);
  });

  it("reports several syntax errors in one pass", () => {
    expect(parse("a = b and (c § d").errors).toEqual([
      { message: "'=' is not an operator; use '==' to compare", offset: 2, length: 1 },
      { message: "unexpected character '§'", offset: 13, length: 1 },
    ]);
    // Only the first syntax error: the rest are echoes of it.
    expect(parse("a and (b or ) c d").errors).toEqual([{ message: "expected a value, found ')'", offset: 12, length: 1 }]);
  });
});
