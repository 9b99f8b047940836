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
import type { CycleResult } from "../../src/loop/control-loop.js";
import { HSES_REFUSAL } from "../../src/profiles/motoman-yrc1000.js";
import { homePose, zoneJob } from "../../simulators/motoman/jobs.js";
import { MotomanSim } from "../../simulators/motoman/sim.js";
import { MotomanOpcuaFace, freePort } from "../../simulators/motoman/opcua-face.js";
import { SimDevice, Teardown, startCell, trapUnhandled, type RunningCell } from "./helpers.js";

const t = new Teardown();
const unhandled = trapUnhandled(t);
/** Longer than the Modbus test's 20 ms: a polled Read of ~45 signals per cycle on a loaded CI box. */
const PERIOD = 50;
const JOB_MS = 1200;
const PLC = { servo_req: 0, strobe_req: 1, start_req: 2, hold_req: 3, reset_req: 4 } as const;
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
  plc:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${plcPort}
    timeout_ms: 200
    points:
      servo_req:  { address: "coil:${PLC.servo_req}" }
      strobe_req: { address: "coil:${PLC.strobe_req}" }
      start_req:  { address: "coil:${PLC.start_req}" }
      hold_req:   { address: "coil:${PLC.hold_req}" }
      reset_req:  { address: "coil:${PLC.reset_req}" }
      job_sel:    { address: "hr:0:uint16" }
logic:
  robot.ext_servo_on: "plc.servo_req"
  robot.job_number: "plc.job_sel"
  robot.job_strobe: "plc.strobe_req"
  robot.ext_start: "plc.start_req"
  robot.ext_hold: "plc.hold_req"
  robot.alarm_reset: "plc.reset_req"
  robot.watchdog_ms: "0"
