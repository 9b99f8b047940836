/**
 * The Motoman simulator's OPC UA face, seen by a plain node-opcua client
 * (SecurityMode None, anonymous) on 127.0.0.1: the OPC 40010 model under
 * DeviceSet, the Motoman folder, writes of command variables, and one robot
 * behind both faces (the Modbus face is read over Modbus TCP in the same test).
 *
 * One server for the whole file (node-opcua takes seconds to start), started
 * the way `cellio sim` starts it: the simulator runner on a cell config with
 * a `profile: motoman-yrc1000` device and CELLIO_SIM_OPCUA_PORT set.
 */
import {
  AttributeIds,
  BrowseDirection,
  DataType,
  MessageSecurityMode,
  NodeClass,
  OPCUAClient,
  SecurityPolicy,
  makeBrowsePath,
  type ClientSession,
  type DataValue,
  type NodeIdLike,
} from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";
import { silentLogger } from "../../../src/infra/logger.js";
import { decodeStatusRegisters } from "../../../src/profiles/motoman-yrc1000-codec.js";
import { MOTOMAN_YRC1000_MAP, MOTOMAN_WINDOW_LENGTH } from "../../../src/profiles/motoman-yrc1000-map.js";
import type { MotomanOpcuaFace } from "../../../simulators/motoman/opcua-face.js";
import { DI_NAMESPACE, MOTOMAN_OPCUA_NAMESPACE, ROBOTICS_NAMESPACE } from "../../../simulators/motoman/opcua-signals.js";
import type { MotomanSim } from "../../../simulators/motoman/sim.js";
import { startSimulators, type SimulatorSet } from "../../../simulators/runner.js";
import { closeClient, tcpClient, type ModbusClient } from "../modbus/client.js";

const BASE = 100; // not 0, so an offset mistake shows
const AXES = 7; // a 7-axis arm: profile_options.axes must reach the model and the face
const UNIT = 2;
let sims: SimulatorSet;
let sim: MotomanSim;
let face: MotomanOpcuaFace;
let client: OPCUAClient;
let session: ClientSession;
let modbus: ModbusClient;
let own: number; // namespace index of the simulator's nodes
let rob: number;
let di: number;

beforeAll(async () => {
  const { model } = loadConfigText(`
version: 1
cell: { id: opcua-face-test }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  robot:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: 15020
    unit_id: ${UNIT}
    profile: motoman-yrc1000
    profile_options: { base: ${BASE}, axes: ${AXES} }
`);
  const before = process.env.CELLIO_SIM_OPCUA_PORT;
  process.env.CELLIO_SIM_OPCUA_PORT = "0"; // 0: a free port
  try {
    sims = await startSimulators(model, { portOverride: () => 0, log: silentLogger() });
  } finally {
    if (before === undefined) delete process.env.CELLIO_SIM_OPCUA_PORT;
    else process.env.CELLIO_SIM_OPCUA_PORT = before;
  }
  sim = sims.robots.get("robot")!;
  face = sims.robotFaces.get("robot")!;
  expect(face, "the runner started an OPC UA face").toBeDefined();
  client = OPCUAClient.create({
    applicationName: "cellio-test",
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 1, initialDelay: 100, maxDelay: 200 },
  });
  await client.connect(face.endpointUrl);
  session = await client.createSession();
  const nsArray = await session.readNamespaceArray();
  own = nsArray.indexOf(MOTOMAN_OPCUA_NAMESPACE);
  rob = nsArray.indexOf(ROBOTICS_NAMESPACE);
  di = nsArray.indexOf(DI_NAMESPACE);
  modbus = await tcpClient(sim.port, UNIT);
}, 60_000);

afterAll(async () => {
  if (modbus) await closeClient(modbus);
  await session?.close();
  await client?.disconnect();
  await sims?.stop();
}, 30_000);

/** BrowseResultMask: every field of a ReferenceDescription. */
const ALL_FIELDS = 0x3f;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function read(nodeId: NodeIdLike): Promise<DataValue> {
  const dv = await session.read({ nodeId, attributeId: AttributeIds.Value }); // timestamps: Both
  expect(dv.statusCode.name, String(nodeId)).toBe("Good");
  return dv;
}

async function value(nodeId: NodeIdLike): Promise<unknown> {
  return (await read(nodeId)).value.value;
}

const motoman = (name: string): string => `ns=${own};s=Motoman.${name}`;

/** The node id at `path` ("/4:MotionDevices/..." relative to `from`). */
async function resolve(from: NodeIdLike, path: string): Promise<string> {
  const r = await session.translateBrowsePath(makeBrowsePath(from, path));
  expect(r.statusCode.name, path).toBe("Good");
  return r.targets![0]!.targetId.toString();
}

async function waitValue(nodeId: NodeIdLike, expected: unknown, ms = 3000): Promise<void> {
  const t0 = performance.now();
  let last: unknown;
  while (performance.now() - t0 < ms) {
    last = await value(nodeId);
    if (last === expected) return;
    await sleep(10);
  }
  throw new Error(`${String(nodeId)} stayed ${String(last)}, expected ${String(expected)} within ${ms} ms`);
}

