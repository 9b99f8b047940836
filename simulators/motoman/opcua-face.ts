/**
 * The Motoman simulator's OPC UA face: a node-opcua server on 127.0.0.1 with
 * an OPC 40010 Robotics model (MotionDeviceSystem in DI's DeviceSet) and a
 * plain `Motoman` folder holding every status and command signal. It shows
 * the same `MotomanSim` as the Modbus face: status comes from the model after
 * every tick, and a write to a command variable writes the command registers
 * (`MotomanSim.setCommands`), so both faces see one robot.
 *
 * Anonymous access and SecurityPolicy None only: it is a simulator.
 * Node ids and mapping: ./README.md.
 */
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {
  DataType,
  DataValue,
  MessageSecurityMode,
  nodesets,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  standardUnits,
  StatusCodes,
  Variant,
  type Namespace,
  type StatusCode,
  type UAObject,
  type UAVariable,
} from "node-opcua";
import { describeRefusal, type MotomanCommands } from "../../src/profiles/motoman-yrc1000.js";
import { CellioError } from "../../src/infra/errors.js";
import { silentLogger, type Logger } from "../../src/infra/logger.js";
import type { RobotStatus } from "./model.js";
import type { MotomanSim } from "./sim.js";

/** Namespace of the simulator's own nodes (the Robotics instances and the Motoman folder). */
export const MOTOMAN_OPCUA_NAMESPACE = "urn:cellio:simulator:motoman";
export const ROBOTICS_NAMESPACE = "http://opcfoundation.org/UA/Robotics/";
export const DI_NAMESPACE = "http://opcfoundation.org/UA/DI/";

/** OperationalModeEnumeration (OPC 40010). */
export const OPERATIONAL_MODE = { OTHER: 0, MANUAL_REDUCED_SPEED: 1, MANUAL_HIGH_SPEED: 2, AUTOMATIC: 3, AUTOMATIC_EXTERNAL: 4 } as const;
/** ExecutionModeEnumeration (OPC 40010). */
export const EXECUTION_MODE = { CYCLE: 0, CONTINUOUS: 1, STEP: 2 } as const;

/** Teach → manual reduced speed, play → automatic, play + remote → automatic external (reference §4). */
export function operationalMode(s: Pick<RobotStatus, "mode" | "remote">): number {
  if (s.mode === "teach") return OPERATIONAL_MODE.MANUAL_REDUCED_SPEED;
  return s.remote ? OPERATIONAL_MODE.AUTOMATIC_EXTERNAL : OPERATIONAL_MODE.AUTOMATIC;
}

export interface MotomanOpcuaFaceOptions {
  /** TCP port; 0 or undefined = a free port picked on 127.0.0.1. */
  readonly port?: number;
  /** Browse name of the MotionDeviceSystem (default "YRC1000"). */
  readonly name?: string;
  /** Path of the endpoint URL (`opc.tcp://127.0.0.1:<port><resourcePath>`, e.g. "/robot"; default none). */
  readonly resourcePath?: string;
  /** Namespace URI of the simulator's nodes (default MOTOMAN_OPCUA_NAMESPACE; a device's `profile_options.namespace_uri`). */
  readonly namespaceUri?: string;
  /** Name of the signal folder and prefix of its NodeIds `s=<folder>.<Signal>` (default "Motoman"; `profile_options.folder`). */
  readonly folder?: string;
  /** PKI folder for the server certificate (default `<tmpdir>/cellio-sim-pki`, shared by all faces). */
  readonly pkiDir?: string;
  readonly log?: Logger;
}

type Scalar = boolean | number | string;
type OpcType = "Boolean" | "UInt16" | "UInt32" | "Int32" | "Double" | "String";

interface Signal {
  readonly name: string;
  readonly type: OpcType;
  readonly description: string;
  readonly read: (s: RobotStatus) => Scalar;
}

interface Command {
  readonly name: string;
  readonly type: OpcType;
  readonly key: keyof MotomanCommands;
  readonly description: string;
}

const bit = (name: string, read: (s: RobotStatus) => boolean, description: string): Signal => ({ name, type: "Boolean", read, description });
const u16 = (name: string, read: (s: RobotStatus) => number, description: string): Signal => ({ name, type: "UInt16", read, description });

