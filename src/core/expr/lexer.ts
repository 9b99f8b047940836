/**
 * Lexer for cellio expressions: source text -> tokens with exact offsets.
 *
 * It never throws: anything it cannot read becomes an error (with offset and
 * length into the source) and lexing goes on, so one pass reports every
 * lexical mistake at once.
 */
import { decimalTimes } from "../duration.js";

/** A problem in an expression, located in its source string. */
export interface ExprError {
  readonly message: string;
  /** Offset (UTF-16 code units) into the source string. */
  readonly offset: number;
  /** Number of code units the problem covers (0 at the end of the input). */
  readonly length: number;
}

export type Op =
  | "or"
  | "and"
  | "not"
  | "=="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "+"
  | "-"
  | "*"
  | "/"
  | "%";

export type Token =
  | { readonly kind: "name"; readonly text: string; readonly offset: number; readonly length: number }
  | { readonly kind: "int" | "float"; readonly value: number; readonly offset: number; readonly length: number }
  | { readonly kind: "duration"; readonly ms: number; readonly offset: number; readonly length: number }
  | { readonly kind: "string"; readonly value: string; readonly offset: number; readonly length: number }
  | { readonly kind: "bool"; readonly value: boolean; readonly offset: number; readonly length: number }
  | { readonly kind: "op"; readonly op: Op; readonly offset: number; readonly length: number }
  /** `bad`: an operand the lexer already reported as malformed. */
  | { readonly kind: "(" | ")" | "," | "bad" | "eof"; readonly offset: number; readonly length: number };

/** Duration units and their length in milliseconds. */
const UNITS: ReadonlyMap<string, number> = new Map([
  ["ms", 1],
  ["s", 1000],
  ["min", 60_000],
  ["h", 3_600_000],
]);

const isDigit = (c: string): boolean => c >= "0" && c <= "9";
const isIdentStart = (c: string): boolean => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isIdentChar = (c: string): boolean => isIdentStart(c) || isDigit(c);

/** Two-character operators first, so `<=` wins over `<`. */
const SYMBOLS: ReadonlyArray<readonly [string, Op]> = [
  ["||", "or"],
  ["&&", "and"],
  ["==", "=="],
  ["!=", "!="],
  ["<=", "<="],
  [">=", ">="],
  ["<", "<"],
  [">", ">"],
  ["+", "+"],
  ["-", "-"],
  ["*", "*"],
  ["/", "/"],
  ["%", "%"],
  ["!", "not"],
];

/** Single characters people type by habit from other languages: error, then read as meant. */
const MISTAKES: ReadonlyMap<string, readonly [Op, string]> = new Map([
  ["=", ["==", "'=' is not an operator; use '==' to compare"]],
  ["&", ["and", "'&' is not an operator; use 'and' or '&&'"]],
  ["|", ["or", "'|' is not an operator; use 'or' or '||'"]],
]);

export interface Lexed {
  readonly tokens: Token[];
  readonly errors: ExprError[];
  /** Offset of the first text the lexer had to drop (Infinity if none): syntax errors from there on are its echoes. */
  readonly droppedAt: number;
}

export function tokenize(src: string): Lexed {
  const tokens: Token[] = [];
  const errors: ExprError[] = [];
  let droppedAt = Infinity;
  let i = 0;
  const at = (k: number): string => src.charAt(k);

  while (i < src.length) {
    const c = at(i);
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    const start = i;

    if (isIdentStart(c)) {
      i = readName(src, i, errors);
      const text = src.slice(start, i);
      const length = i - start;
      if (text.endsWith(".")) tokens.push({ kind: "bad", offset: start, length });
      else if (text === "true" || text === "false") tokens.push({ kind: "bool", value: text === "true", offset: start, length });
      else if (text === "and" || text === "or" || text === "not") tokens.push({ kind: "op", op: text, offset: start, length });
      else tokens.push({ kind: "name", text, offset: start, length });
      continue;
    }

    if (isDigit(c) || (c === "." && isDigit(at(i + 1)))) {
      i = readNumber(src, i, tokens, errors);
      continue;
    }

    if (c === '"' || c === "'") {
      i = readString(src, i, tokens, errors);
      continue;
    }

    if (c === "(" || c === ")" || c === ",") {
      tokens.push({ kind: c, offset: start, length: 1 });
      i++;
      continue;
    }

    const sym = SYMBOLS.find(([s]) => src.startsWith(s, i));
    if (sym !== undefined) {
      tokens.push({ kind: "op", op: sym[1], offset: start, length: sym[0].length });
      i += sym[0].length;
      continue;
    }

    const mistake = MISTAKES.get(c);
    if (mistake !== undefined) {
      errors.push({ message: mistake[1], offset: start, length: 1 });
      tokens.push({ kind: "op", op: mistake[0], offset: start, length: 1 });
      i++;
      continue;
    }

    const cp = src.codePointAt(i) ?? 0;
    const width = cp > 0xffff ? 2 : 1;
    errors.push({ message: `unexpected character '${String.fromCodePoint(cp)}'`, offset: start, length: width });
    droppedAt = Math.min(droppedAt, start);
    i += width;
  }

  tokens.push({ kind: "eof", offset: src.length, length: 0 });
  return { tokens, errors, droppedAt };
}