`;
}

beforeAll(async () => {
  const home = homePose();
  robot = new MotomanSim({
    jobs: [zoneJob(1, "PICK_A", JOB_MS, "pick", home.map((v, i) => v + [60, 35, 20, 0, -25, 0][i]!), home)],
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

const v = (c: CycleResult, id: string): unknown => cell.sample(c, id).value;
const coil = (name: keyof typeof PLC, on: boolean): void => plc.bank.setBit("coil", PLC[name], on);
function robotState(want: Record<string, unknown>, ms = 8000): Promise<CycleResult> {
  const what = Object.entries(want).map(([k, x]) => `robot.${k}=${String(x)}`).join(", ");
  return cell.waitCycle(
    (c) => Object.entries(want).every(([k, x]) => cell.sample(c, `robot.${k}`).quality === "good" && v(c, `robot.${k}`) === x),
    ms,
    what,
  );
}

describe("Motoman remote start through cellio's OPC UA driver and the profile", () => {
  it("starts safe: ext_hold written true, servo off, watchdog off", async () => {
    const c = await robotState({ servo_on: false, estop_ok: true, play: true, remote: false, watchdog_ms_readback: 0 });
    expect(c.commanded[cell.idx("robot.ext_hold")]).toBe(true);
    expect(robot.commands).toMatchObject({ extHold: true, extServoOn: false, extStart: false, watchdogMs: 0 });
    expect(v(c, "robot.hold")).toBe(true);
  });

  it("runs a complete cycle: remote, servo on, job select with echo, start, zone, cycle complete", async () => {
    // 1. Remote on at the robot (the operator's key), seen in the image.
    robot.setRemote(true);
    await robotState({ remote: true });
    // 2. Release the hold.
    coil("hold_req", false);
    await robotState({ hold: false });
    // 3. Servo on, held until the robot echoes it.
    coil("servo_req", true);
    await robotState({ servo_on: true });
    coil("servo_req", false);
    // 4. Job select: number, strobe, wait for received + echo, drop the strobe.
    plc.bank.setRegister("hr", 0, 1);
    coil("strobe_req", true);
    const echoed = await robotState({ job_received: true, job_echo: 1 });
    expect(v(echoed, "robot.error_code")).toBe(0);
    coil("strobe_req", false);
    await robotState({ job_received: false, job_echo: 1 });
    // 5. Start, held until operating, then dropped.
    coil("start_req", true);
    const running = await robotState({ operating: true, current_job: 1 });
    coil("start_req", false);
    expect(v(running, "robot.start_permit")).toBe(false); // already running
    // 6. In the shared zone during the job, then out again.
    const inZone = await robotState({ in_zone: true }, JOB_MS + 1000);
    expect(v(inZone, "robot.operating")).toBe(true);
    expect(v(inZone, "robot.job_phase")).toBeGreaterThanOrEqual(2);
    // 7. Cycle complete: operating drops, the pulse is seen, the count goes up.
    const done = await robotState({ cycle_complete: true }, JOB_MS + 1000);
    expect(v(done, "robot.operating")).toBe(false);
    expect(v(done, "robot.in_zone")).toBe(false);
    expect(v(done, "robot.cycle_count")).toBe(1);
    expect(v(done, "robot.start_permit")).toBe(true);
    await robotState({ cycle_complete: false });
    // The joints came back home.
    expect(v(done, "robot.joint_1") as number).toBeCloseTo(homePose()[0]!, 3);
  });

  it("refuses a start without remote: error_code 0x2100 in the image", async () => {
    robot.setRemote(false);
    await robotState({ remote: false });
    coil("start_req", true);
    const refused = await robotState({ error: true });
    expect(v(refused, "robot.error_code")).toBe(HSES_REFUSAL.REMOTE_NOT_SET);
    expect(v(refused, "robot.operating")).toBe(false);
    coil("start_req", false);
    robot.setRemote(true);
    // The error stays until a reset or the next accepted command.
    coil("reset_req", true);
    await robotState({ error: false, error_code: 0, remote: true });
    coil("reset_req", false);
  });

  it("drops servo power when an e-stop is pressed during a job", async () => {
    await robotState({ start_permit: true });
    coil("start_req", true);
    await robotState({ operating: true });
    coil("start_req", false);
    robot.pressEstop("external");
    const stopped = await robotState({ servo_on: false, estop_ok: false });
    expect(v(stopped, "robot.estop_external_ok")).toBe(false);
    expect(v(stopped, "robot.operating")).toBe(false);
    expect(v(stopped, "robot.current_job")).toBe(1); // paused, not aborted
    // Servo on is refused while the e-stop is pressed, and not restored by the release.
    coil("servo_req", true);
    const refused = await robotState({ error: true });
    expect(v(refused, "robot.error_code")).toBe(HSES_REFUSAL.SERVO_CANNOT_ON);
    coil("servo_req", false);
    robot.releaseEstop("external");
    const released = await robotState({ estop_ok: true, ext_servo_on: false });
    expect(v(released, "robot.servo_on")).toBe(false);
  });

  it("raises an alarm that blocks servo on, and clears it with alarm reset; the paused job then resumes", async () => {
    robot.raiseAlarm(4100, { major: false, resettable: true });
    const alarmed = await robotState({ alarm: true, alarm_code: 4100, minor_alarm: true });
    expect(v(alarmed, "robot.start_permit")).toBe(false);
    coil("servo_req", true);
    const refused = await robotState({ error_code: HSES_REFUSAL.ALARM });
    expect(v(refused, "robot.servo_on")).toBe(false);
    coil("servo_req", false);
    await robotState({ ext_servo_on: false });

    coil("reset_req", true);
    const reset = await robotState({ alarm: false, alarm_code: 0, error: false });
    expect(v(reset, "robot.error_code")).toBe(0);
    coil("reset_req", false);

    coil("servo_req", true);
    await robotState({ servo_on: true });
    coil("servo_req", false);
    coil("start_req", true);
    await robotState({ operating: true, current_job: 1 });
    coil("start_req", false);
    const done = await robotState({ cycle_complete: true }, JOB_MS + 1500);
    expect(v(done, "robot.cycle_count")).toBe(2);
  });

  it("turns the robot's points bad when its OPC UA server goes away, and good again when it is back", async () => {
    await face.stop();
    const lost = await cell.waitCycle((c) => cell.sample(c, "robot.servo_on").quality === "bad", 8000, "robot.servo_on bad");
    expect(cell.sample(lost, "plc.servo_req").quality).toBe("good"); // one dead device does not stall the other
    await face.start();
    await robotState({ servo_on: true, estop_ok: true }, 20_000);
  }, 40_000);
});