/** Every status signal of the register map (PascalCase of the profile's point names), plus three readable extras. */
export function statusSignals(axes: number): Signal[] {
  return [
    bit("ServoOn", (s) => s.servoOn, "servo power on (#50073); false while energy saving"),
    bit("Operating", (s) => s.operating, "job running (#50070)"),
    bit("Hold", (s) => s.hold, "hold (#50071)"),
    bit("Alarm", (s) => s.alarm, "any alarm active"),
    bit("Error", (s) => s.error, "last command refused; see ErrorCode"),
    bit("Remote", (s) => s.remote, "command remote selected (#80011)"),
    bit("Play", (s) => s.mode === "play", "play mode (#50054)"),
    bit("Teach", (s) => s.mode === "teach", "teach mode (#50053)"),
    bit("EstopOk", (s) => s.estopOk, "all e-stop circuits OK (1 = not pressed)"),
    bit("InZone", (s) => s.inZone, "robot inside the shared zone"),
    bit("CycleComplete", (s) => s.cycleComplete, "pulse after each finished job"),
    bit("JobReceived", (s) => s.jobReceived, "job select received"),
    bit("EnergySaving", (s) => s.energySaving, "energy-saving mode (#50727)"),
    bit("StartPermit", (s) => s.startPermit, "a start would be accepted now"),
    bit("WatchdogTripped", (s) => s.watchdogTripped, "heartbeat stopped for longer than WatchdogMs"),
    bit("MajorAlarm", (s) => s.majorAlarm, "major alarm active (#50010)"),
    bit("MinorAlarm", (s) => s.minorAlarm, "minor alarm active (#50011)"),
    bit("EstopExternalOk", (s) => s.estopExternalOk, "external e-stop OK (#80025, active-low)"),
    bit("EstopPendantOk", (s) => s.estopPendantOk, "pendant e-stop OK (#80026, active-low)"),
    bit("EstopControllerOk", (s) => s.estopControllerOk, "controller e-stop OK (#80027, active-low)"),
    bit("ContinuousCycle", (s) => s.continuousCycle, "continuous cycle mode (#50052)"),
    u16("AlarmCode", (s) => s.alarmCode, "most recent active alarm code (0 = none)"),
    u16("ErrorCode", (s) => s.errorCode, "last refusal, HSES added-status code (0 = none)"),
    u16("JobEcho", (s) => s.jobEcho, "selected job, echoed on job select"),
    u16("CurrentJob", (s) => s.currentJob, "job running or paused (0 = none)"),
    u16("JobPhase", (s) => s.jobPhaseIndex, "0 idle, else 1 + phase index"),
    { name: "SpeedOverride", type: "Double", read: (s) => s.speedOverride, description: "speed override, %" },
    u16("WatchdogMsReadback", (s) => s.watchdogMs, "WatchdogMs as the robot scanned it"),
    { name: "CycleCount", type: "UInt32", read: (s) => s.cycleCount, description: "finished jobs since power-on" },
    { name: "JobElapsedMs", type: "UInt32", read: (s) => Math.round(s.jobElapsedMs), description: "job time at 100 % override, ms" },
    ...Array.from({ length: axes }, (_, i): Signal => ({
      name: `Joint${i + 1}`,
      type: "Double",
      read: (s) => s.jointPositions[i] ?? 0,
      description: `axis ${i + 1} position, deg`,
    })),
    { name: "Mode", type: "String", read: (s) => s.mode, description: '"teach" or "play"' },
    { name: "JobPhaseName", type: "String", read: (s) => s.jobPhase, description: '"idle" or the current phase' },
    { name: "ErrorText", type: "String", read: (s) => describeRefusal(s.errorCode), description: "ErrorCode in words" },
  ];
}

/** The writable command signals: the command block of the register map. */
export const COMMAND_SIGNALS: readonly Command[] = [
  { name: "ExtServoOn", type: "Boolean", key: "extServoOn", description: "EXTERNAL SERVO ON; the robot acts on the rising edge" },
  { name: "ExtStart", type: "Boolean", key: "extStart", description: "EXTERNAL START; the robot acts on the rising edge" },
  { name: "ExtHold", type: "Boolean", key: "extHold", description: "EXTERNAL HOLD, level: true = hold" },
  { name: "AlarmReset", type: "Boolean", key: "alarmReset", description: "ALARM/ERROR RESET; rising edge" },
  { name: "JobStrobe", type: "Boolean", key: "jobStrobe", description: "job select strobe" },
  { name: "JobNumber", type: "UInt16", key: "jobNumber", description: "job to select (0 = none)" },
  { name: "Heartbeat", type: "UInt16", key: "heartbeat", description: "changed by the cell while the watchdog is armed" },
  { name: "WatchdogMs", type: "UInt16", key: "watchdogMs", description: "communication watchdog, ms (0 = off)" },
];

