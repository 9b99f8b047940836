/**
 * Points: the named values of the cell, compiled from the config once.
 * The point table is plain frozen data indexed by point index; the process
 * image is an array of samples in the same order.
 */
import type { Value } from "./sample.js";

export type PointKind = "bool" | "int" | "float" | "string";
export type Direction = "input" | "output" | "memory";

/**
 * How the value is encoded on the device (Modbus: the address's type), when
 * the protocol says. Northbound uses it for the exact data type and range
 * (OPC UA: UInt16 for a uint16 register, Float for a float32 one, ...).
 */
export const WIRE_TYPES = ["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"] as const;
export type WireType = (typeof WIRE_TYPES)[number];

export interface Scaling {
  readonly gain: number;
  readonly offset: number;
  readonly clamp?: { readonly min: number; readonly max: number };
}

export interface PointDef {
  readonly index: number;
  /** "<device>.<point>" */
  readonly id: string;
  readonly device: string;
  readonly name: string;
  readonly kind: PointKind;
  readonly direction: Direction;
  /** Safe value for outputs (and memory), null for inputs. */
  readonly safe: Value | null;
  readonly unit: string | undefined;
  readonly description: string | undefined;
  readonly scale: Scaling | undefined;
  readonly deadband: number;
  /** Protocol address as written in the config. */
  readonly address: string;
  /** Set by cellio every cycle (toggle or counter) for devices that watch the controller. */
  readonly heartbeat: "toggle" | "counter" | undefined;
  /** Operators may set it by command (engineers may set any output). */
  readonly operatorWritable: boolean;
  /** Encoding on the device, when the protocol has one (memory points: none). */
  readonly wireType?: WireType | undefined;
}

export function defaultSafe(kind: PointKind): Value {
  switch (kind) {
    case "bool":
      return false;
    case "int":
    case "float":
      return 0;
    case "string":
      return "";
  }
}

/** Does `v` fit a point of this kind? */
export function valueFits(kind: PointKind, v: unknown): v is Value {
  switch (kind) {
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
