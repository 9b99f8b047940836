/**
 * The Motoman remote-start handshake as one scenario, run by
 * motoman-handshake.test.ts (robot over Modbus) and
 * opcua-client-motoman.test.ts (robot over OPC UA): the same test-only "PLC"
 * (a Modbus simulator whose coils the test sets) drives the robot's command
 * outputs through logic, and every robot state the test waits for is read
 * from cellio's process image, never from the simulator.
 *
 * The cases run in order and each leaves the robot in the state the next one
 * starts from; the file that calls handshakeCases() adds its own link-loss case.
 */
import { expect, it } from "vitest";
import type { CycleResult } from "../../src/loop/control-loop.js";
import { HSES_REFUSAL } from "../../src/profiles/motoman-yrc1000.js";
import { homePose, zoneJob, type JobDef } from "../../simulators/motoman/jobs.js";
import type { MotomanSim } from "../../simulators/motoman/sim.js";
import type { RunningCell, SimDevice } from "./helpers.js";

/** PLC coils (and one register) the test flips; the cell maps them onto the robot's commands. */
export const PLC = { servo_req: 0, strobe_req: 1, start_req: 2, hold_req: 3, reset_req: 4 } as const;

/** A short pick job so the files stay fast: in the zone from 30 % to 70 % of `jobMs`. */
export function pickJob(jobMs: number): JobDef {
  const home = homePose();
  return zoneJob(1, "PICK_A", jobMs, "pick", home.map((v, i) => v + [60, 35, 20, 0, -25, 0][i]!), home);
}

/** The PLC device and the logic that maps its coils onto the robot's commands (YAML, indented for `devices:`). */
export function plcAndLogicYaml(plcPort: number): string {
  return `  plc:
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
  # No heartbeat in this cell: switch the robot's communication watchdog off
  # (its safe value, 1000 ms, would arm it and hold the robot).
  robot.watchdog_ms: "0"
`;
}

export interface HandshakeRig {
  readonly cell: () => RunningCell;
  readonly plc: () => SimDevice;
  readonly robot: () => MotomanSim;
  readonly jobMs: number;
  /** How long to wait for a robot state (longer for polled OPC UA on a loaded machine). */
  readonly waitMs: number;
}

export interface HandshakeHelpers {
  v(c: CycleResult, id: string): unknown;
  coil(name: keyof typeof PLC, on: boolean): void;
  /** The first cycle from now where every listed robot point has the given value (and good quality). */
  robotState(want: Record<string, unknown>, ms?: number): Promise<CycleResult>;
}

export function handshakeHelpers(rig: HandshakeRig): HandshakeHelpers {
  const v = (c: CycleResult, id: string): unknown => rig.cell().sample(c, id).value;
  return {
    v,
    coil: (name, on) => rig.plc().bank.setBit("coil", PLC[name], on),
    robotState(want, ms = rig.waitMs) {
      const cell = rig.cell();
      const what = Object.entries(want).map(([k, x]) => `robot.${k}=${String(x)}`).join(", ");
      return cell.waitCycle((c) => Object.entries(want).every(([k, x]) => cell.sample(c, `robot.${k}`).quality === "good" && v(c, `robot.${k}`) === x), ms, what);
    },
  };
}

/** The handshake cases, registered with `it` in the caller's describe block. */
export function handshakeCases(rig: HandshakeRig, h: HandshakeHelpers): void {
  const { v, coil, robotState } = h;
  const JOB_MS = rig.jobMs;

  it("starts safe: ext_hold written true, servo off, watchdog off", async () => {
    const c = await robotState({ servo_on: false, estop_ok: true, play: true, remote: false, watchdog_ms_readback: 0 });
    expect(c.commanded[rig.cell().idx("robot.ext_hold")]).toBe(true);
    expect(rig.robot().commands).toMatchObject({ extHold: true, extServoOn: false, extStart: false, watchdogMs: 0 });
    expect(v(c, "robot.hold")).toBe(true);
  });

  it("runs a complete cycle: remote, servo on, job select with echo, start, zone, cycle complete", async () => {
    const robot = rig.robot();
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
    rig.plc().bank.setRegister("hr", 0, 1);
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
    // The joints came back home (within the 0.001 deg register resolution on Modbus).
    expect(v(done, "robot.joint_1") as number).toBeCloseTo(homePose()[0]!, 3);
  });

  it("refuses a start without remote: error_code 0x2100 in the image", async () => {
    const robot = rig.robot();
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
    const robot = rig.robot();
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
    rig.robot().raiseAlarm(4100, { major: false, resettable: true });
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
}
