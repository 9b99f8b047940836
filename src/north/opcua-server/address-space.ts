/**
 * The address space, generated from the config under Objects/Cell in the
 * namespace `urn:cellio:<cell-id>`. NodeIds are strings built from names, so
 * they stay stable across restarts and config edits that do not rename:
 *
 *   s=Cell.Devices.<device>.<point>             the point (AnalogItemType, TwoStateDiscreteType or BaseDataVariable)
 *   s=Cell.Devices.<device>.Status.<field>      Connected, State, LastError, ReadLatencyP99Ms, Reads, ...
 *   s=Cell.Interlocks.<id>.<field>              Permitted, Tripped, Latched, TripCount, LastCause, LastTripTime
 *   s=Cell.Sequences.<id>.<field>               Step, StepElapsedMs, LastFault, Faulted
 *   s=Cell.Diagnostics.<field>                  PeriodMs, LatenessP50Ms, ..., Mode, Faulted, UptimeS, CycleCount
 *   s=Cell.ResetInterlock, ...                  the command methods (see commands.ts)
 *
 * Every variable is exception-based (MinimumSamplingInterval 0): values are
 * pushed by values.ts and never read from a device on request.
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
import type { PointKind } from "../../core/points.js";
import type { OpcuaRole } from "./config.js";
import type { CellView, PointView } from "./ports.js";
import { engineeringUnits, isAnalog } from "./units.js";

export const NAMESPACE_PREFIX = "urn:cellio:";

export function namespaceUri(cellId: string): string {
  return `${NAMESPACE_PREFIX}${cellId}`;
}

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

/**
 * A variable holding one scalar that cellio computes (status, diagnostics):
 * `set()` pushes a new Good value only when it differs.
 */
export class StatusVar {
  private last: unknown = undefined;

  constructor(
    readonly node: UAVariable,
    private readonly dataType: DataType,
  ) {}

  set(value: boolean | number | string | Date, sourceMs: number): void {
    const key = value instanceof Date ? value.getTime() : value;
    if (key === this.last) return;
    this.last = key;
    setDataValue(
      this.node,
      new DataValue({
        value: new Variant({ dataType: this.dataType, value }),
        statusCode: StatusCodes.Good,
        sourceTimestamp: new Date(sourceMs),
        serverTimestamp: new Date(),
      }),
    );
  }
}

/**
 * The one setter of node-opcua that takes a whole DataValue. setValueFromSource
 * would stamp the serverTimestamp with the source time, and cannot leave the
 * source timestamp null for a value never read.
 */
interface DataValueSink {
  _internal_set_dataValue(dataValue: DataValue, indexRange?: null): void;
}

export function setDataValue(node: UAVariable, dv: DataValue): void {
  // node-opcua 2.182.2: UAVariableImpl._internal_set_dataValue is declared in its impl typings only.
  (node as unknown as DataValueSink)._internal_set_dataValue(dv, null);
}

export interface DeviceNodes {
  readonly object: UAObject;
  readonly status: UAObject;
  readonly connected: StatusVar;
  readonly state: StatusVar;
  readonly lastError: StatusVar;
  readonly latencyP99: StatusVar;
  readonly reads: StatusVar;
  readonly readFailures: StatusVar;
  readonly writes: StatusVar;
  readonly writeFailures: StatusVar;
  readonly deadlineMisses: StatusVar;
}

export interface InterlockNodes {
  readonly object: UAObject;
  readonly permitted: StatusVar;
  readonly tripped: StatusVar;
  readonly latched: StatusVar;
  readonly tripCount: StatusVar;
  readonly lastCause: StatusVar;
  readonly lastTripTime: StatusVar;
}

export interface SequenceNodes {
  readonly object: UAObject;
  readonly step: StatusVar;
  readonly stepElapsedMs: StatusVar;
  readonly lastFault: StatusVar;
  readonly faulted: StatusVar;
}

export interface DiagnosticsNodes {
  readonly object: UAObject;
  readonly periodMs: StatusVar;
  readonly latenessP50: StatusVar;
  readonly latenessP99: StatusVar;
  readonly latenessMax: StatusVar;
  readonly inputMisses: StatusVar;
  readonly outputMisses: StatusVar;
  readonly overruns: StatusVar;
  readonly skipped: StatusVar;
  readonly mode: StatusVar;
  readonly faulted: StatusVar;
  readonly uptimeS: StatusVar;
  readonly cycleCount: StatusVar;
  readonly lastCommand: StatusVar;
}

export interface CellNodes {
  readonly ns: Namespace;
  readonly cell: UAObject;
  /** By point index. */
  readonly points: readonly UAVariable[];
  readonly pointKinds: readonly PointKind[];
  readonly devices: ReadonlyMap<string, DeviceNodes>;
  readonly interlocks: ReadonlyMap<string, InterlockNodes>;
  readonly sequences: ReadonlyMap<string, SequenceNodes>;
  readonly diagnostics: DiagnosticsNodes;
}

