/**
 * The OPC 40010 (Robotics) variables of a robot, each computed from points of
 * the robot's device (profile motoman-yrc1000: src/profiles/motoman-yrc1000-map.ts).
 * Pure, and free of node-opcua, so the config check can use it at load.
 *
 * A variable fed by several points carries the worst of their statuses and
 * the newest of their source timestamps; while any of them is bad its value
 * is null (the same rule as a point: values.ts).
 */
import { sample, type Sample, type Status, type Value } from "../../core/sample.js";

/** OperationalModeEnumeration (OPC 40010-1). */
export const OPERATIONAL_MODE = { OTHER: 0, MANUAL_REDUCED_SPEED: 1, MANUAL_HIGH_SPEED: 2, AUTOMATIC: 3, AUTOMATIC_EXTERNAL: 4 } as const;
/** ExecutionModeEnumeration (OPC 40010-1). */
export const EXECUTION_MODE = { CYCLE: 0, CONTINUOUS: 1, STEP: 2 } as const;

/** Where a variable sits in the model. */
export type RobotPart = "manipulator" | "task" | "safety" | "axis";
export type RobotDataType = "Boolean" | "Int32" | "Double" | "String";

export interface RobotSignal {
  readonly part: RobotPart;
  /** Browse name of the variable in the part's ParameterSet (OPC 40010). */
  readonly variable: string;
  readonly dataType: RobotDataType;
  /** Point names on the robot's device, in the order `derive` takes them. */
  readonly inputs: readonly string[];
  readonly derive: (v: readonly Value[]) => Value;
  /** For the README and the node's description. */
  readonly rule: string;
}

const job = (current: Value, echo: Value): number => (Number(current) || Number(echo)) | 0;

/** Teach → manual reduced speed; play → automatic; play with command remote → automatic external (our choice of OPC 40010-1 OperationalModeEnumeration values; simulators/motoman/README.md). */
export function operationalMode(teach: boolean, play: boolean, remote: boolean): number {
  if (teach) return OPERATIONAL_MODE.MANUAL_REDUCED_SPEED;
  if (play) return remote ? OPERATIONAL_MODE.AUTOMATIC_EXTERNAL : OPERATIONAL_MODE.AUTOMATIC;
  return OPERATIONAL_MODE.OTHER;
}

/** Every variable except the axes. */
export const ROBOT_SIGNALS: readonly RobotSignal[] = [
  { part: "manipulator", variable: "SpeedOverride", dataType: "Double", inputs: ["speed_override"], derive: ([v]) => Number(v), rule: "speed_override (%)" },
  { part: "manipulator", variable: "InControl", dataType: "Boolean", inputs: ["servo_on"], derive: ([v]) => v === true, rule: "servo_on" },
  { part: "manipulator", variable: "OnPath", dataType: "Boolean", inputs: ["current_job"], derive: ([v]) => Number(v) !== 0, rule: "current_job ≠ 0 (a job running or paused resumes where it stopped)" },
  {
    part: "safety",
    variable: "OperationalMode",
    dataType: "Int32",
    inputs: ["teach", "play", "remote"],
    derive: ([t, p, r]) => operationalMode(t === true, p === true, r === true),
    rule: "teach → MANUAL_REDUCED_SPEED (1); play → AUTOMATIC (3); play and remote → AUTOMATIC_EXTERNAL (4); neither → OTHER (0)",
  },
  { part: "safety", variable: "EmergencyStop", dataType: "Boolean", inputs: ["estop_ok"], derive: ([v]) => v !== true, rule: "not estop_ok (an e-stop circuit is open)" },
  { part: "safety", variable: "ProtectiveStop", dataType: "Boolean", inputs: ["hold"], derive: ([v]) => v === true, rule: "hold" },
  {
    part: "task",
    variable: "TaskProgramName",
    dataType: "String",
    inputs: ["current_job", "job_echo"],
    derive: ([c, e]) => (job(c ?? 0, e ?? 0) === 0 ? "" : String(job(c ?? 0, e ?? 0))),
    rule: 'the job number (current_job, else job_echo) as text; "" when none',
  },
  { part: "task", variable: "TaskProgramLoaded", dataType: "Boolean", inputs: ["current_job", "job_echo"], derive: ([c, e]) => job(c ?? 0, e ?? 0) !== 0, rule: "current_job or job_echo ≠ 0" },
  {
    part: "task",
    variable: "ExecutionMode",
    dataType: "Int32",
    inputs: ["continuous_cycle"],
    derive: ([v]) => (v === true ? EXECUTION_MODE.CONTINUOUS : EXECUTION_MODE.CYCLE),
    rule: "continuous_cycle → CONTINUOUS (1), else CYCLE (0)",
  },
];

/** The points a robot's device must have (besides joint_1..joint_N). */
export const ROBOT_POINT_NAMES: readonly string[] = [...new Set(ROBOT_SIGNALS.flatMap((s) => s.inputs))];

/** The axis variable: Axes/Axis<n>/ParameterSet/ActualPosition (deg) ← joint_<n>. */
export function axisSignal(n: number): RobotSignal {
  return { part: "axis", variable: "ActualPosition", dataType: "Double", inputs: [`joint_${n}`], derive: ([v]) => Number(v), rule: `joint_${n} (deg)` };
}

/** The axes a device has: joint_1, joint_2, ... without a gap. */
export function axisCount(pointNames: ReadonlySet<string>): number {
  let n = 0;
  while (pointNames.has(`joint_${n + 1}`)) n++;
  return n;
}

/** The names of the required points a device lacks (joint_1 counts as required). */
export function missingRobotPoints(pointNames: ReadonlySet<string>): string[] {
  const missing = ROBOT_POINT_NAMES.filter((n) => !pointNames.has(n));
  if (!pointNames.has("joint_1")) missing.push("joint_1");
  return missing;
}

const STATUS_RANK: Readonly<Record<Status, number>> = {
  good: 0,
  uncertain_last_usable: 1,
  bad_waiting_for_initial_data: 2,
  bad_config_error: 3,
  bad_device_failure: 4,
  bad_timeout: 5,
  bad_no_communication: 6,
};

/** The sample of a signal from its input samples: worst status, newest source time, null while any is bad. */
export function deriveSample(signal: RobotSignal, inputs: readonly Sample[]): Sample {
  let status: Status = "good";
  let ts = 0;
  for (const s of inputs) {
    if (STATUS_RANK[s.status] > STATUS_RANK[status]) status = s.status;
    if (s.sourceTs > ts) ts = s.sourceTs;
  }
  if (inputs.some((s) => s.quality === "bad" || s.value === null)) {
    return sample(null, status === "good" || status === "uncertain_last_usable" ? "bad_waiting_for_initial_data" : status, ts);
  }
  return sample(signal.derive(inputs.map((s) => s.value as Value)), status, ts);
}
