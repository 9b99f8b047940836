/**
 * The OPC UA data type of each point from its kind and wire type, its ranges,
 * and the conversions both ways (64-bit integers as node-opcua's word pairs).
 */
import { DataType, Variant, VariantArrayType } from "node-opcua";
import { describe, expect, it } from "vitest";
import type { PointKind, WireType } from "../../../src/core/points.js";
import { fromVariant, pointType, toVariant } from "../../../src/north/opcua-server/data-types.js";
import { euRange } from "../../../src/north/opcua-server/point-nodes.js";

type Scale = { gain: number; offset: number; clamp?: { min: number; max: number } };
const T = (kind: PointKind, wireType?: WireType, scale?: Scale) => pointType({ kind, wireType, scale });

describe("pointType", () => {
  it.each([
    ["bool", "bool", undefined, DataType.Boolean],
    ["string", "string", undefined, DataType.String],
    ["int", "int16", undefined, DataType.Int16],
    ["int", "uint16", undefined, DataType.UInt16],
    ["int", "int32", undefined, DataType.Int32],
    ["int", "uint32", undefined, DataType.UInt32],
    ["int", "int64", undefined, DataType.Int64],
    ["int", "uint64", undefined, DataType.UInt64],
    ["float", "float32", undefined, DataType.Float],
    ["float", "float64", undefined, DataType.Double],
    ["float", "int16", { gain: 0.1, offset: 0 }, DataType.Double],
    ["float", "float32", { gain: 2, offset: 0 }, DataType.Double],
    ["int", "uint16", { gain: 10, offset: 0 }, DataType.Int32],
    ["int", "uint32", { gain: 10, offset: 0 }, DataType.Int64],
    ["int", undefined, undefined, DataType.Int32],
    ["float", undefined, undefined, DataType.Double],
  ] as const)("%s on %s (scale %j): %s", (kind, wire, scale, dataType) => {
    expect(DataType[T(kind, wire, scale).dataType]).toBe(DataType[dataType]);
  });

  it("ranges: the register's, through the scaling, narrowed by the clamp", () => {
    expect(T("int", "uint16").range).toEqual({ low: 0, high: 65535 });
    expect(T("float", "int16", { gain: 0.1, offset: 5 }).range).toEqual({ low: -32768 * 0.1 + 5, high: 32767 * 0.1 + 5 });
    expect(T("float", "uint16", { gain: -1, offset: 0 }).range).toEqual({ low: -65535, high: 0 });
    const clamped = { gain: 0.1, offset: 0, clamp: { min: 0, max: 100 } };
    expect(T("float", "uint16", clamped).range).toEqual({ low: 0, high: 100 });
    expect(T("float", "float64").range).toBeUndefined();
  });

  it("EURange: the clamp, else an integer register's range, else unbounded", () => {
    const clamp = { gain: 0.1, offset: 0, clamp: { min: 0, max: 100 } };
    expect(euRange({ scale: clamp, wireType: "uint16" }, T("float", "uint16", clamp))).toEqual({ low: 0, high: 100 });
    expect(euRange({ scale: undefined, wireType: "int16" }, T("int", "int16"))).toEqual({ low: -32768, high: 32767 });
    const tenth = { gain: 0.1, offset: 0 };
    expect(euRange({ scale: tenth, wireType: "uint16" }, T("float", "uint16", tenth))).toEqual({ low: 0, high: 6553.5 });
    expect(euRange({ scale: undefined, wireType: "float32" }, T("float", "float32"))).toEqual({ low: -Infinity, high: Infinity });
    expect(euRange({ scale: undefined, wireType: "float64" }, T("float", "float64"))).toEqual({ low: -Infinity, high: Infinity });
  });
});

describe("values both ways", () => {
  it("64-bit integers become [high, low] words and come back exact", () => {
    const i64 = T("int", "int64");
    const u64 = T("int", "uint64");
    expect(toVariant(i64, -1).value).toEqual([0xffffffff, 0xffffffff]);
    expect(toVariant(i64, -(2 ** 40)).value).toEqual([0xffffff00, 0]);
    expect(toVariant(u64, 2 ** 53 - 1).value).toEqual([0x1fffff, 0xffffffff]);
    for (const v of [0, -1, -(2 ** 40), 2 ** 53 - 1, -(2 ** 53)]) {
      expect(fromVariant(i64, toVariant(i64, v))).toEqual({ ok: true, value: v });
    }
    // 2^53 + 1 is not a JavaScript number: refused rather than rounded.
    expect(fromVariant(u64, new Variant({ dataType: DataType.UInt64, arrayType: VariantArrayType.Scalar, value: [0x200000, 1] }))).toEqual({ ok: false, why: "range" });
  });

  it("a write must carry the variable's own data type and fit its register", () => {
    const u16 = T("int", "uint16");
    expect(fromVariant(u16, new Variant({ dataType: DataType.UInt16, value: 65535 }))).toEqual({ ok: true, value: 65535 });
    expect(fromVariant(u16, new Variant({ dataType: DataType.Int32, value: 5 }))).toEqual({ ok: false, why: "type" });
    const i16 = T("int", "int16");
    expect(fromVariant(i16, new Variant({ dataType: DataType.Int16, value: -32768 }))).toEqual({ ok: true, value: -32768 });
    const f32 = T("float", "float32");
    expect(fromVariant(f32, new Variant({ dataType: DataType.Float, value: 1.5 }))).toEqual({ ok: true, value: 1.5 });
    expect(fromVariant(f32, new Variant({ dataType: DataType.Double, value: 1.5 }))).toEqual({ ok: false, why: "type" });
    const clamped = T("float", "uint16", { gain: 0.1, offset: 0, clamp: { min: 0, max: 100 } });
    expect(fromVariant(clamped, new Variant({ dataType: DataType.Double, value: 100.5 }))).toEqual({ ok: false, why: "range" });
    expect(fromVariant(T("bool", "bool"), new Variant({ dataType: DataType.Boolean, value: true }))).toEqual({ ok: true, value: true });
  });
});