/** A variable kept equal to `read()`: written (with a new source timestamp) only when the value changes. */
interface Binding {
  readonly node: UAVariable;
  readonly type: DataType;
  readonly read: (s: RobotStatus, c: MotomanCommands) => Scalar;
  last: Scalar | undefined;
}

export class MotomanOpcuaFace {
  private server: OPCUAServer | undefined;
  private readonly bindings: Binding[] = [];
  private readonly commandValues = new Map<keyof MotomanCommands, DataValue>();
  private unsubscribe: (() => void) | undefined;
  private readonly log: Logger;
  private boundPort = 0;
  private nsIndex = -1;
  private readonly updateFailures = new Set<string>();

  constructor(
    private readonly sim: MotomanSim,
    private readonly opts: MotomanOpcuaFaceOptions = {},
  ) {
    this.log = (opts.log ?? silentLogger()).child({ component: "motoman-opcua" });
  }

  get port(): number {
    return this.boundPort;
  }

  get endpointUrl(): string {
    return `opc.tcp://127.0.0.1:${this.boundPort}${this.opts.resourcePath ?? ""}`;
  }

  /** Index of the simulator's namespace (MOTOMAN_OPCUA_NAMESPACE unless `namespaceUri`) in this server's namespace array. */
  get namespaceIndex(): number {
    return this.nsIndex;
  }

  async start(): Promise<{ port: number; endpointUrl: string }> {
    if (this.server) throw new CellioError("CELLIO_ERR_SIM", "Motoman OPC UA face already started");
    this.boundPort = this.opts.port || (await freePort());
    const pki = this.opts.pkiDir ?? path.join(os.tmpdir(), "cellio-sim-pki");
    const server = new OPCUAServer({
      host: "127.0.0.1",
      hostname: "127.0.0.1",
      port: this.boundPort,
      ...(this.opts.resourcePath ? { resourcePath: this.opts.resourcePath } : {}),
      // Robotics 1.02 requires IA (and DI): load them in dependency order.
      nodeset_filename: [nodesets.standard, nodesets.di, nodesets.ia, nodesets.robotics],
      securityPolicies: [SecurityPolicy.None],
      securityModes: [MessageSecurityMode.None],
      allowAnonymous: true,
      serverCertificateManager: new OPCUACertificateManager({ rootFolder: path.join(pki, "PKI"), automaticallyAcceptUnknownCertificate: true }),
      buildInfo: { productName: "cellio Motoman YRC1000 simulator", manufacturerName: "cellio" },
    });
    this.server = server;
    try {
      await server.initialize();
      this.build(server);
      await server.start();
    } catch (e) {
      this.server = undefined;
      this.unsubscribe?.();
      await server.shutdown(0).catch(() => undefined);
      throw e;
    }
    this.log.warn(
      { endpointUrl: this.endpointUrl },
      "Motoman simulator OPC UA face listening: anonymous access, SecurityPolicy None (a simulator; do not expose it)",
    );
    return { port: this.boundPort, endpointUrl: this.endpointUrl };
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const server = this.server;
    this.server = undefined;
    this.bindings.length = 0;
    if (server) await server.shutdown(0);
  }

  // --- address space ---------------------------------------------------------

