/**
 * The Motoman remote-start handshake end to end over real sockets:
 * CellApp → Modbus TCP driver → `profile: motoman-yrc1000` points →
 * 127.0.0.1 → MotomanSim (the YRC1000 model behind its register window).
 *
 * The scenario (a test-only "PLC" driving the robot's commands through
 * logic; every state read from cellio's process image) is shared with the
 * OPC UA version: motoman-scenario.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/load.js";
import { decodeStatusRegisters } from "../../src/profiles/motoman-yrc1000-codec.js";
import { MOTOMAN_WINDOW_LENGTH } from "../../src/profiles/motoman-yrc1000-map.js";
import { MotomanSim } from "../../simulators/motoman/sim.js";
import { startSimulators } from "../../simulators/runner.js";
import { closeClient, tcpClient } from "../simulators/modbus/client.js";
import { SimDevice, Teardown, startCell, type RunningCell } from "./helpers.js";
import { PLC, handshakeCases, handshakeHelpers, pickJob, plcAndLogicYaml, type HandshakeRig } from "./motoman-scenario.js";

const t = new Teardown();
const PERIOD = 20;
const BASE = 100;
/** A short pick job so the file stays fast (motoman-scenario.ts pickJob). */
const JOB_MS = 1200;

let robot: MotomanSim;
let plc: SimDevice;
let cell: RunningCell;

function cellYaml(robotPort: number, plcPort: number): string {
  return `
version: 1
cell: { id: itest-motoman }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  robot:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${robotPort}
    timeout_ms: 200
    profile: motoman-yrc1000
    profile_options: { base: ${BASE} }
${plcAndLogicYaml(plcPort)}`;
}

beforeAll(async () => {
  robot = new MotomanSim({
    base: BASE,
    jobs: [pickJob(JOB_MS)],
    model: { initial: { remote: false }, echoDelayMs: 10, cycleCompletePulseMs: 200 },
  });
  const { port } = await robot.start();
  t.add(() => robot.stop());
  plc = await SimDevice.start(t);
  plc.bank.setBit("coil", PLC.hold_req, true); // the PLC starts by holding the robot
  cell = await startCell(cellYaml(port, plc.port), t);
  await cell.waitCycle((c) => c.mode === "running", 5000, "the first complete good scan");
}, 20_000);

afterAll(() => t.run());

const rig: HandshakeRig = { cell: () => cell, plc: () => plc, robot: () => robot, jobMs: JOB_MS, waitMs: 3000 };
const helpers = handshakeHelpers(rig);
const { robotState } = helpers;

describe("Motoman remote start through cellio's Modbus driver and the profile", () => {
  handshakeCases(rig, helpers);

  it("turns the robot's points bad when its link drops, and good again when it comes back", async () => {
    robot.dropComms("silent");
    const lost = await cell.waitCycle((c) => cell.sample(c, "robot.servo_on").quality === "bad", 3000, "robot.servo_on bad");
    expect(cell.sample(lost, "plc.servo_req").quality).toBe("good"); // one dead device does not stall the other
    robot.restoreComms();
    await robotState({ servo_on: true, estop_ok: true }, 5000);
  });
});

describe("the simulator runner (what `cellio sim --config` starts)", () => {
  it("puts a MotomanSim behind each motoman-yrc1000 device, on its endpoint and unit id, with the robot control interface", async () => {
    const { model } = loadConfigText(`
version: 1
cell: { id: itest-motoman-runner }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  arm:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: 15020
    unit_id: 3
    profile: motoman-yrc1000
    profile_options: { base: 300 }
`);
    const sims = await startSimulators(model, { portOverride: () => 0, robotControlPort: 0, robotOpcuaPort: undefined });
    t.add(() => sims.stop());
    const arm = sims.robots.get("arm")!;
    expect(arm.base).toBe(300);
    expect(arm.bank).toBe(sims.device("arm").bank);
    expect(sims.robotFaces.size).toBe(process.env.CELLIO_SIM_OPCUA_PORT === undefined ? 0 : 1);

    // Modbus face on the device's endpoint and unit id.
    const mb = await tcpClient(arm.port, 3, 500);
    t.add(() => closeClient(mb));
    const status = async () => decodeStatusRegisters((await mb.readHoldingRegisters(300, MOTOMAN_WINDOW_LENGTH)).data);
    expect(await status()).toMatchObject({ mode: "play", remote: true, estopOk: true });

    // Robot control interface.
    const r = await fetch(`http://127.0.0.1:${sims.robotControl!.port}/robot`, {
      method: "POST",
      body: JSON.stringify({ robot: "arm", action: "estop", pressed: true }),
    });
    expect(r.status).toBe(200);
    expect((await status()).estopOk).toBe(false);

    // A fault on the robot's unit only: comm drop is scoped to unit 3.
    arm.dropComms("silent");
    expect(sims.device("arm").server.faults.active()).toEqual([{ fault: { kind: "noAnswer" }, unit: 3, remaining: undefined }]);
    arm.restoreComms();
  });
});
