/**
 * Parser for cellio expressions: tokens -> AST, by recursive descent.
 *
 * Precedence, lowest first:
 *   or (||)  <  and (&&)  <  not (!)  <  == != < <= > >=  <  + -  <  * / %  <  unary -
 * `not` sits below the comparisons (as in Python): `not a == b` is `not (a == b)`.
 * Comparisons do not chain: `a < b < c` is an error.
 *
 * It never throws. A syntax error is recorded, an `error` node stands in for
 * what could not be read, and parsing goes on, so unknown names and type
 * errors further on are still reported in the same pass. Only the first
 * syntax error is reported (later ones are nearly always its echoes), and none
 * after a character the lexer had to drop.
 */
import { tokenize, type ExprError, type Op, type Token } from "./lexer.js";

/** A piece of the source: offset and length in UTF-16 code units. */
export interface Span {
  readonly offset: number;
  readonly length: number;
}

export type BinaryOp = Exclude<Op, "not">;

export type Node =
  | { readonly kind: "bool"; readonly value: boolean; readonly span: Span }
  | { readonly kind: "int" | "float"; readonly value: number; readonly span: Span }
  | { readonly kind: "string"; readonly value: string; readonly span: Span }
  | { readonly kind: "duration"; readonly ms: number; readonly span: Span }
  | { readonly kind: "name"; readonly name: string; readonly span: Span }
  | { readonly kind: "not" | "neg"; readonly arg: Node; readonly span: Span; readonly opSpan: Span }
  | { readonly kind: "binary"; readonly op: BinaryOp; readonly left: Node; readonly right: Node; readonly span: Span; readonly opSpan: Span }
  | { readonly kind: "call"; readonly fn: string; readonly fnSpan: Span; readonly args: readonly Node[]; readonly span: Span }
  | { readonly kind: "error"; readonly span: Span };

export interface ParseResult {
  /** The expression; `undefined` only when the source holds no tokens at all. */
  readonly root: Node | undefined;
  /** Pieces after a syntax error that could not be attached to the tree; checked for more errors, never run. */
  readonly extra: readonly Node[];
  readonly errors: readonly ExprError[];
}

const COMPARISONS: ReadonlySet<Op> = new Set(["==", "!=", "<", "<=", ">", ">="]);
const ADDITIVE: ReadonlySet<Op> = new Set(["+", "-"]);
const MULTIPLICATIVE: ReadonlySet<Op> = new Set(["*", "/", "%"]);

export function parse(src: string): ParseResult {
  const lexed = tokenize(src);
  return new Parser(src, lexed.tokens, lexed.errors, lexed.droppedAt).parseAll();
}

const join = (a: Span, b: Span): Span => ({ offset: a.offset, length: b.offset + b.length - a.offset });

function describe(t: Token, src: string): string {
  return t.kind === "eof" ? "end of expression" : `'${src.slice(t.offset, t.offset + t.length)}'`;
}

class Parser {
  private pos = 0;
  private reported = false;

  constructor(
    private readonly src: string,
    private readonly tokens: readonly Token[],
    private readonly errors: ExprError[],
    private readonly quietFrom: number,
  ) {}

  parseAll(): ParseResult {
    if (this.peek().kind === "eof") {
      if (this.errors.length === 0) this.errors.push({ message: "empty expression", offset: 0, length: this.src.length });
      return { root: undefined, extra: [], errors: this.errors };
    }
    const root = this.parseOr();
    const extra: Node[] = [];
    const stray = this.peek();
    if (stray.kind !== "eof") {
      this.error(`unexpected ${describe(stray, this.src)}; expected an operator or the end of the expression`, stray);
      // Read on, so the rest is still checked (unknown names, types), but never run.
      while (this.peek().kind !== "eof") {
        const k = this.peek().kind;
        if (k === ")" || k === ",") {
          this.next();
          continue;
        }
        const before = this.pos;
        extra.push(this.parseOr());
        if (this.pos === before) this.next();
      }
    }
    return { root, extra, errors: this.errors };
  }

