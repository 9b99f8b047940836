/**
 * Motoman YRC1000 profile, OPC UA addresses: the same named signals as the
 * Modbus window (./motoman-yrc1000-map.ts), each a variable `<folder>.<Signal>`
 * (PascalCase of the point name) in the robot server's namespace, as the
 * simulator's OPC UA face serves them (simulators/motoman/README.md).
 * Differences from Modbus: values are in engineering units on the wire
 * (speed override in %, joints in degrees), so no scaling.
 */
import { motomanFields, type MotomanField } from "./motoman-yrc1000-map.js";

export interface MotomanOpcuaPoint {
  readonly name: string;
  readonly address: string;
  readonly type: "bool" | "int" | "float";
  readonly direction: "input" | "output";
  readonly safe?: boolean | number;
  readonly description: string;
  readonly unit?: string;
}

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

function kindOf(f: MotomanField): "bool" | "int" | "float" {
  if (f.encoding === "bit") return "bool";
  return f.gain === undefined ? "int" : "float";
}

/** The profile's points with OPC UA NodeIds (`nsu=<uri>;s=<folder>.<Signal>`). */
export function motomanOpcuaPoints(opts: MotomanOpcuaOptions = {}): MotomanOpcuaPoint[] {
  const uri = opts.namespaceUri ?? MOTOMAN_OPCUA_DEFAULT_NAMESPACE;
  const folder = opts.folder ?? "Motoman";
  return motomanFields(opts.axes ?? 6).map((f) =>
    Object.freeze({
      name: f.name,
      address: `nsu=${uri};s=${folder}.${signalName(f.name)}`,
      type: kindOf(f),
      direction: f.direction,
      description: f.description.replace(/ \(raw in [^)]*\)/, ""),
      ...(f.safe === undefined ? {} : { safe: f.safe }),
      ...(f.unit === undefined ? {} : { unit: f.unit }),
    }),
  );
}