const DATA_TYPE: Readonly<Record<PointKind, DataType>> = {
  bool: DataType.Boolean,
  int: DataType.Int32,
  float: DataType.Double,
  string: DataType.String,
};

export function dataTypeOf(kind: PointKind): DataType {
  return DATA_TYPE[kind];
}

const READ = PermissionFlag.Browse | PermissionFlag.Read | PermissionFlag.ReadRolePermissions;
const WRITE = READ | PermissionFlag.Write;

/**
 * RolePermissions of a writable point, so that UserAccessLevel tells each
 * session what it may write. Every session also stands on the Anonymous role
 * (node-opcua adds it), so the Anonymous entry is the floor for everyone.
 */
function rolePermissions(access: WriteAccess, anonymousRole: OpcuaRole | undefined): RolePermissionTypeOptions[] {
  const may = (role: OpcuaRole): boolean => role === "engineer" ? access.engineer : role === "operator" ? access.operator : false;
  return [
    { roleId: WellKnownRoles.Anonymous, permissions: anonymousRole !== undefined && may(anonymousRole) ? WRITE : READ },
    { roleId: WellKnownRoles.AuthenticatedUser, permissions: READ },
    { roleId: WellKnownRoles.Observer, permissions: READ },
    { roleId: WellKnownRoles.Operator, permissions: may("operator") ? WRITE : READ },
    { roleId: WellKnownRoles.Engineer, permissions: may("engineer") ? WRITE : READ },
  ];
}

export interface BuildOptions {
  /** Role of anonymous sessions, when they are allowed. */
  readonly anonymousRole: OpcuaRole | undefined;
  /** Write access per point index (inputs: none). */
  readonly access: (p: PointView) => WriteAccess;
}

/** Build Objects/Cell in `ns` from the cell view. Values start as Bad_WaitingForInitialData. */
export function buildAddressSpace(ns: Namespace, view: CellView, opts: BuildOptions): CellNodes {
  const as = ns.addressSpace;
  const objects = as.rootFolder.objects;
  const cell = ns.addObject({
    organizedBy: objects,
    browseName: "Cell",
    nodeId: "s=Cell",
    description: `cellio cell ${view.cellId}`,
    eventNotifier: 1, // SubscribeToEvents: alarms and events of the cell
  });
  const folder = (name: string, parent: UAObject, description: string): UAObject =>
    ns.addObject({ componentOf: parent, browseName: name, nodeId: `s=${idOf(parent)}.${name}`, description, eventSourceOf: parent, eventNotifier: 1 });

  const status = (parent: UAObject, name: string, dataType: DataType, description: string): StatusVar => {
    const node = ns.addVariable({
      componentOf: parent,
      browseName: name,
      nodeId: `s=${idOf(parent)}.${name}`,
      dataType,
      description,
      minimumSamplingInterval: 0,
      accessLevel: makeAccessLevelFlag("CurrentRead"),
      userAccessLevel: makeAccessLevelFlag("CurrentRead"),
    });
    setDataValue(node, new DataValue({ value: new Variant({ dataType: DataType.Null }), statusCode: StatusCodes.BadWaitingForInitialData, serverTimestamp: new Date() }));
    return new StatusVar(node, dataType);
  };

  // Devices and their points
  const devicesFolder = folder("Devices", cell, "Southbound devices and their points");
  const devices = new Map<string, DeviceNodes>();
  for (const name of view.devices) {
    const object = ns.addObject({ componentOf: devicesFolder, browseName: name, nodeId: `s=Cell.Devices.${name}`, eventSourceOf: devicesFolder, eventNotifier: 1 });
    const st = ns.addObject({ componentOf: object, browseName: "Status", nodeId: `s=Cell.Devices.${name}.Status`, eventSourceOf: object, eventNotifier: 1 });
    devices.set(name, {
      object,
      status: st,
      connected: status(st, "Connected", DataType.Boolean, "The device answers (state good or stale)"),
      state: status(st, "State", DataType.String, "waiting | good | stale | bad"),
      lastError: status(st, "LastError", DataType.String, "Last read or write error (empty when none)"),
      latencyP99: status(st, "ReadLatencyP99Ms", DataType.Double, "Read latency p99 since start, ms"),
      reads: status(st, "Reads", DataType.UInt32, "Reads since start"),
      readFailures: status(st, "ReadFailures", DataType.UInt32, "Failed reads since start"),
      writes: status(st, "Writes", DataType.UInt32, "Writes since start"),
      writeFailures: status(st, "WriteFailures", DataType.UInt32, "Failed writes since start"),
      deadlineMisses: status(st, "DeadlineMisses", DataType.UInt32, "Reads not back by the input deadline"),
    });
  }
  const points: UAVariable[] = [];
  for (const p of view.points) {
    const parent = devices.get(p.device)?.object;
    if (parent === undefined) throw new Error(`point ${p.id}: no device ${p.device}`);
    points[p.index] = addPoint(ns, parent, p, opts);
  }

  // Interlocks
  const ilFolder = folder("Interlocks", cell, "Process interlocks");
  const interlocks = new Map<string, InterlockNodes>();
  for (const il of view.interlocks) {
    const object = ns.addObject({
      componentOf: ilFolder,
      browseName: il.id,
      nodeId: `s=Cell.Interlocks.${il.id}`,
      description: il.description,
      eventSourceOf: ilFolder,
      eventNotifier: 1,
    });
    interlocks.set(il.id, {
      object,
      permitted: status(object, "Permitted", DataType.Boolean, "Permit true and every referenced point good"),
      tripped: status(object, "Tripped", DataType.Boolean, "Tripped: its outputs are forced"),
      latched: status(object, "Latched", DataType.Boolean, "Stays tripped until reset"),
      tripCount: status(object, "TripCount", DataType.UInt32, "Trips since start"),
      lastCause: status(object, "LastCause", DataType.String, "Cause of the latest trip"),
      lastTripTime: status(object, "LastTripTime", DataType.DateTime, "Time of the latest trip"),
    });
  }

  // Sequences
  const seqFolder = folder("Sequences", cell, "Sequences (one active step each)");
  const sequences = new Map<string, SequenceNodes>();
  for (const s of view.sequences) {
    const object = ns.addObject({ componentOf: seqFolder, browseName: s.id, nodeId: `s=Cell.Sequences.${s.id}`, description: s.description });
    sequences.set(s.id, {
      object,
      step: status(object, "Step", DataType.String, "Active step"),
      stepElapsedMs: status(object, "StepElapsedMs", DataType.Double, "Time in the active step, ms"),
      lastFault: status(object, "LastFault", DataType.String, "Latest step timeout (empty when none)"),
      faulted: status(object, "Faulted", DataType.Boolean, "The active step is the fault step"),
    });
  }

  // Diagnostics
  const d = folder("Diagnostics", cell, "Loop timing and state");
  const diagnostics: DiagnosticsNodes = {
    object: d,
    periodMs: status(d, "PeriodMs", DataType.Double, "Cycle period T, ms"),
    latenessP50: status(d, "LatenessP50Ms", DataType.Double, "Cycle start lateness p50, ms"),
    latenessP99: status(d, "LatenessP99Ms", DataType.Double, "Cycle start lateness p99, ms"),
    latenessMax: status(d, "LatenessMaxMs", DataType.Double, "Cycle start lateness max, ms"),
    inputMisses: status(d, "InputMisses", DataType.UInt32, "Reads not back by the input deadline"),
    outputMisses: status(d, "OutputMisses", DataType.UInt32, "Writes not done by the output deadline"),
    overruns: status(d, "Overruns", DataType.UInt32, "Cycles longer than the period"),
    skipped: status(d, "SkippedCycles", DataType.UInt32, "Cycles skipped because a tick came a whole period late"),
    mode: status(d, "Mode", DataType.String, "starting | running | faulted"),
    faulted: status(d, "Faulted", DataType.Boolean, "Overrun fault: every output is safe until ResetFault"),
    uptimeS: status(d, "UptimeS", DataType.Double, "Seconds since the server started"),
    cycleCount: status(d, "CycleCount", DataType.Double, "Cycles completed"),
    lastCommand: status(d, "LastCommand", DataType.String, "The latest command over OPC UA and its result"),
  };

  return { ns, cell, points, pointKinds: view.points.map((p) => p.kind), devices, interlocks, sequences, diagnostics };
}