  private peek(): Token {
    // The token list always ends with eof and the parser never moves past it.
    return this.tokens[Math.min(this.pos, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== "eof") this.pos++;
    return t;
  }

  private peekOp(set: ReadonlySet<Op>): Op | undefined {
    const t = this.peek();
    return t.kind === "op" && set.has(t.op) ? t.op : undefined;
  }

  private isOp(op: Op): boolean {
    const t = this.peek();
    return t.kind === "op" && t.op === op;
  }

  private error(message: string, span: Span): void {
    if (this.reported || span.offset >= this.quietFrom) return;
    this.reported = true;
    this.errors.push({ message, offset: span.offset, length: span.length });
  }

  private binary(op: BinaryOp, left: Node, right: Node, opSpan: Span): Node {
    return { kind: "binary", op, left, right, span: join(left.span, right.span), opSpan };
  }

  private parseOr(): Node {
    let left = this.parseAnd();
    while (this.isOp("or")) {
      const opTok = this.next();
      left = this.binary("or", left, this.parseAnd(), opTok);
    }
    return left;
  }

  private parseAnd(): Node {
    let left = this.parseNot();
    while (this.isOp("and")) {
      const opTok = this.next();
      left = this.binary("and", left, this.parseNot(), opTok);
    }
    return left;
  }

  private parseNot(): Node {
    if (this.isOp("not")) {
      const opTok = this.next();
      const arg = this.parseNot();
      return { kind: "not", arg, span: join(opTok, arg.span), opSpan: opTok };
    }
    return this.parseComparison();
  }

  private parseComparison(): Node {
    const left = this.parseAdditive();
    const op = this.peekOp(COMPARISONS);
    if (op === undefined) return left;
    const opTok = this.next();
    const node = this.binary(op as BinaryOp, left, this.parseAdditive(), opTok);
    if (this.peekOp(COMPARISONS) !== undefined) {
      const again = this.next();
      this.error("comparisons cannot be chained; combine them with 'and'", again);
      this.parseAdditive();
    }
    return node;
  }

  private parseAdditive(): Node {
    let left = this.parseMultiplicative();
    for (let op = this.peekOp(ADDITIVE); op !== undefined; op = this.peekOp(ADDITIVE)) {
      const opTok = this.next();
      left = this.binary(op as BinaryOp, left, this.parseMultiplicative(), opTok);
    }
    return left;
  }

  private parseMultiplicative(): Node {
    let left = this.parseUnary();
    for (let op = this.peekOp(MULTIPLICATIVE); op !== undefined; op = this.peekOp(MULTIPLICATIVE)) {
      const opTok = this.next();
      left = this.binary(op as BinaryOp, left, this.parseUnary(), opTok);
    }
    return left;
  }

  private parseUnary(): Node {
    if (this.isOp("-")) {
      const opTok = this.next();
      const arg = this.parseUnary();
      return { kind: "neg", arg, span: join(opTok, arg.span), opSpan: opTok };
    }
    // `a == not b` / `a == !b`: read the negation here too rather than fail.
    if (this.isOp("not")) return this.parseNot();
    return this.parsePrimary();
  }

  private parsePrimary(): Node {
    const t = this.peek();
    const span: Span = { offset: t.offset, length: t.length };
    switch (t.kind) {
      case "int":
      case "float":
        this.next();
        return { kind: t.kind, value: t.value, span };
      case "bool":
      case "string":
        this.next();
        return t.kind === "bool" ? { kind: "bool", value: t.value, span } : { kind: "string", value: t.value, span };
      case "duration":
        this.next();
        return { kind: "duration", ms: t.ms, span };
      case "name":
        this.next();
        if (this.peek().kind === "(") return this.parseCall(t.text, span);
        return { kind: "name", name: t.text, span };
      case "bad":
        this.next();
        return { kind: "error", span };
      case "(": {
        this.next();
        const inner = this.parseOr();
        const close = this.expectClose(t);
        // The parentheses belong to the node's span, so its source text reads back whole.
        return { ...inner, span: join(span, close) };
      }
      case "op":
      case ")":
      case ",":
      case "eof":
        this.error(`expected a value, found ${describe(t, this.src)}`, span);
        // Do not consume closers or the end: the caller that owns them needs them.
        if (t.kind === "op") this.next();
        return { kind: "error", span };
    }
  }

  private parseCall(fn: string, fnSpan: Span): Node {
    const open = this.next();
    const args: Node[] = [];
    if (this.peek().kind !== ")") {
      for (;;) {
        const before = this.pos;
        args.push(this.parseOr());
        if (this.peek().kind !== ",") break;
        this.next();
        if (this.pos === before) break;
      }
    }
    const close = this.expectClose(open);
    return { kind: "call", fn, fnSpan, args, span: join(fnSpan, close) };
  }

  /** Consume `)` for the `(` at `open`; on a mistake record it and return where it was expected. */
  private expectClose(open: Span): Span {
    const t = this.peek();
    if (t.kind === ")") {
      this.next();
      return t;
    }
    this.error(`expected ')' to close the '(' at character ${open.offset + 1} of the expression, found ${describe(t, this.src)}`, t);
    return { offset: t.offset, length: 0 };
  }
}
