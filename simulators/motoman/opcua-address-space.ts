/**
 * The address space of the Motoman simulator's OPC UA face: builds, in an
 * initialized node-opcua address space, the OPC 40010 Robotics model (a
 * MotionDeviceSystem in DI's DeviceSet with the manipulator and its axes, the
 * controller and its one task, the safety state) and the plain signal folder
 * made from the tables in `opcua-signals.ts`. It only creates nodes and sets
 * their fixed properties: every variable that follows the robot is handed to
 * an `AddressSpaceSink` (`bind`: kept equal to a read of the status;
 * `command`: a writable command variable), which `opcua-face.ts` implements.
 * Node ids and mapping: ./README.md.
 */
import { DataType, standardUnits, type AddressSpace, type Namespace, type UAObject, type UAVariable } from "node-opcua";
import type { MotomanCommands } from "../../src/profiles/motoman-yrc1000.js";
import { CellioError } from "../../src/infra/errors.js";
import type { RobotStatus } from "./model.js";
import {
  COMMAND_SIGNALS,
  DI_NAMESPACE,
  EXECUTION_MODE,
  operationalMode,
  ROBOTICS_NAMESPACE,
  statusSignals,
  type Command,
  type Scalar,
} from "./opcua-signals.js";

/** How a bound variable's value is read from the robot. */
export type Read = (s: RobotStatus, c: MotomanCommands) => Scalar;

/** Where the builders hand the variables that follow the robot. */
export interface AddressSpaceSink {
  /** Keep `node` equal to `read()` of the robot's status. */
  bind(node: UAVariable, type: DataType, read: Read): void;
  /** Serve command `cmd` (reads and writes) from `node`. */
  command(node: UAVariable, cmd: Command): void;
}

/** What the Robotics model needs of the robot. */
export interface RoboticsSource {
  readonly axes: number;
  jobName(n: number): string;
}

/** The OPC 40010 MotionDeviceSystem `systemName` (NodeIds `s=Robotics.*` in `own`), a component of DI's DeviceSet. */
export function buildRoboticsModel(as: AddressSpace, own: Namespace, robot: RoboticsSource, systemName: string, sink: AddressSpaceSink): void {
  const rob = as.getNamespaceIndex(ROBOTICS_NAMESPACE);
  const di = as.getNamespaceIndex(DI_NAMESPACE);
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
    browseName: { name: systemName, namespaceIndex: own.index },
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
  sink.bind(variable(device, "SpeedOverride", rob), DataType.Double, (s) => s.speedOverride);
  sink.bind(variable(device, "InControl", rob), DataType.Boolean, (s) => s.servoOn);
  // OnPath: a job is current (running, or paused where a start resumes it).
  sink.bind(variable(device, "OnPath", rob), DataType.Boolean, (s) => s.currentJob !== 0);
  const axes = child(device, "Axes", rob);
  for (let i = 0; i < robot.axes; i++) {
    const axis = type("AxisType").instantiate({
      browseName: { name: `Axis${i + 1}`, namespaceIndex: own.index },
      nodeId: `s=Robotics.Axis${i + 1}`,
      namespace: own,
      componentOf: axes,
    });
    property(axis, "MotionProfile", rob, DataType.Int32, 1); // ROTARY
    const pos = variable(axis, "ActualPosition", rob);
    pos.getPropertyByName("EngineeringUnits")?.setValueFromSource({ dataType: DataType.ExtensionObject, value: standardUnits.degree });
    sink.bind(pos, DataType.Double, (s) => s.jointPositions[i] ?? 0);
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
  sink.bind(variable(task, "TaskProgramName", rob), DataType.String, (s) => robot.jobName(program(s)));
  sink.bind(variable(task, "TaskProgramLoaded", rob), DataType.Boolean, (s) => program(s) !== 0);
  sink.bind(variable(task, "ExecutionMode", rob), DataType.Int32, (s) => (s.continuousCycle ? EXECUTION_MODE.CONTINUOUS : EXECUTION_MODE.CYCLE));

  // Safety state (informational, as the spec says).
  const safety = type("SafetyStateType").instantiate({
    browseName: { name: "SafetyState", namespaceIndex: own.index },
    nodeId: "s=Robotics.SafetyState",
    namespace: own,
    componentOf: child(system, "SafetyStates", rob),
  });
  sink.bind(variable(safety, "OperationalMode", rob), DataType.Int32, operationalMode);
  sink.bind(variable(safety, "EmergencyStop", rob), DataType.Boolean, (s) => !s.estopOk);
  sink.bind(variable(safety, "ProtectiveStop", rob), DataType.Boolean, (s) => s.hold);
}

/** The folder `name` under Objects: one variable `s=<name>.<Signal>` per status signal (read-only) and per command (read-write). */
export function buildMotomanFolder(own: Namespace, objects: UAObject, axes: number, name: string, sink: AddressSpaceSink): void {
  const folder = own.addFolder(objects, { browseName: name, nodeId: `s=${name}` });
  for (const sig of statusSignals(axes)) {
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
    sink.bind(node, DataType[sig.type], sig.read);
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
    sink.command(node, cmd);
  }
}
