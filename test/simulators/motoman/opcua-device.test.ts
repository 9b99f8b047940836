/**
 * The simulator runner (what `cellio sim` runs) on a config whose robot is an
 * `opcua` device with `profile: motoman-yrc1000`: a robot without Modbus and
 * its OPC UA face on the endpoint the config names (port and path), with the
 * profile_options' namespace, folder and axes, so that every address the
 * profile expands to is a node of the face. A plain node-opcua client
 * (SecurityMode None, anonymous) reads and writes them; the robot HTTP
 * control interface acts on the same robot and refuses Modbus comm faults.
 * What the face cannot serve (a secured session, two robots on one port) is
 * refused at start with the device named.
 */
import { AttributeIds, DataType, MessageSecurityMode, OPCUAClient, SecurityPolicy, type ClientSession, type DataValue } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";
import { silentLogger } from "../../../src/infra/logger.js";
import { motomanOpcuaPoints } from "../../../src/profiles/motoman-yrc1000-opcua.js";
import { freePort } from "../../../simulators/motoman/free-port.js";
import { startSimulators, type SimulatorSet } from "../../../simulators/runner.js";

const NS = "urn:test:arm";
const FOLDER = "Arm";
const AXES = 7;
let port: number;
let endpoint: string;
let sims: SimulatorSet;
let client: OPCUAClient;
let session: ClientSession;
let ns: number;

const cellYaml = (devices: string): string => `
version: 1
cell: { id: opcua-robot-sim }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
${devices}`;

const robotYaml = (name: string, url: string, security = "{ mode: None }"): string => `
  ${name}:
    protocol: opcua
    endpoint: "${url}"
    security: ${security}
    profile: motoman-yrc1000
    profile_options: { namespace_uri: "${NS}", folder: ${FOLDER}, axes: ${AXES} }
`;

beforeAll(async () => {
  port = await freePort();
  endpoint = `opc.tcp://127.0.0.1:${port}/robot`;
  const { model } = loadConfigText(cellYaml(robotYaml("arm", endpoint)));
  sims = await startSimulators(model, { robotControlPort: 0, log: silentLogger() });
  client = OPCUAClient.create({
    applicationName: "cellio-test",
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 1, initialDelay: 100, maxDelay: 200 },
  });
  await client.connect(endpoint); // the config's endpoint, path included
  session = await client.createSession();
  ns = (await session.readNamespaceArray()).indexOf(NS);
}, 60_000);

afterAll(async () => {
  await session?.close();
  await client?.disconnect();
  await sims?.stop();
}, 30_000);

/** A profile address (nsu=<uri>;s=…) with the namespace index of this server. */
const local = (address: string): string => address.replace(`nsu=${NS};`, `ns=${ns};`);

async function read(nodeId: string): Promise<DataValue> {
  return session.read({ nodeId, attributeId: AttributeIds.Value });
}