  private build(server: OPCUAServer): void {
    const as = server.engine.addressSpace;
    if (!as) throw new CellioError("CELLIO_ERR_SIM", "OPC UA server has no address space after initialize()");
    const rob = as.getNamespaceIndex(ROBOTICS_NAMESPACE);
    const di = as.getNamespaceIndex(DI_NAMESPACE);
    const own = as.registerNamespace(this.opts.namespaceUri ?? MOTOMAN_OPCUA_NAMESPACE);
    this.nsIndex = own.index;
    const deviceSet = as.rootFolder.objects.getFolderElementByName("DeviceSet", di);
    if (!deviceSet) throw new CellioError("CELLIO_ERR_SIM", "DI DeviceSet not found: is the DI nodeset loaded?");
    const type = (name: string) => {
      const t = as.findObjectType(name, rob);
      if (!t) throw new CellioError("CELLIO_ERR_SIM", `Robotics type ${name} not found`);
      return t;
    };
    const child = (parent: UAObject, name: string, ns: number): UAObject => {
      const c = parent.getComponentByName(name, ns) ?? parent.getFolderElementByName(name, ns);
      if (!c) throw new CellioError("CELLIO_ERR_SIM", `${parent.browseName.toString()} has no ${name}`);
      return c as UAObject;
    };
    const variable = (parent: UAObject, name: string, ns: number): UAVariable => {
      const params = child(parent, "ParameterSet", di);
      const v = params.getComponentByName(name, ns) ?? params.getPropertyByName(name, ns);
      if (!v) throw new CellioError("CELLIO_ERR_SIM", `${parent.browseName.toString()}.ParameterSet has no ${name}`);
      return v as UAVariable;
    };
    const property = (parent: UAObject, name: string, ns: number, dataType: DataType, value: Scalar | { text: string }): void => {
      const p = parent.getPropertyByName(name, ns);
      if (!p) throw new CellioError("CELLIO_ERR_SIM", `${parent.browseName.toString()} has no property ${name}`);
      p.setValueFromSource({ dataType, value });
    };

    const system = type("MotionDeviceSystemType").instantiate({
      browseName: { name: this.opts.name ?? "YRC1000", namespaceIndex: own.index },
      nodeId: "s=Robotics.MotionDeviceSystem",
      namespace: own,
      componentOf: deviceSet,
    });

    // The manipulator.
    const device = type("MotionDeviceType").instantiate({
      browseName: { name: "Manipulator", namespaceIndex: own.index },
      nodeId: "s=Robotics.MotionDevice",
      namespace: own,
      componentOf: child(system, "MotionDevices", rob),
      optionals: ["ParameterSet.InControl", "ParameterSet.OnPath"],
    });
    property(device, "Manufacturer", di, DataType.LocalizedText, { text: "YASKAWA (simulated)" });
    property(device, "Model", di, DataType.LocalizedText, { text: "MOTOMAN 6-axis (simulated)" });
    property(device, "ProductCode", di, DataType.String, "SIM-MOTOMAN");
    property(device, "SerialNumber", di, DataType.String, "SIM-0001");
    property(device, "MotionDeviceCategory", rob, DataType.Int32, 1); // ARTICULATED_ROBOT
    this.bind(variable(device, "SpeedOverride", rob), DataType.Double, (s) => s.speedOverride);
    this.bind(variable(device, "InControl", rob), DataType.Boolean, (s) => s.servoOn);
    // OnPath: a job is current (running, or paused where a start resumes it).
    this.bind(variable(device, "OnPath", rob), DataType.Boolean, (s) => s.currentJob !== 0);
    const axes = child(device, "Axes", rob);
    for (let i = 0; i < this.sim.model.axes; i++) {
      const axis = type("AxisType").instantiate({
        browseName: { name: `Axis${i + 1}`, namespaceIndex: own.index },
        nodeId: `s=Robotics.Axis${i + 1}`,
        namespace: own,
        componentOf: axes,
      });
      property(axis, "MotionProfile", rob, DataType.Int32, 1); // ROTARY
      const pos = variable(axis, "ActualPosition", rob);
      pos.getPropertyByName("EngineeringUnits")?.setValueFromSource({ dataType: DataType.ExtensionObject, value: standardUnits.degree });
      this.bind(pos, DataType.Double, (s) => s.jointPositions[i] ?? 0);
    }

    // The controller and its one task.
    const controller = type("ControllerType").instantiate({
      browseName: { name: "Controller", namespaceIndex: own.index },
      nodeId: "s=Robotics.Controller",
      namespace: own,
      componentOf: child(system, "Controllers", rob),
    });
    property(controller, "Manufacturer", di, DataType.LocalizedText, { text: "YASKAWA (simulated)" });
    property(controller, "Model", di, DataType.LocalizedText, { text: "YRC1000 (simulated)" });
    property(controller, "ProductCode", di, DataType.String, "SIM-YRC1000");
    property(controller, "SerialNumber", di, DataType.String, "SIM-0001");
    child(controller, "CurrentUser", rob).getPropertyByName("Level", rob)?.setValueFromSource({ dataType: DataType.String, value: "operator" });
    const task = type("TaskControlType").instantiate({
      browseName: { name: "Task1", namespaceIndex: own.index },
      nodeId: "s=Robotics.TaskControl",
      namespace: own,
      componentOf: child(controller, "TaskControls", rob),
      optionals: ["ParameterSet.ExecutionMode"],
    });
    property(task, "ComponentName", di, DataType.LocalizedText, { text: "master task" });
    const program = (s: RobotStatus): number => s.currentJob || s.jobEcho;
    this.bind(variable(task, "TaskProgramName", rob), DataType.String, (s) => this.sim.jobName(program(s)));
    this.bind(variable(task, "TaskProgramLoaded", rob), DataType.Boolean, (s) => program(s) !== 0);
    this.bind(variable(task, "ExecutionMode", rob), DataType.Int32, (s) => (s.continuousCycle ? EXECUTION_MODE.CONTINUOUS : EXECUTION_MODE.CYCLE));

    // Safety state (informational, as the spec says).
    const safety = type("SafetyStateType").instantiate({
      browseName: { name: "SafetyState", namespaceIndex: own.index },
      nodeId: "s=Robotics.SafetyState",
      namespace: own,
      componentOf: child(system, "SafetyStates", rob),
    });
    this.bind(variable(safety, "OperationalMode", rob), DataType.Int32, operationalMode);
    this.bind(variable(safety, "EmergencyStop", rob), DataType.Boolean, (s) => !s.estopOk);
    this.bind(variable(safety, "ProtectiveStop", rob), DataType.Boolean, (s) => s.hold);

    this.buildMotomanFolder(own, as.rootFolder.objects);
    this.unsubscribe = this.sim.onStatus((s, c) => this.safeUpdate(s, c));
    this.update(this.sim.status, this.sim.commands);
  }