async function write(nodeId: NodeIdLike, dataType: DataType, v: boolean | number): Promise<string> {
  const sc = await session.write({ nodeId, attributeId: AttributeIds.Value, value: { value: { dataType, value: v } } });
  return sc.name;
}

describe("OPC 40010 model", () => {
  let system: string;

  beforeAll(async () => {
    const deviceSet = `ns=${di};i=5001`;
    const refs = await session.browse({
      nodeId: deviceSet,
      browseDirection: BrowseDirection.Forward,
      referenceTypeId: "HierarchicalReferences",
      includeSubtypes: true,
      nodeClassMask: NodeClass.Object,
      resultMask: ALL_FIELDS,
    });
    const mds = refs.references?.find((r) => r.typeDefinition.toString() === `ns=${rob};i=1002`); // MotionDeviceSystemType
    expect(mds, "a MotionDeviceSystem in DeviceSet").toBeDefined();
    expect(mds!.browseName.toString()).toBe(`${own}:robot`); // the device's name
    system = mds!.nodeId.toString();
  });

  it("has one motion device with axes, a controller with a task, and a safety state", async () => {
    for (const folder of ["MotionDevices", "Controllers", "SafetyStates"]) {
      const r = await session.browse({ nodeId: await resolve(system, `/${rob}:${folder}`), referenceTypeId: "HasComponent", nodeClassMask: NodeClass.Object, resultMask: ALL_FIELDS });
      expect(r.references?.length, folder).toBe(1);
    }
    const axes = await session.browse({ nodeId: await resolve(system, `/${rob}:MotionDevices/${own}:Manipulator/${rob}:Axes`), nodeClassMask: NodeClass.Object, resultMask: ALL_FIELDS });
    expect(axes.references?.map((r) => r.browseName.name).sort()).toEqual(["Axis1", "Axis2", "Axis3", "Axis4", "Axis5", "Axis6", "Axis7"]);
  });

  it("maps mode and remote to OperationalMode: 4 in play + remote, 3 without remote, 1 in teach", async () => {
    const mode = await resolve(system, `/${rob}:SafetyStates/${own}:SafetyState/${di}:ParameterSet/${rob}:OperationalMode`);
    expect(await value(mode)).toBe(4); // AUTOMATIC_EXTERNAL
    sim.setRemote(false);
    await waitValue(mode, 3); // AUTOMATIC
    sim.setMode("teach");
    await waitValue(mode, 1); // MANUAL_REDUCED_SPEED
    sim.setMode("play");
    sim.setRemote(true);
    await waitValue(mode, 4);
  });

  it("shows EmergencyStop (pressed = true) and ProtectiveStop (hold)", async () => {
    const params = `/${rob}:SafetyStates/${own}:SafetyState/${di}:ParameterSet`;
    const estop = await resolve(system, `${params}/${rob}:EmergencyStop`);
    const pstop = await resolve(system, `${params}/${rob}:ProtectiveStop`);
    expect(await value(estop)).toBe(false);
    sim.pressEstop("pendant");
    await waitValue(estop, true);
    expect(await value(motoman("EstopPendantOk"))).toBe(false);
    sim.releaseEstop("pendant");
    await waitValue(estop, false);
    sim.setCommands({ extHold: true });
    await waitValue(pstop, true);
    sim.setCommands({ extHold: false });
    await waitValue(pstop, false);
  });

  it("shows SpeedOverride, ActualPosition of axis 1 (in degrees) and the task", async () => {
    const device = `/${rob}:MotionDevices/${own}:Manipulator`;
    const speed = await resolve(system, `${device}/${di}:ParameterSet/${rob}:SpeedOverride`);
    expect(await value(speed)).toBe(100);
    sim.setSpeedOverride(55.5);
    await waitValue(speed, 55.5);
    sim.setSpeedOverride(100);
    await waitValue(speed, 100);

    const pos = await resolve(system, `${device}/${rob}:Axes/${own}:Axis1/${di}:ParameterSet/${rob}:ActualPosition`);
    const dv = await read(pos);
    expect(dv.value.dataType).toBe(DataType.Double);
    expect(dv.value.value).toBe(sim.status.jointPositions[0]);
    expect(dv.sourceTimestamp).toBeInstanceOf(Date);
    const eu = await value(await resolve(pos, "/EngineeringUnits"));
    expect((eu as { displayName: { text: string } }).displayName.text).toBe("°");

    const task = `/${rob}:Controllers/${own}:Controller/${rob}:TaskControls/${own}:Task1/${di}:ParameterSet`;
    expect(await value(await resolve(system, `${task}/${rob}:TaskProgramName`))).toBe("");
    expect(await value(await resolve(system, `${task}/${rob}:TaskProgramLoaded`))).toBe(false);
    expect(await value(await resolve(system, `${task}/${rob}:ExecutionMode`))).toBe(0); // CYCLE
  });
});

