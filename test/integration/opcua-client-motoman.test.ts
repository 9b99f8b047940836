/**
 * The Motoman remote-start handshake of motoman-handshake.test.ts, this time
 * over OPC UA: CellApp → OPC UA client driver → `profile: motoman-yrc1000`
 * on an `opcua` device (nsu=urn:cellio:simulator:motoman;s=Motoman.<Signal>)
 * → the simulator's OPC UA face → the same MotomanSim. The same tiny Modbus
 * "PLC" drives the robot's commands through logic; every robot state the
 * test waits for is read from cellio's process image. The device runs in
 * polled mode: every cycle one Read of all signals, one consistent snapshot.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MotomanSim } from "../../simulators/motoman/sim.js";
import { freePort } from "../../simulators/motoman/free-port.js";
import { MotomanOpcuaFace } from "../../simulators/motoman/opcua-face.js";
import { SimDevice, Teardown, startCell, trapUnhandled, type RunningCell } from "./helpers.js";
import { PLC, handshakeCases, handshakeHelpers, pickJob, plcAndLogicYaml, type HandshakeRig } from "./motoman-scenario.js";

const t = new Teardown();
const unhandled = trapUnhandled(t);
/** Longer than the Modbus test's 20 ms: a polled Read of ~45 signals per cycle on a loaded CI box. */
const PERIOD = 50;
const JOB_MS = 1200;
const pki = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-pki-"));

let robot: MotomanSim;
let face: MotomanOpcuaFace;
let plc: SimDevice;
let cell: RunningCell;

function cellYaml(endpoint: string, plcPort: number): string {
  return `
version: 1
cell: { id: itest-motoman-opcua }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 25, output_budget_ms: 20, overrun: { fault_after: 1000 } }
devices:
  robot:
    protocol: opcua
    endpoint: "${endpoint}"
    security: { mode: None, pki_dir: "${pki}" }
    # Polled: one Read of every signal per cycle is one consistent snapshot of the robot, as the
    # Modbus window read is. (A subscription may split one robot tick across two publish responses,
    # so a cycle could see cycle_complete before operating drops: see src/drivers/opcua/README.md.)
    mode: polled
    timeout_ms: 200
    reconnect: { min_ms: 100, max_ms: 1000 }
    profile: motoman-yrc1000
${plcAndLogicYaml(plcPort)}`;
}

beforeAll(async () => {
  robot = new MotomanSim({
    jobs: [pickJob(JOB_MS)],
    model: { initial: { remote: false }, echoDelayMs: 10, cycleCompletePulseMs: 200 },
  });
  await robot.start();
  t.add(() => robot.stop());
  face = new MotomanOpcuaFace(robot, { port: await freePort(), pkiDir: path.join(pki, "sim") });
  const { endpointUrl } = await face.start();
  t.add(() => face.stop());
  plc = await SimDevice.start(t);
  plc.bank.setBit("coil", PLC.hold_req, true);
  cell = await startCell(cellYaml(endpointUrl, plc.port), t);
  await cell.waitCycle((c) => c.mode === "running", 20_000, "the first complete good scan");
}, 60_000);

afterAll(async () => {
  await t.run();
  expect(unhandled).toEqual([]);
});

const rig: HandshakeRig = { cell: () => cell, plc: () => plc, robot: () => robot, jobMs: JOB_MS, waitMs: 8000 };
const helpers = handshakeHelpers(rig);
const { robotState } = helpers;

describe("Motoman remote start through cellio's OPC UA driver and the profile", () => {
  handshakeCases(rig, helpers);

  it("turns the robot's points bad when its OPC UA server goes away, and good again when it is back", async () => {
    await face.stop();
    const lost = await cell.waitCycle((c) => cell.sample(c, "robot.servo_on").quality === "bad", 8000, "robot.servo_on bad");
    expect(cell.sample(lost, "plc.servo_req").quality).toBe("good"); // one dead device does not stall the other
    await face.start();
    await robotState({ servo_on: true, estop_ok: true }, 20_000);
  }, 40_000);
});