/** A dotted name: `ident(.ident)*`. Returns the offset after it. */
function readName(src: string, i: number, errors: ExprError[]): number {
  const start = i;
  for (;;) {
    while (i < src.length && isIdentChar(src.charAt(i))) i++;
    if (src.charAt(i) !== ".") return i;
    if (!isIdentStart(src.charAt(i + 1))) {
      errors.push({ message: `a name cannot end with '.': '${src.slice(start, i + 1)}'`, offset: start, length: i + 1 - start });
      return i + 1;
    }
    i++;
  }
}

/** Number, optionally followed directly by a duration unit. Returns the offset after it. */
function readNumber(src: string, i: number, tokens: Token[], errors: ExprError[]): number {
  const start = i;
  let isFloat = false;
  while (isDigit(src.charAt(i))) i++;
  if (src.charAt(i) === "." && isDigit(src.charAt(i + 1))) {
    isFloat = true;
    i++;
    while (isDigit(src.charAt(i))) i++;
  }
  const e = src.charAt(i);
  if ((e === "e" || e === "E") && (isDigit(src.charAt(i + 1)) || ("+-".includes(src.charAt(i + 1)) && isDigit(src.charAt(i + 2))))) {
    isFloat = true;
    i += 2;
    while (isDigit(src.charAt(i))) i++;
  }
  const numText = src.slice(start, i);
  const value = Number(numText);

  // A unit (or any identifier characters) glued to the number.
  const unitStart = i;
  while (i < src.length && isIdentChar(src.charAt(i))) i++;
  const unit = src.slice(unitStart, i);
  const length = i - start;

  if (unit !== "") {
    const factor = UNITS.get(unit);
    if (factor === undefined) {
      errors.push({ message: `unknown duration unit '${unit}' (use ms, s, min or h)`, offset: unitStart, length: unit.length });
      tokens.push({ kind: "duration", ms: NaN, offset: start, length });
    } else {
      tokens.push({ kind: "duration", ms: decimalTimes(numText, factor), offset: start, length }); // 16.1s is 16100, not 16.1 * 1000
    }
    return i;
  }
  if (!Number.isFinite(value)) {
    errors.push({ message: `number '${numText}' is out of range`, offset: start, length });
  } else if (!isFloat && !Number.isSafeInteger(value)) {
    errors.push({ message: `integer '${numText}' is out of range (largest is ${Number.MAX_SAFE_INTEGER})`, offset: start, length });
  }
  tokens.push({ kind: isFloat ? "float" : "int", value, offset: start, length });
  return i;
}

const ESCAPES: ReadonlyMap<string, string> = new Map([
  ["\\", "\\"],
  ['"', '"'],
  ["'", "'"],
  ["n", "\n"],
  ["t", "\t"],
]);

/** A string in single or double quotes with `\\ \" \' \n \t` escapes. Returns the offset after it. */
function readString(src: string, i: number, tokens: Token[], errors: ExprError[]): number {
  const start = i;
  const quote = src.charAt(i++);
  let value = "";
  while (i < src.length && src.charAt(i) !== quote) {
    const c = src.charAt(i);
    if (c === "\\") {
      const esc = ESCAPES.get(src.charAt(i + 1));
      if (esc === undefined) {
        errors.push({ message: `unknown escape '\\${src.charAt(i + 1)}' in string`, offset: i, length: Math.min(2, src.length - i) });
        value += src.charAt(i + 1);
      } else {
        value += esc;
      }
      i += 2;
      continue;
    }
    value += c;
    i++;
  }
  if (i >= src.length) {
    errors.push({ message: `unterminated string (missing closing ${quote})`, offset: start, length: src.length - start });
    tokens.push({ kind: "string", value, offset: start, length: src.length - start });
    return src.length;
  }
  tokens.push({ kind: "string", value, offset: start, length: i + 1 - start });
  return i + 1;
}
