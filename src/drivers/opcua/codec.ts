/**
 * Value conversion between OPC UA built-in types and cellio point kinds
 * (pure, no node-opcua). Built-in type ids are OPC 10000-6 §5.1.2.
 */
import type { PointKind } from "../../core/points.js";
import type { Value } from "../../core/sample.js";

export const BUILTIN = {
  Boolean: 1, SByte: 2, Byte: 3, Int16: 4, UInt16: 5, Int32: 6, UInt32: 7, Int64: 8, UInt64: 9,
  Float: 10, Double: 11, String: 12, LocalizedText: 21,
} as const;

const NAMES = new Map<number, string>(Object.entries(BUILTIN).map(([k, v]) => [v, k]));
const INT_RANGE: ReadonlyMap<number, readonly [number, number]> = new Map([
  [BUILTIN.SByte, [-128, 127]],
  [BUILTIN.Byte, [0, 255]],
  [BUILTIN.Int16, [-32768, 32767]],
  [BUILTIN.UInt16, [0, 65535]],
  [BUILTIN.Int32, [-0x80000000, 0x7fffffff]],
  [BUILTIN.UInt32, [0, 0xffffffff]],
  [BUILTIN.Int64, [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]],
  [BUILTIN.UInt64, [0, Number.MAX_SAFE_INTEGER]],
]);

export function builtinName(t: number): string {
  return NAMES.get(t) ?? `built-in type ${t}`;
}

/** Whether a point of `kind` can carry a variable of built-in type `t` (reading; writing also needs `writableAs`). */
export function kindFits(kind: PointKind, t: number): boolean {
  switch (kind) {
    case "bool":
      return t === BUILTIN.Boolean;
    case "int":
      return INT_RANGE.has(t);
    case "float":
      return INT_RANGE.has(t) || t === BUILTIN.Float || t === BUILTIN.Double;
    case "string":
      return t === BUILTIN.String || t === BUILTIN.LocalizedText;
  }
}

/** Whether cellio can write a point of `kind` to a variable of type `t`. */
export function writableAs(kind: PointKind, t: number): boolean {
  return kindFits(kind, t) && t !== BUILTIN.LocalizedText;
}

/** A 64-bit integer as node-opcua carries it ([high, low] 32-bit words) → number. */
function fromWords(v: unknown, signed: boolean): number | undefined {
  if (!Array.isArray(v) || v.length !== 2) return undefined;
  const [hi, lo] = v as [number, number];
  const high = signed && hi >= 0x80000000 ? hi - 0x100000000 : hi;
  return high * 0x100000000 + (lo >>> 0);
}

/** The cellio value of a variant of built-in type `t`, or an error text. */
export function fromVariant(t: number, v: unknown): { ok: true; value: Value } | { ok: false; error: string } {
  if (t === BUILTIN.Boolean && typeof v === "boolean") return { ok: true, value: v };
  if (t === BUILTIN.Int64 || t === BUILTIN.UInt64) {
    const n = typeof v === "number" ? v : fromWords(v, t === BUILTIN.Int64);
    if (n !== undefined) return { ok: true, value: n };
  } else if (INT_RANGE.has(t) || t === BUILTIN.Float || t === BUILTIN.Double) {
    if (typeof v === "number") return { ok: true, value: v };
  } else if (t === BUILTIN.String && typeof v === "string") {
    return { ok: true, value: v };
  } else if (t === BUILTIN.LocalizedText && typeof v === "object" && v !== null) {
    const text = (v as { text?: unknown }).text;
    return { ok: true, value: typeof text === "string" ? text : "" };
  }
  return { ok: false, error: `unexpected ${v === null ? "null" : typeof v} value for ${builtinName(t)}` };
}

/** The variant value to write for a cellio value on a variable of type `t`, or an error text. */
export function toVariant(t: number, value: Value): { ok: true; value: unknown } | { ok: false; error: string } {
  if (t === BUILTIN.Boolean) return typeof value === "boolean" ? { ok: true, value } : { ok: false, error: `${String(value)} is not a bool` };
  if (t === BUILTIN.String) return { ok: true, value: String(value) };
  if (typeof value !== "number" || !Number.isFinite(value)) return { ok: false, error: `${String(value)} is not a finite number` };
  if (t === BUILTIN.Float || t === BUILTIN.Double) return { ok: true, value };
  const range = INT_RANGE.get(t);
  if (!range) return { ok: false, error: `cannot write ${builtinName(t)}` };
  const n = Math.round(value);
  if (n < range[0] || n > range[1]) return { ok: false, error: `${value} is out of range for ${builtinName(t)} (${range[0]}..${range[1]})` };
  if (t === BUILTIN.Int64 || t === BUILTIN.UInt64) {
    const hi = Math.floor(n / 0x100000000);
    return { ok: true, value: [hi < 0 ? hi + 0x100000000 : hi, n - hi * 0x100000000] };
  }
  return { ok: true, value: n };
}
