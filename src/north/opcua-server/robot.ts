/**
 * Robots under Objects/DeviceSet with the OPC 40010 Robotics model, so a
 * robotics-aware HMI finds them without configuration:
 *
 *   DeviceSet/<name>                          MotionDeviceSystemType   s=DeviceSet.<name>
 *     MotionDevices/Manipulator               MotionDeviceType         s=DeviceSet.<name>.Manipulator
 *       ParameterSet: SpeedOverride, InControl, OnPath
 *       Axes/Axis<n>/ParameterSet/ActualPosition (deg)                 s=DeviceSet.<name>.Manipulator.Axis<n>
 *     Controllers/Controller                  ControllerType           s=DeviceSet.<name>.Controller
 *       TaskControls/Task1                    TaskControlType          s=DeviceSet.<name>.Controller.Task1
 *         ParameterSet: TaskProgramName, TaskProgramLoaded, ExecutionMode
 *     SafetyStates/SafetyState                SafetyStateType          s=DeviceSet.<name>.SafetyState
 *       ParameterSet: OperationalMode, EmergencyStop, ProtectiveStop
 *
 * Children of an instance get node-opcua's ids (`<parent>-ParameterSet-SpeedOverride`).
 * Every variable is computed from the robot device's points in cellio's
 * process image (robot-map.ts), pushed with the same StatusCode and source
 * timestamp rules as the points, and read-only: commands to the robot go
 * through its output points under Cell/Devices (and the interlocks).
 */
import { DataType, nodesets, standardUnits, type Namespace, type UAObject, type UAVariable } from "node-opcua";
import { CellioError } from "../../infra/errors.js";
import type { Sample } from "../../core/sample.js";
import type { OpcuaRobotConfig } from "./config.js";
import type { PointType } from "./data-types.js";
import { setDataValue } from "./nodes.js";
import type { PointView } from "./ports.js";
import { ROBOT_SIGNALS, axisCount, axisSignal, deriveSample, type RobotDataType, type RobotPart, type RobotSignal } from "./robot-map.js";
import { changed, sampleDataValue } from "./values.js";

/** The nodesets the Robotics model needs, in dependency order (Robotics 1.02 needs IA and DI). */
export const ROBOTICS_NODESETS: readonly string[] = [nodesets.standard, nodesets.di, nodesets.ia, nodesets.robotics];
export const ROBOTICS_NAMESPACE = "http://opcfoundation.org/UA/Robotics/";
export const DI_NAMESPACE = "http://opcfoundation.org/UA/DI/";

const MOTION_DEVICE_CATEGORY_ARTICULATED_ROBOT = 1;
const AXIS_MOTION_PROFILE_ROTARY = 1;

const TYPE: Readonly<Record<RobotDataType, PointType>> = {
  Boolean: { kind: "bool", dataType: DataType.Boolean, range: undefined },
  Int32: { kind: "int", dataType: DataType.Int32, range: undefined },
  Double: { kind: "float", dataType: DataType.Double, range: undefined },
  String: { kind: "string", dataType: DataType.String, range: undefined },
};

interface Binding {
  readonly node: UAVariable;
  readonly signal: RobotSignal;
  readonly type: PointType;
  /** Point indices of the signal's inputs. */
  readonly inputs: readonly number[];
  last: Sample | undefined;
}

export interface RobotNodes {
  readonly name: string;
  readonly system: UAObject;
  readonly manipulator: UAObject;
  readonly controller: UAObject;
  readonly safety: UAObject;
  readonly axes: number;
}

/** Every configured robot's model, and the push of its values. */
export class CellRobots {
  private readonly bindings: Binding[] = [];
  readonly robots: RobotNodes[] = [];

  constructor(ns: Namespace, points: readonly PointView[], robots: readonly OpcuaRobotConfig[]) {
    for (const r of robots) this.robots.push(this.build(ns, points, r));
  }

  /** Push what changed in `image` (from the publish timer, after the points). */
  sync(image: readonly Sample[]): void {
    const now = new Date();
    for (const b of this.bindings) {
      const inputs: Sample[] = [];
      for (const i of b.inputs) {
        const s = image[i];
        if (s !== undefined) inputs.push(s);
      }
      if (inputs.length !== b.inputs.length) continue; // an image without these points (not this cell's)
      const s = deriveSample(b.signal, inputs);
      if (!changed(b.last, s, 0)) continue;
      b.last = s;
      setDataValue(b.node, sampleDataValue(s, b.type, now));
    }
  }