async function waitValue(nodeId: string, expected: unknown, ms = 3000): Promise<void> {
  const t0 = performance.now();
  let last: unknown;
  while (performance.now() - t0 < ms) {
    last = (await read(nodeId)).value.value;
    if (last === expected) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${nodeId} stayed ${String(last)}, expected ${String(expected)} within ${ms} ms`);
}

describe("cellio sim: a Motoman robot reached over OPC UA only", () => {
  it("starts the robot without a Modbus server, and its OPC UA face on the config's endpoint", () => {
    const robot = sims.robots.get("arm");
    expect(robot?.servesModbus).toBe(false);
    expect(robot?.model.axes).toBe(AXES);
    expect(sims.servers).toEqual([]);
    expect(sims.devices.size).toBe(0);
    expect(sims.robotFaces.get("arm")?.endpointUrl).toBe(endpoint);
    expect(ns).toBeGreaterThan(0);
  });

  it("serves every address the profile expands to (namespace, folder, axes from profile_options)", async () => {
    const points = motomanOpcuaPoints({ namespaceUri: NS, folder: FOLDER, axes: AXES });
    expect(points.some((p) => p.name === `joint_${AXES}`)).toBe(true);
    const values = await session.read(points.map((p) => ({ nodeId: local(p.address), attributeId: AttributeIds.Value })));
    const bad = points.flatMap((p, k) => (values[k]!.statusCode.name === "Good" ? [] : [`${p.name} (${p.address}): ${values[k]!.statusCode.name}`]));
    expect(bad).toEqual([]);
    const byName = new Map(points.map((p, k) => [p.name, values[k]!.value.value as unknown]));
    expect(byName.get("play")).toBe(true); // the defaults: play, remote, no e-stop
    expect(byName.get("remote")).toBe(true);
    expect(byName.get("estop_ok")).toBe(true);
  });

  it("takes a command written over OPC UA into the robot, and shows an operator action from the control interface", async () => {
    const robot = sims.robots.get("arm")!;
    const hold = points("ext_hold");
    const sc = await session.write({ nodeId: local(hold), attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Boolean, value: false } } });
    expect(sc.name).toBe("Good");
    expect(robot.commands.extHold).toBe(false);

    const url = `http://127.0.0.1:${sims.robotControl!.port}`;
    const pressed = await fetch(`${url}/robot`, { method: "POST", body: JSON.stringify({ action: "estop", pressed: true }) });
    expect(pressed.status).toBe(200);
    await waitValue(local(points("estop_ok")), false);
    await fetch(`${url}/robot`, { method: "POST", body: JSON.stringify({ action: "estop", pressed: false }) });
    await waitValue(local(points("estop_ok")), true);
  });

  it("has no Modbus link to fault: the control interface says so and shows faults null", async () => {
    const url = `http://127.0.0.1:${sims.robotControl!.port}`;
    const r = await fetch(`${url}/robot`, { method: "POST", body: JSON.stringify({ robot: "arm", action: "comms", drop: "silent" }) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toMatch(/OPC UA only/);
    const state = (await (await fetch(`${url}/robots`)).json()) as { robots: Record<string, { comms: string; faults: unknown }> };
    expect(state.robots.arm).toMatchObject({ comms: "ok", faults: null });
    expect(() => sims.robots.get("arm")!.dropComms("refuse")).toThrow(/no Modbus server/);
    expect(sims.robots.get("arm")!.commsDropped).toBeUndefined();
  });

  it("refuses a robot whose config asks for a secured session, naming the device", async () => {
    const { model } = loadConfigText(cellYaml(robotYaml("secure_arm", "opc.tcp://127.0.0.1:4999", "{ mode: SignAndEncrypt }")));
    await expect(startSimulators(model, { log: silentLogger() })).rejects.toThrow(/secure_arm.*security mode None.*SignAndEncrypt/);
  });

  it("refuses two robots on one OPC UA port", async () => {
    const { model } = loadConfigText(cellYaml(robotYaml("a", "opc.tcp://127.0.0.1:4998") + robotYaml("b", "opc.tcp://localhost:4998/b")));
    await expect(startSimulators(model, { log: silentLogger() })).rejects.toMatchObject({ code: "CELLIO_ERR_SIM", message: expect.stringMatching(/a and b share OPC UA port 4998/) as unknown });
  });

  it("leaves a robot on a remote endpoint alone (a real controller)", async () => {
    const { model } = loadConfigText(cellYaml(robotYaml("far", "opc.tcp://10.1.2.3:4840")));
    const other = await startSimulators(model, { log: silentLogger() });
    try {
      expect(other.robots.size).toBe(0);
      expect(other.robotFaces.size).toBe(0);
    } finally {
      await other.stop();
    }
  });
});

/** The profile address of point `name`. */
function points(name: string): string {
  const p = motomanOpcuaPoints({ namespaceUri: NS, folder: FOLDER, axes: AXES }).find((x) => x.name === name);
  if (!p) throw new Error(`no profile point ${name}`);
  return p.address;
}