describe("Motoman folder", () => {
  it("holds a variable for every signal of the register map", async () => {
    const r = await session.browse({ nodeId: `ns=${own};s=Motoman`, nodeClassMask: NodeClass.Variable, resultMask: ALL_FIELDS });
    const names = new Set(r.references?.map((x) => x.browseName.name));
    const pascal = (n: string): string => n.replace(/(^|_)([a-z0-9])/g, (_m, _u, c: string) => c.toUpperCase());
    const expected = MOTOMAN_YRC1000_MAP.filter((f) => f.name !== "joint_8").map((f) => pascal(f.name));
    expect(expected).toContain("ExtServoOn");
    expect(expected).toContain("Joint7");
    for (const n of expected) expect(names, n).toContain(n);
    expect(names).not.toContain("Joint8"); // seven axes
  });

  it("reads status with source timestamps that only move when the value changes", async () => {
    expect(await value(motoman("Remote"))).toBe(true);
    expect(await value(motoman("Play"))).toBe(true);
    expect(await value(motoman("EstopOk"))).toBe(true);
    expect(await value(motoman("Mode"))).toBe("play");
    const a = await read(motoman("Remote"));
    await sleep(50); // ten ticks
    const b = await read(motoman("Remote"));
    expect(b.sourceTimestamp!.getTime()).toBe(a.sourceTimestamp!.getTime());
    sim.setRemote(false);
    await waitValue(motoman("Remote"), false);
    const c = await read(motoman("Remote"));
    expect(c.sourceTimestamp!.getTime()).toBeGreaterThan(a.sourceTimestamp!.getTime());
    sim.setRemote(true);
    await waitValue(motoman("Remote"), true);
  });

  it("refuses writes to status variables and values of the wrong type", async () => {
    expect(await write(motoman("ServoOn"), DataType.Boolean, true)).toMatch(/^Bad/);
    expect(await write(motoman("JobNumber"), DataType.Boolean, true)).toMatch(/^Bad/);
    expect(sim.commands.jobNumber).toBe(0);
  });

  it("Motoman.ExtServoOn = true turns the servo on, seen on both faces", async () => {
    expect(await value(motoman("ServoOn"))).toBe(false);
    expect(await write(motoman("ExtHold"), DataType.Boolean, false)).toBe("Good");
    expect(await write(motoman("ExtServoOn"), DataType.Boolean, true)).toBe("Good");
    await waitValue(motoman("ServoOn"), true);
    expect(await value(motoman("ExtServoOn"))).toBe(true);
    const inControl = await resolve(`ns=${own};s=Robotics.MotionDevice`, `/${di}:ParameterSet/${rob}:InControl`);
    expect(await value(inControl)).toBe(true);

    // The Modbus face: the command register carries the write, the status block the servo.
    const cmd = await modbus.readHoldingRegisters(BASE, 1);
    expect(cmd.data[0]! & 1).toBe(1);
    const words = (await modbus.readHoldingRegisters(BASE, MOTOMAN_WINDOW_LENGTH)).data;
    expect(decodeStatusRegisters(words, AXES).servoOn).toBe(true);

    // And the other way: a Modbus write shows up in the OPC UA command variable.
    await modbus.writeRegister(BASE, 0); // all command bits low
    await waitValue(motoman("ExtServoOn"), false);
  });

  it("drives the whole remote-start handshake over OPC UA", async () => {
    const task = `ns=${own};s=Robotics.TaskControl-ParameterSet-TaskProgramName`;
    const axis1 = `ns=${own};s=Robotics.Axis1-ParameterSet-ActualPosition`;
    expect(await write(motoman("ExtHold"), DataType.Boolean, false)).toBe("Good");
    expect(await write(motoman("JobNumber"), DataType.UInt16, 1)).toBe("Good");
    expect(await write(motoman("JobStrobe"), DataType.Boolean, true)).toBe("Good");
    await waitValue(motoman("JobReceived"), true);
    expect(await value(motoman("JobEcho"))).toBe(1);
    expect(await value(task)).toBe("PICK_A");
    expect(await write(motoman("JobStrobe"), DataType.Boolean, false)).toBe("Good");
    await waitValue(motoman("JobReceived"), false);
    const before = (await value(axis1)) as number;
    expect(await write(motoman("ExtStart"), DataType.Boolean, true)).toBe("Good");
    await waitValue(motoman("Operating"), true);
    expect(await write(motoman("ExtStart"), DataType.Boolean, false)).toBe("Good");
    expect(await value(`ns=${own};s=Robotics.MotionDevice-ParameterSet-OnPath`)).toBe(true);
    await sleep(300);
    expect(await value(axis1)).not.toBe(before);
    expect(await value(motoman("CurrentJob"))).toBe(1);
    expect(await value(motoman("JobPhaseName"))).toBe("approach");
    // Hold it and check the refusal text for a start under hold.
    expect(await write(motoman("ExtHold"), DataType.Boolean, true)).toBe("Good");
    await waitValue(motoman("Operating"), false);
    expect(await write(motoman("ExtStart"), DataType.Boolean, true)).toBe("Good");
    await waitValue(motoman("ErrorCode"), 0x2040);
    expect(await value(motoman("ErrorText"))).toBe("hold by external");
  });
});

