/**
 * The robot under DeviceSet with the OPC 40010 Robotics model, as a plain
 * node-opcua client finds it: Objects/DeviceSet/R1 (MotionDeviceSystemType)
 * with MotionDevices, Controllers and SafetyStates, and the state variables
 * fed from cellio's process image (never from the simulator): a real CellApp
 * scans the Motoman simulator's Modbus window through profile
 * motoman-yrc1000.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  AttributeIds,
  BrowseDirection,
  ClientMonitoredItem,
  ClientSubscription,
  DataType,
  TimestampsToReturn,
  type ClientSession,
  type DataValue,
  type NodeId,
  type ReferenceDescription,
} from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opcuaConfigSchema } from "../../../src/north/opcua-server/config.js";
import { hashPassword } from "../../../src/north/opcua-server/password.js";
import { CellOpcuaServer, cellViewOf } from "../../../src/north/opcua-server/server.js";
import { SOURCE_TS_REFRESH_MS } from "../../../src/north/opcua-server/values.js";
import { MotomanSim } from "../../../simulators/motoman/sim.js";
import { Teardown, startCell, type RunningCell } from "../../integration/helpers.js";
import { StatusCodes, clientPki, connect, memoryLog, readValue, trust, waitUntil, type Connected } from "./helpers.js";

const t = new Teardown();
let sim: MotomanSim;
let cell: RunningCell;
let server: CellOpcuaServer;
let viewer: Connected;
let ns: { cellio: number; di: number; rob: number };

const yaml = (port: number): string => `
version: 1
cell: { id: robots }
cycle: { period_ms: 50, input_budget_ms: 20, output_budget_ms: 20 }
devices:
  robot:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 200
    fail_after: 2
    stale_after_ms: 5000
    profile: motoman-yrc1000
logic:
  robot.watchdog_ms: "0"
`;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-opcua-robot-"));
  t.add(() => rm(dir, { recursive: true, force: true }));
  sim = new MotomanSim({ model: { initial: { mode: "play", remote: true, speedOverride: 80 } } });
  const { port } = await sim.start();
  t.add(() => sim.stop());
  cell = await startCell(yaml(port), t, { start: false });
  const config = opcuaConfigSchema.parse({
    port: 0,
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    state_dir: path.join(dir, "state"),
    users: { hmi: { password_hash: await hashPassword("viewer-pw", { N: 1024 }), role: "viewer" } },
    robots: [{ device: "robot", name: "R1", model: "GP7", serial_number: "S-0001" }],
  });
  server = new CellOpcuaServer({ config, view: cellViewOf(cell.app), commands: cell.app.loop.logic.commands, log: memoryLog().log });
  t.add(() => server.stop());
  await server.prepare(); // DI + IA + Robotics nodesets: seconds
  await cell.app.start();
  await cell.waitCycle((c) => c.mode === "running", 10_000, "the first complete good scan");
  const started = await server.start();
  const pki = await clientPki(path.join(dir, "client-pki"), "cellio-robot-test");
  await trust(server, pki);
  viewer = await connect(`opc.tcp://127.0.0.1:${started.port}`, { pki, user: "hmi", password: "viewer-pw" });
  t.add(() => viewer.close());
  const arr = await viewer.session.readNamespaceArray();
  ns = { cellio: arr.indexOf(started.namespaceUri), di: arr.indexOf("http://opcfoundation.org/UA/DI/"), rob: arr.indexOf("http://opcfoundation.org/UA/Robotics/") };
}, 90_000);

afterAll(() => t.run(), 20_000);

const S = (): ClientSession => viewer.session;

/** The child of `from` with browse name `nsIndex:name`, by a forward browse (as a generic client walks it). */
async function child(from: NodeId | string, nsIndex: number, name: string): Promise<ReferenceDescription> {
  const r = await S().browse({ nodeId: from, browseDirection: BrowseDirection.Forward, resultMask: 63 });
  const ref = r.references?.find((x) => x.browseName.name === name && x.browseName.namespaceIndex === nsIndex);
  if (ref === undefined) throw new Error(`${from.toString()} has no ${nsIndex}:${name}: ${(r.references ?? []).map((x) => x.browseName.toString()).join(", ")}`);
  return ref;
}