function idOf(node: UAObject): string {
  return String(node.nodeId.value);
}

function addPoint(ns: Namespace, parent: UAObject, p: PointView, opts: BuildOptions): UAVariable {
  const access = p.direction === "input" ? { operator: false, engineer: false } : opts.access(p);
  const writable = access.engineer || access.operator;
  const accessLevel = makeAccessLevelFlag(writable ? "CurrentRead | CurrentWrite" : "CurrentRead");
  const common = {
    componentOf: parent,
    browseName: p.name,
    nodeId: `s=${pointNodeId(p)}`,
    description: p.description ?? `${p.id} (${p.direction})`,
    minimumSamplingInterval: 0,
    accessLevel,
  };
  let node: UAVariable;
  if (isAnalog(p)) {
    const clamp = p.scale?.clamp;
    node = ns.addAnalogDataItem({
      ...common,
      dataType: p.kind === "int" ? "Int32" : "Double",
      engineeringUnitsRange: clamp ? { low: clamp.min, high: clamp.max } : { low: -Infinity, high: Infinity },
      ...(p.unit === undefined ? {} : { engineeringUnits: engineeringUnits(p.unit) }),
    });
  } else if (p.kind === "bool") {
    node = ns.addTwoStateDiscrete({ ...common, trueState: "True", falseState: "False", value: false });
  } else {
    node = ns.addVariable({ ...common, dataType: dataTypeOf(p.kind) });
  }
  if (writable) node.setRolePermissions(rolePermissions(access, opts.anonymousRole));
  setDataValue(node, new DataValue({ value: new Variant({ dataType: DataType.Null }), statusCode: StatusCodes.BadWaitingForInitialData, serverTimestamp: new Date() }));
  return node;
}
