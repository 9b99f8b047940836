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
 *   s=Cell.ControlMode, .ControlModeBy, .ControlModeSince, .ManualModeAllowed
 *                                               the control mode (auto | manual), who switched into it and when, whether manual may be entered now
 *   s=Cell.ResetInterlock, ...                  the command methods (see commands.ts)
 *
 * Every variable is exception-based (MinimumSamplingInterval 0): values are
 * pushed by values.ts and never read from a device on request.
 */
import { DataType, DataValue, StatusCodes, Variant, makeAccessLevelFlag, type Namespace, type UAObject } from "node-opcua";
import type { PointType } from "./data-types.js";
import { StatusVar, setDataValue, type CellNodes, type ControlNodes, type DeviceNodes, type DiagnosticsNodes, type InterlockNodes, type SequenceNodes } from "./nodes.js";
import { addPoint, type PointBuildOptions } from "./point-nodes.js";
import type { CellView } from "./ports.js";

export { StatusVar, setDataValue, type CellNodes } from "./nodes.js";
export { pointNodeId, type WriteAccess } from "./point-nodes.js";

export const NAMESPACE_PREFIX = "urn:cellio:";

export function namespaceUri(cellId: string): string {
  return `${NAMESPACE_PREFIX}${cellId}`;
}

export type BuildOptions = PointBuildOptions;

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
  const points: CellNodes["points"][number][] = [];
  const pointTypes: PointType[] = [];
  for (const p of view.points) {
    const parent = devices.get(p.device)?.object;
    if (parent === undefined) throw new Error(`point ${p.id}: no device ${p.device}`);
    const added = addPoint(ns, parent, p, opts);
    points[p.index] = added.node;
    pointTypes[p.index] = added.type;
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

  // The control mode, next to Cell.SetMode
  const control: ControlNodes = {
    mode: status(cell, "ControlMode", DataType.String, 'Control mode: "auto" (logic and sequences drive the outputs) or "manual" (outputs set by command); interlocks apply in both'),
    by: status(cell, "ControlModeBy", DataType.String, 'Who switched into the control mode: "<role> <caller>" (e.g. "engineer opcua:erin@<session id>", "engineer mqtt:erin"); empty while it is the startup mode (auto, never switched)'),
    since: status(cell, "ControlModeSince", DataType.DateTime, "When the control mode was entered: the cycle that applied the switch; the first cycle while it is the startup mode"),
    manualAllowed: status(cell, "ManualModeAllowed", DataType.Boolean, "manual_mode is configured and its permit holds now: SetMode(\"manual\") is not refused for the permit"),
  };

  return { ns, cell, points, pointTypes, devices, interlocks, sequences, diagnostics, control };
}

function idOf(node: UAObject): string {
  return String(node.nodeId.value);
}
