/**
 * Motoman YRC1000 profile, OPC UA addresses: the same named signals as the
 * Modbus window (./motoman-yrc1000-map.ts), each a variable `<folder>.<Signal>`
 * (PascalCase of the point name) in the robot server's namespace, as the
 * simulator's OPC UA face serves them (simulators/motoman/README.md).
 * Differences from Modbus: values are in engineering units on the wire
 * (speed override in %, joints in degrees), so no scaling.
 */
import { motomanFields, pointType, type MotomanPoint } from "./motoman-yrc1000-map.js";

/** A profile point over OPC UA: the Modbus point's fields, with a NodeId as its address and no raw scaling (the face serves engineering values). */
export type MotomanOpcuaPoint = Omit<MotomanPoint, "scale">;

export interface MotomanOpcuaOptions {
  /** Namespace URI of the signal variables (default: the simulator's). */
  readonly namespaceUri?: string;
  /** String NodeId prefix (default "Motoman"). */
  readonly folder?: string;
  readonly axes?: number;
}

export const MOTOMAN_OPCUA_DEFAULT_NAMESPACE = "urn:cellio:simulator:motoman";

/** servo_on → ServoOn, joint_1 → Joint1. */
export function signalName(point: string): string {
  return point
    .split("_")
    .map((w) => (w === "" ? "" : w[0]!.toUpperCase() + w.slice(1)))
    .join("");
}

/** The profile's points with OPC UA NodeIds (`nsu=<uri>;s=<folder>.<Signal>`). */
export function motomanOpcuaPoints(opts: MotomanOpcuaOptions = {}): MotomanOpcuaPoint[] {
  const uri = opts.namespaceUri ?? MOTOMAN_OPCUA_DEFAULT_NAMESPACE;
  const folder = opts.folder ?? "Motoman";
  return motomanFields(opts.axes ?? 6).map((f) =>
    Object.freeze({
      name: f.name,
      address: `nsu=${uri};s=${folder}.${signalName(f.name)}`,
      type: pointType(f),
      direction: f.direction,
      description: f.description.replace(/ \(raw in [^)]*\)/, ""),
      ...(f.safe === undefined ? {} : { safe: f.safe }),
      ...(f.unit === undefined ? {} : { unit: f.unit }),
    }),
  );
}
