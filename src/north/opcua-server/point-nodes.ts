/**
 * One point's variable: its variable type (AnalogItemType for analog points,
 * TwoStateDiscreteType for booleans, BaseDataVariableType otherwise), its
 * data type (data-types.ts), engineering units and ranges, and the role
 * permissions that tell each session whether it may write it.
 */
import {
  DataType,
  DataValue,
  PermissionFlag,
  StatusCodes,
  Variant,
  WellKnownRoles,
  makeAccessLevelFlag,
  type Namespace,
  type RolePermissionTypeOptions,
  type UAObject,
  type UAVariable,
} from "node-opcua";
import type { OpcuaRole } from "./config.js";
import { pointType, type PointType, type Range } from "./data-types.js";
import { setDataValue } from "./nodes.js";
import type { PointView } from "./ports.js";
import { engineeringUnits, isAnalog } from "./units.js";

/** The string NodeId identifier of a point: `Cell.Devices.<device>.<point>`. */
export function pointNodeId(p: Pick<PointView, "device" | "name">): string {
  return `Cell.Devices.${p.device}.${p.name}`;
}

/** Who may write a point over OPC UA (the command router decides again). */
export interface WriteAccess {
  /** Operators may write it. */
  readonly operator: boolean;
  /** Anyone may (outputs and memory points: engineers). */
  readonly engineer: boolean;
}

const READ = PermissionFlag.Browse | PermissionFlag.Read | PermissionFlag.ReadRolePermissions;
const WRITE = READ | PermissionFlag.Write;

/**
 * RolePermissions of a writable point, so that UserAccessLevel tells each
 * session what it may write. Every session also stands on the Anonymous role
 * (node-opcua adds it), so the Anonymous entry is the floor for everyone.
 */
function rolePermissions(access: WriteAccess, anonymousRole: OpcuaRole | undefined): RolePermissionTypeOptions[] {
  const may = (role: OpcuaRole): boolean => (role === "engineer" ? access.engineer : role === "operator" ? access.operator : false);
  return [
    { roleId: WellKnownRoles.Anonymous, permissions: anonymousRole !== undefined && may(anonymousRole) ? WRITE : READ },
    { roleId: WellKnownRoles.AuthenticatedUser, permissions: READ },
    { roleId: WellKnownRoles.Observer, permissions: READ },
    { roleId: WellKnownRoles.Operator, permissions: may("operator") ? WRITE : READ },
    { roleId: WellKnownRoles.Engineer, permissions: may("engineer") ? WRITE : READ },
  ];
}

export interface PointBuildOptions {
  /** Role of anonymous sessions, when they are allowed. */
  readonly anonymousRole: OpcuaRole | undefined;
  /** Write access of an output or memory point. */
  readonly access: (p: PointView) => WriteAccess;
}

const UNBOUNDED: Range = { low: -Infinity, high: Infinity };

/**
 * EURange: the clamp; else what an integer register can carry (through the
 * scaling); else unbounded (a float register's ±3.4e38 says nothing about the
 * process, so it is only the InstrumentRange).
 */
export function euRange(p: Pick<PointView, "scale" | "wireType">, t: PointType): Range {
  const clamp = p.scale?.clamp;
  if (clamp !== undefined) return { low: clamp.min, high: clamp.max };
  if (p.wireType === "float32" || p.wireType === "float64") return UNBOUNDED;
  return t.range ?? UNBOUNDED;
}

/** Add the variable of point `p` under its device object. Its value starts as Bad_WaitingForInitialData. */
export function addPoint(ns: Namespace, parent: UAObject, p: PointView, opts: PointBuildOptions): { node: UAVariable; type: PointType } {
  const access = p.direction === "input" ? { operator: false, engineer: false } : opts.access(p);
  const writable = access.engineer || access.operator;
  const type = pointType(p);
  const common = {
    componentOf: parent,
    browseName: p.name,
    nodeId: `s=${pointNodeId(p)}`,
    description: p.description ?? `${p.id} (${p.direction})`,
    minimumSamplingInterval: 0,
    accessLevel: makeAccessLevelFlag(writable ? "CurrentRead | CurrentWrite" : "CurrentRead"),
  };
  let node: UAVariable;
  if (isAnalog(p)) {
    node = ns.addAnalogDataItem({
      ...common,
      dataType: DataType[type.dataType],
      engineeringUnitsRange: euRange(p, type),
      ...(type.range === undefined ? {} : { instrumentRange: type.range }),
      ...(p.unit === undefined ? {} : { engineeringUnits: engineeringUnits(p.unit) }),
    });
  } else if (p.kind === "bool") {
    node = ns.addTwoStateDiscrete({ ...common, trueState: "True", falseState: "False", value: false });
  } else {
    node = ns.addVariable({ ...common, dataType: type.dataType });
  }
  if (writable) node.setRolePermissions(rolePermissions(access, opts.anonymousRole));
  setDataValue(node, new DataValue({ value: new Variant({ dataType: DataType.Null }), statusCode: StatusCodes.BadWaitingForInitialData, serverTimestamp: new Date() }));
  return { node, type };
}
