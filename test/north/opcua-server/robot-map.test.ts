/**
 * The OPC 40010 variables computed from the robot's points: the mapping
 * rules, status and timestamp of a variable fed by several points, and what
 * a device must have to be shown as a robot. Pure.
 */
import { describe, expect, it } from "vitest";
import { sample } from "../../../src/core/sample.js";
import { motomanPoints } from "../../../src/profiles/motoman-yrc1000-map.js";
import { OPERATIONAL_MODE, ROBOT_SIGNALS, axisCount, deriveSample, missingRobotPoints, operationalMode } from "../../../src/north/opcua-server/robot-map.js";

const signal = (variable: string) => ROBOT_SIGNALS.find((s) => s.variable === variable)!;

describe("robot mapping", () => {
  it("operational mode: teach, play, play + remote, neither", () => {
    expect(operationalMode(true, false, true)).toBe(OPERATIONAL_MODE.MANUAL_REDUCED_SPEED);
    expect(operationalMode(false, true, false)).toBe(OPERATIONAL_MODE.AUTOMATIC);
    expect(operationalMode(false, true, true)).toBe(OPERATIONAL_MODE.AUTOMATIC_EXTERNAL);
    expect(operationalMode(false, false, false)).toBe(OPERATIONAL_MODE.OTHER);
  });

  it("e-stop is the inverse of the active-low estop_ok; the task program is the job number", () => {
    expect(deriveSample(signal("EmergencyStop"), [sample(false, "good", 5)]).value).toBe(true);
    expect(deriveSample(signal("EmergencyStop"), [sample(true, "good", 5)]).value).toBe(false);
    expect(deriveSample(signal("TaskProgramName"), [sample(0, "good", 1), sample(12, "good", 2)]).value).toBe("12");
    expect(deriveSample(signal("TaskProgramName"), [sample(3, "good", 1), sample(12, "good", 2)]).value).toBe("3");
    expect(deriveSample(signal("TaskProgramName"), [sample(0, "good", 1), sample(0, "good", 2)]).value).toBe("");
    expect(deriveSample(signal("TaskProgramLoaded"), [sample(0, "good", 1), sample(0, "good", 2)]).value).toBe(false);
  });

  it("several points: worst status, newest source time, null while one is bad", () => {
    const mode = signal("OperationalMode");
    const good = deriveSample(mode, [sample(false, "good", 100), sample(true, "good", 300), sample(true, "good", 200)]);
    expect(good).toMatchObject({ value: OPERATIONAL_MODE.AUTOMATIC_EXTERNAL, status: "good", sourceTs: 300 });
    const stale = deriveSample(mode, [sample(false, "good", 100), sample(true, "uncertain_last_usable", 300), sample(true, "good", 200)]);
    expect(stale).toMatchObject({ value: OPERATIONAL_MODE.AUTOMATIC_EXTERNAL, status: "uncertain_last_usable" });
    const lost = deriveSample(mode, [sample(false, "bad_no_communication", 100), sample(true, "bad_timeout", 90), sample(true, "good", 200)]);
    expect(lost).toMatchObject({ value: null, status: "bad_no_communication", quality: "bad", sourceTs: 200 });
    const never = deriveSample(mode, [sample(null, "bad_waiting_for_initial_data", 0), sample(true, "good", 200), sample(true, "good", 200)]);
    expect(never).toMatchObject({ value: null, status: "bad_waiting_for_initial_data" });
  });

  it("the Motoman profile has every point the model needs; its axes count from joint_1", () => {
    const names = new Set(motomanPoints(0, { axes: 7 }).map((p) => p.name));
    expect(missingRobotPoints(names)).toEqual([]);
    expect(axisCount(names)).toBe(7);
    expect(missingRobotPoints(new Set(["servo_on"]))).toContain("joint_1");
    expect(axisCount(new Set(["joint_1", "joint_3"]))).toBe(1);
  });
});