/** Walk `steps` ([nsKey, name] pairs) from Objects. */
async function walk(...steps: Array<[keyof typeof ns, string]>): Promise<ReferenceDescription> {
  let at: NodeId | string = "i=85";
  let ref: ReferenceDescription | undefined;
  for (const [k, name] of steps) {
    ref = await child(at, ns[k], name);
    at = ref.nodeId;
  }
  return ref!;
}

async function typeName(ref: ReferenceDescription): Promise<string> {
  const dv = await S().read({ nodeId: ref.typeDefinition, attributeId: AttributeIds.BrowseName });
  return (dv.value.value as { name: string }).name;
}

const system = (): Promise<ReferenceDescription> => walk(["di", "DeviceSet"], ["cellio", "R1"]);
const param = async (part: Array<[keyof typeof ns, string]>, variable: string): Promise<string> =>
  (await walk(["di", "DeviceSet"], ["cellio", "R1"], ...part, ["di", "ParameterSet"], ["rob", variable])).nodeId.toString();
const MANIPULATOR: Array<[keyof typeof ns, string]> = [["rob", "MotionDevices"], ["cellio", "Manipulator"]];
const SAFETY: Array<[keyof typeof ns, string]> = [["rob", "SafetyStates"], ["cellio", "SafetyState"]];
const TASK: Array<[keyof typeof ns, string]> = [["rob", "Controllers"], ["cellio", "Controller"], ["rob", "TaskControls"], ["cellio", "Task1"]];