  private build(ns: Namespace, points: readonly PointView[], r: OpcuaRobotConfig): RobotNodes {
    const as = ns.addressSpace;
    const rob = as.getNamespaceIndex(ROBOTICS_NAMESPACE);
    const di = as.getNamespaceIndex(DI_NAMESPACE);
    if (rob < 0 || di < 0) throw new CellioError("CELLIO_ERR_CONFIG", "opcua.robots: the DI and Robotics nodesets are not loaded");
    const fail = (what: string): never => {
      throw new CellioError("CELLIO_ERR_CONFIG", `opcua.robots ${r.device}: ${what}`);
    };
    const deviceSet = (as.rootFolder.objects.getFolderElementByName("DeviceSet", di) as UAObject | null) ?? fail("no DI DeviceSet");
    const byName = new Map(points.filter((p) => p.device === r.device).map((p) => [p.name, p.index]));
    const name = r.name ?? r.device;
    const base = `DeviceSet.${name}`;

    const instance = (typeName: string, browse: string, nodeId: string, parent: UAObject, optionals: string[] = []): UAObject => {
      const type = as.findObjectType(typeName, rob) ?? fail(`Robotics type ${typeName} not found`);
      return type.instantiate({ browseName: { name: browse, namespaceIndex: ns.index }, nodeId: `s=${nodeId}`, namespace: ns, componentOf: parent, optionals });
    };
    const folder = (parent: UAObject, browse: string): UAObject => (parent.getComponentByName(browse, rob) as UAObject | null) ?? fail(`${browse} missing`);
    const property = (node: UAObject, browse: string, nsIndex: number, dataType: DataType, value: unknown): void => {
      const p = node.getPropertyByName(browse, nsIndex) ?? fail(`${node.browseName.toString()} has no ${browse}`);
      p.setValueFromSource({ dataType, value });
    };
    const identify = (node: UAObject, model: string, serial: string): void => {
      property(node, "Manufacturer", di, DataType.LocalizedText, { text: r.manufacturer });
      property(node, "Model", di, DataType.LocalizedText, { text: model });
      property(node, "ProductCode", di, DataType.String, model);
      property(node, "SerialNumber", di, DataType.String, serial);
    };
    const bind = (part: UAObject, signal: RobotSignal): void => {
      const params = (part.getComponentByName("ParameterSet", di) as UAObject | null) ?? fail(`${part.browseName.toString()} has no ParameterSet`);
      const node = (params.getComponentByName(signal.variable, rob) as UAVariable | null) ?? fail(`no ${signal.variable}`);
      const inputs = signal.inputs.map((n) => byName.get(n) ?? fail(`device ${r.device} has no point ${n}`));
      node.setDescription(`cellio: ${signal.rule}, from ${signal.inputs.map((n) => `${r.device}.${n}`).join(", ")}`);
      setDataValue(node, sampleDataValue({ value: null, status: "bad_waiting_for_initial_data", quality: "bad", sourceTs: 0 }, TYPE[signal.dataType], new Date()));
      this.bindings.push({ node, signal, type: TYPE[signal.dataType], inputs, last: undefined });
    };

    const system = instance("MotionDeviceSystemType", name, base, deviceSet);
    system.setDescription(`cellio: robot ${name}, from the points of device ${r.device}`);
    const manipulator = instance("MotionDeviceType", "Manipulator", `${base}.Manipulator`, folder(system, "MotionDevices"), ["ParameterSet.InControl", "ParameterSet.OnPath"]);
    identify(manipulator, r.model, r.serial_number);
    property(manipulator, "MotionDeviceCategory", rob, DataType.Int32, MOTION_DEVICE_CATEGORY_ARTICULATED_ROBOT);
    const controller = instance("ControllerType", "Controller", `${base}.Controller`, folder(system, "Controllers"));
    identify(controller, r.controller_model, r.controller_serial_number);
    const task = instance("TaskControlType", "Task1", `${base}.Controller.Task1`, folder(controller, "TaskControls"), ["ParameterSet.ExecutionMode"]);
    const safety = instance("SafetyStateType", "SafetyState", `${base}.SafetyState`, folder(system, "SafetyStates"));
    const parts: Readonly<Record<Exclude<RobotPart, "axis">, UAObject>> = { manipulator, task, safety };
    for (const s of ROBOT_SIGNALS) if (s.part !== "axis") bind(parts[s.part], s);

    const axes = axisCount(new Set(byName.keys()));
    for (let n = 1; n <= axes; n++) {
      const axis = instance("AxisType", `Axis${n}`, `${base}.Manipulator.Axis${n}`, folder(manipulator, "Axes"));
      property(axis, "MotionProfile", rob, DataType.Int32, AXIS_MOTION_PROFILE_ROTARY);
      bind(axis, axisSignal(n));
      const position = (axis.getComponentByName("ParameterSet", di) as UAObject).getComponentByName("ActualPosition", rob) as UAVariable;
      position.getPropertyByName("EngineeringUnits")?.setValueFromSource({ dataType: DataType.ExtensionObject, value: standardUnits.degree });
    }
    return { name, system, manipulator, controller, safety, axes };
  }
}
