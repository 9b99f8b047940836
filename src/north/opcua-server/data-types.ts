/**
 * The OPC UA data type of each point, from its kind and its encoding on the
 * device (PointDef.wireType), and the conversions between cellio values and
 * Variants of that type. Pure.
 *
 *   bool                          Boolean
 *   string                        String
 *   int, unscaled                 Int16, UInt16, Int32, UInt32, Int64, UInt64 (the register's type)
 *   int, scaled                   Int32, or Int64 when the scaled register range does not fit Int32
 *   float, float32 unscaled       Float
 *   float, otherwise              Double (float64, and every scaled register)
 *   no wire type (memory points)  Boolean, Int32, Double, String by kind
 *
 * `range` is what the encoding can carry, in engineering units (the register's
 * range through the scaling, then the clamp): it is the InstrumentRange of an
 * AnalogItem, and a value outside it cannot be shown (Bad_OutOfRange) or
 * written (BadOutOfRange).
 */
import { DataType, Variant, VariantArrayType } from "node-opcua";
import type { PointKind, WireType } from "../../core/points.js";
import type { Value } from "../../core/sample.js";
import type { PointView } from "./ports.js";

export interface Range {
  readonly low: number;
  readonly high: number;
}

export interface PointType {
  readonly kind: PointKind;
  readonly dataType: DataType;
  /** What the value can be (integers: the type's bounds; floats: the clamp, else none). */
  readonly range: Range | undefined;
}

const F32_MAX = 3.4028234663852886e38;

/** The bounds of each integer wire type (64-bit ones as doubles: exact at 2^63 and 2^64). */
export const WIRE_RANGE: Readonly<Partial<Record<WireType, Range>>> = {
  int16: { low: -32768, high: 32767 },
  uint16: { low: 0, high: 65535 },
  int32: { low: -2147483648, high: 2147483647 },
  uint32: { low: 0, high: 4294967295 },
  int64: { low: -(2 ** 63), high: 2 ** 63 - 1 },
  uint64: { low: 0, high: 2 ** 64 - 1 },
  float32: { low: -F32_MAX, high: F32_MAX },
};

const INT_TYPE: Readonly<Partial<Record<WireType, DataType>>> = {
  int16: DataType.Int16,
  uint16: DataType.UInt16,
  int32: DataType.Int32,
  uint32: DataType.UInt32,
  int64: DataType.Int64,
  uint64: DataType.UInt64,
};
const INT32: Range = { low: -2147483648, high: 2147483647 };
const INT64: Range = { low: -(2 ** 63), high: 2 ** 63 - 1 };

type TypedPoint = Pick<PointView, "kind" | "scale" | "wireType">;

/** The register's range through the point's scaling (and clamp). */
function engineeringRange(p: TypedPoint): Range | undefined {
  const wire = p.wireType === undefined ? undefined : WIRE_RANGE[p.wireType];
  let r: Range | undefined;
  if (wire !== undefined) {
    if (p.scale === undefined) r = wire;
    else {
      const a = wire.low * p.scale.gain + p.scale.offset;
      const b = wire.high * p.scale.gain + p.scale.offset;
      r = { low: Math.min(a, b), high: Math.max(a, b) };
    }
  }
  const clamp = p.scale?.clamp;
  if (clamp === undefined) return r;
  return { low: Math.max(clamp.min, r?.low ?? -Infinity), high: Math.min(clamp.max, r?.high ?? Infinity) };
}

function within(inner: Range, outer: Range): boolean {
  return inner.low >= outer.low && inner.high <= outer.high;
}

/** The OPC UA type of a point. */
export function pointType(p: TypedPoint): PointType {
  switch (p.kind) {
    case "bool":
      return { kind: p.kind, dataType: DataType.Boolean, range: undefined };
    case "string":
      return { kind: p.kind, dataType: DataType.String, range: undefined };
    case "float": {
      const range = engineeringRange(p);
      const single = p.wireType === "float32" && p.scale === undefined;
      return { kind: p.kind, dataType: single ? DataType.Float : DataType.Double, range };
    }
    case "int": {
      const range = engineeringRange(p);
      const exact = p.scale === undefined && p.wireType !== undefined ? INT_TYPE[p.wireType] : undefined;
      if (exact !== undefined) return { kind: p.kind, dataType: exact, range };
      if (range === undefined || within(range, INT32)) return { kind: p.kind, dataType: DataType.Int32, range: range ?? INT32 };
      return { kind: p.kind, dataType: DataType.Int64, range: within(range, INT64) ? range : INT64 };
    }
  }
}

/** Does value `v` fit the type (its kind, and for integers its bounds)? */
export function fits(t: PointType, v: Value): boolean {
  switch (t.kind) {
    case "bool":
      return typeof v === "boolean";
    case "string":
      return typeof v === "string";
    case "float":
      return typeof v === "number";
    case "int":
      return typeof v === "number" && Number.isInteger(v) && (t.range === undefined || (v >= t.range.low && v <= t.range.high));
  }
}

/** A 64-bit integer as node-opcua's [high, low] pair of 32-bit words (two's complement for Int64). */
function toWords(v: number): [number, number] {
  const u = BigInt.asUintN(64, BigInt(v));
  return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

/** The Variant of a value that `fits` the type. */
export function toVariant(t: PointType, v: Value): Variant {
  if (t.dataType === DataType.Int64 || t.dataType === DataType.UInt64) return new Variant({ dataType: t.dataType, arrayType: VariantArrayType.Scalar, value: toWords(v as number) });
  return new Variant({ dataType: t.dataType, value: v });
}

export type FromVariant = { ok: true; value: Value } | { ok: false; why: "type" | "range" };

/**
 * A written Variant as a cellio value. The Variant must have the point's own
 * data type (OPC 10000-4: no conversion on Write) and a value the point can
 * hold; 64-bit integers must be exact as a JavaScript number.
 */
export function fromVariant(t: PointType, variant: Variant): FromVariant {
  if (variant.dataType !== t.dataType) return { ok: false, why: "type" };
  const raw: unknown = variant.value;
  let v: unknown = raw;
  if (t.dataType === DataType.Int64 || t.dataType === DataType.UInt64) {
    if (!Array.isArray(raw) || raw.length !== 2) return { ok: false, why: "type" };
    const big = (BigInt((raw as number[])[0] ?? 0) << 32n) | BigInt((raw as number[])[1] ?? 0);
    const value = t.dataType === DataType.Int64 ? BigInt.asIntN(64, big) : big;
    const n = Number(value);
    if (BigInt(n) !== value) return { ok: false, why: "range" };
    v = n;
  }
  if (t.kind === "float" && t.range !== undefined && typeof v === "number" && (v < t.range.low || v > t.range.high)) return { ok: false, why: "range" };
  if (typeof v !== "boolean" && typeof v !== "number" && typeof v !== "string") return { ok: false, why: "type" };
  if (!fits(t, v)) return { ok: false, why: t.kind === "int" && typeof v === "number" && Number.isInteger(v) ? "range" : "type" };
  return { ok: true, value: v };
}