describe("the Robotics model under DeviceSet", () => {
  it("DeviceSet/R1 is a MotionDeviceSystem with MotionDevices, Controllers and SafetyStates", async () => {
    const r1 = await system();
    expect(await typeName(r1)).toBe("MotionDeviceSystemType");
    for (const f of ["MotionDevices", "Controllers", "SafetyStates"]) await child(r1.nodeId, ns.rob, f);
    expect(await typeName(await walk(["di", "DeviceSet"], ["cellio", "R1"], ...MANIPULATOR))).toBe("MotionDeviceType");
    expect(await typeName(await walk(["di", "DeviceSet"], ["cellio", "R1"], ["rob", "Controllers"], ["cellio", "Controller"]))).toBe("ControllerType");
    expect(await typeName(await walk(["di", "DeviceSet"], ["cellio", "R1"], ...SAFETY))).toBe("SafetyStateType");
    expect(await typeName(await walk(["di", "DeviceSet"], ["cellio", "R1"], ...TASK))).toBe("TaskControlType");
    const axesFolder = (await walk(["di", "DeviceSet"], ["cellio", "R1"], ...MANIPULATOR, ["rob", "Axes"])).nodeId;
    const axes = await S().browse({ nodeId: axesFolder, browseDirection: BrowseDirection.Forward, resultMask: 63 });
    expect((axes.references ?? []).map((x) => x.browseName.name).filter((n) => n?.startsWith("Axis")).sort()).toEqual(["Axis1", "Axis2", "Axis3", "Axis4", "Axis5", "Axis6"]);
    expect(r1.nodeId.toString()).toBe(`ns=${ns.cellio};s=DeviceSet.R1`);
  });

  it("identifies the manipulator from the config", async () => {
    const m = (await walk(["di", "DeviceSet"], ["cellio", "R1"], ...MANIPULATOR)).nodeId;
    const prop = async (name: string): Promise<unknown> => (await readValue(S(), (await child(m, ns.di, name)).nodeId.toString())).value.value;
    expect((await prop("Manufacturer")) as { text: string }).toMatchObject({ text: "YASKAWA" });
    expect((await prop("Model")) as { text: string }).toMatchObject({ text: "GP7" });
    expect(await prop("SerialNumber")).toBe("S-0001");
    expect(await readValue(S(), (await child(m, ns.rob, "MotionDeviceCategory")).nodeId.toString()).then((d): unknown => d.value.value)).toBe(1);
  });

  it("state variables from the process image: mode, e-stop, protective stop, servo, override, task, joints", async () => {
    await waitUntil(async () => (await readValue(S(), await param(SAFETY, "OperationalMode"))).statusCode.isGood(), 5000, "OperationalMode Good");
    const read = async (part: Array<[keyof typeof ns, string]>, v: string): Promise<DataValue> =>
      S().read({ nodeId: await param(part, v), attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
    const mode = await read(SAFETY, "OperationalMode");
    expect(mode.value.dataType).toBe(DataType.Int32);
    expect(mode.value.value).toBe(4); // play + remote: AUTOMATIC_EXTERNAL
    const latest = (p: string) => cell.latest(`robot.${p}`)!;
    // The newest read of its three inputs (refreshed about once a second while they stay unchanged).
    const newest = Math.max(latest("teach").sourceTs, latest("play").sourceTs, latest("remote").sourceTs);
    const ts = mode.sourceTimestamp!.getTime();
    expect(ts).toBeLessThanOrEqual(newest);
    expect(newest - ts).toBeLessThan(SOURCE_TS_REFRESH_MS + 1000);
    expect((await read(SAFETY, "EmergencyStop")).value.value).toBe(false);
    expect((await read(SAFETY, "ProtectiveStop")).value.value).toBe(latest("hold").value);
    expect((await read(MANIPULATOR, "InControl")).value.value).toBe(latest("servo_on").value);
    expect((await read(MANIPULATOR, "SpeedOverride")).value.value).toBeCloseTo(80, 6);
    expect((await read(TASK, "TaskProgramLoaded")).value.value).toBe(false);
    expect((await read(TASK, "ExecutionMode")).value.value).toBe(latest("continuous_cycle").value === true ? 1 : 0);
    const a2 = await read([...MANIPULATOR, ["rob", "Axes"], ["cellio", "Axis2"]], "ActualPosition");
    expect(a2.value.value).toBeCloseTo(latest("joint_2").value as number, 6);
    expect(a2.statusCode.value).toBe(StatusCodes.Good.value);
  });

  it("a subscription sees the e-stop and the mode change", async () => {
    const sub = ClientSubscription.create(S(), { requestedPublishingInterval: 50, publishingEnabled: true, requestedMaxKeepAliveCount: 20, requestedLifetimeCount: 100 });
    const seen: Array<[string, unknown]> = [];
    for (const [part, v] of [[SAFETY, "EmergencyStop"], [SAFETY, "OperationalMode"]] as const) {
      const item = ClientMonitoredItem.create(sub, { nodeId: await param([...part], v), attributeId: AttributeIds.Value }, { samplingInterval: 0, queueSize: 10, discardOldest: true });
      item.on("changed", (dv: DataValue) => seen.push([v, dv.value.value]));
    }
    await waitUntil(() => seen.length >= 2, 3000, "the initial values");
    sim.pressEstop("pendant");
    await waitUntil(() => seen.some(([k, x]) => k === "EmergencyStop" && x === true), 5000, "EmergencyStop true");
    sim.setMode("teach");
    await waitUntil(() => seen.some(([k, x]) => k === "OperationalMode" && x === 1), 5000, "OperationalMode MANUAL_REDUCED_SPEED");
    sim.releaseEstop("pendant");
    sim.setMode("play");
    await waitUntil(() => seen.some(([k, x]) => k === "EmergencyStop" && x === false) && seen.at(-1)?.[1] !== 1, 5000, "e-stop released, play again");
    await sub.terminate();
  });

  it("a lost robot: Bad_NoCommunication (or Bad_Timeout) with the source timestamp frozen", async () => {
    const id = await param(SAFETY, "EmergencyStop");
    sim.dropComms("silent");
    try {
      let bad: DataValue | undefined;
      await waitUntil(async () => {
        bad = await S().read({ nodeId: id, attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
        return bad.statusCode.isBad();
      }, 8000, "EmergencyStop to turn bad");
      expect([StatusCodes.BadNoCommunication.value, StatusCodes.BadTimeout.value]).toContain(bad!.statusCode.value);
      expect(bad!.value.dataType).toBe(DataType.Null);
      expect(bad!.sourceTimestamp!.getTime()).toBe(Math.floor(cell.latest("robot.estop_ok")!.sourceTs));
    } finally {
      sim.restoreComms();
    }
    await waitUntil(async () => (await readValue(S(), id)).statusCode.isGood(), 8000, "EmergencyStop Good again");
  });

  it("is read-only: the robot is commanded through its output points and the interlocks", async () => {
    const id = await param(SAFETY, "OperationalMode");
    const al = await S().read({ nodeId: id, attributeId: AttributeIds.UserAccessLevel });
    expect((al.value.value as number) & 2).toBe(0);
  });
});