  private buildMotomanFolder(own: Namespace, objects: UAObject): void {
    const name = this.opts.folder ?? "Motoman";
    const folder = own.addFolder(objects, { browseName: name, nodeId: `s=${name}` });
    for (const sig of statusSignals(this.sim.model.axes)) {
      const node = own.addVariable({
        organizedBy: folder,
        browseName: sig.name,
        nodeId: `s=${name}.${sig.name}`,
        description: sig.description,
        dataType: sig.type,
        accessLevel: "CurrentRead",
        userAccessLevel: "CurrentRead",
        minimumSamplingInterval: 0, // exception-based: a change is pushed as it happens
      });
      this.bind(node, DataType[sig.type], sig.read);
    }
    for (const cmd of COMMAND_SIGNALS) {
      const node = own.addVariable({
        organizedBy: folder,
        browseName: cmd.name,
        nodeId: `s=${name}.${cmd.name}`,
        description: cmd.description,
        dataType: cmd.type,
        accessLevel: "CurrentRead | CurrentWrite",
        userAccessLevel: "CurrentRead | CurrentWrite",
        minimumSamplingInterval: 10,
      });
      const dataType = DataType[cmd.type];
      this.commandValues.set(cmd.key, commandDataValue(dataType, this.sim.commands[cmd.key]));
      node.bindVariable(
        {
          timestamped_get: () => this.commandValues.get(cmd.key)!,
          timestamped_set: (dv: DataValue, done: (err: Error | null, status?: StatusCode) => void) => {
            done(null, this.writeCommand(cmd, dataType, dv));
          },
        },
        true,
      );
    }
  }

  private writeCommand(cmd: Command, dataType: DataType, dv: DataValue): StatusCode {
    const v: unknown = dv.value.value;
    if (cmd.type === "Boolean" ? typeof v !== "boolean" : typeof v !== "number") return StatusCodes.BadTypeMismatch;
    try {
      this.sim.setCommands({ [cmd.key]: v });
    } catch (e) {
      this.log.debug({ err: e, command: cmd.name }, "command write refused");
      return StatusCodes.BadOutOfRange;
    }
    this.commandValues.set(cmd.key, commandDataValue(dataType, this.sim.commands[cmd.key]));
    return StatusCodes.Good;
  }

  private bind(node: UAVariable, type: DataType, read: (s: RobotStatus, c: MotomanCommands) => Scalar): void {
    this.bindings.push({ node, type, read, last: undefined });
  }

  /** Runs on the robot's timer: a failure is logged (once per kind), never thrown into the tick. */
  private safeUpdate(s: RobotStatus, c: MotomanCommands): void {
    try {
      this.update(s, c);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (this.updateFailures.has(msg)) return;
      this.updateFailures.add(msg);
      this.log.error({ err: e }, "OPC UA face could not update its variables");
    }
  }

  private update(s: RobotStatus, c: MotomanCommands): void {
    const now = new Date();
    for (const b of this.bindings) {
      const v = b.read(s, c);
      if (v === b.last) continue;
      b.last = v;
      b.node.setValueFromSource(new Variant({ dataType: b.type, value: v }), StatusCodes.Good, now);
    }
    for (const cmd of COMMAND_SIGNALS) {
      const held = this.commandValues.get(cmd.key);
      if (held?.value.value === c[cmd.key]) continue;
      this.commandValues.set(cmd.key, commandDataValue(DataType[cmd.type], c[cmd.key], now));
    }
  }
}

function commandDataValue(dataType: DataType, value: Scalar, at = new Date()): DataValue {
  return new DataValue({ value: new Variant({ dataType, value }), statusCode: StatusCodes.Good, sourceTimestamp: at, serverTimestamp: at });
}

/** A port that was free a moment ago on 127.0.0.1 (node-opcua needs a concrete port). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
