/**
 * The vocabulary of the Motoman simulator's OPC UA face, as plain data: the
 * namespace URIs it uses, the OPC 40010 OperationalMode and ExecutionMode
 * enumerations and how the robot's mode maps onto them, and the two tables of
 * the `Motoman` folder: every status signal (name, OPC UA type, description,
 * how it is read from `RobotStatus`) and every writable command signal (name,
 * type, the `MotomanCommands` key it writes). Nothing here touches a server:
 * `opcua-address-space.ts` turns the tables into nodes, `opcua-face.ts` keeps
 * them up to date. Node ids and mapping: ./README.md.
 */
import { describeRefusal, type MotomanCommands } from "../../src/profiles/motoman-yrc1000.js";
import type { RobotStatus } from "./model.js";

/** Namespace of the simulator's own nodes (the Robotics instances and the Motoman folder). */
export const MOTOMAN_OPCUA_NAMESPACE = "urn:cellio:simulator:motoman";
export const ROBOTICS_NAMESPACE = "http://opcfoundation.org/UA/Robotics/";
export const DI_NAMESPACE = "http://opcfoundation.org/UA/DI/";

/** OperationalModeEnumeration (OPC 40010). */
export const OPERATIONAL_MODE = { OTHER: 0, MANUAL_REDUCED_SPEED: 1, MANUAL_HIGH_SPEED: 2, AUTOMATIC: 3, AUTOMATIC_EXTERNAL: 4 } as const;
/** ExecutionModeEnumeration (OPC 40010). */
export const EXECUTION_MODE = { CYCLE: 0, CONTINUOUS: 1, STEP: 2 } as const;

/** Teach → manual reduced speed, play → automatic, play + remote → automatic external (reference §4). */
export function operationalMode(s: Pick<RobotStatus, "mode" | "remote">): number {
  if (s.mode === "teach") return OPERATIONAL_MODE.MANUAL_REDUCED_SPEED;
  return s.remote ? OPERATIONAL_MODE.AUTOMATIC_EXTERNAL : OPERATIONAL_MODE.AUTOMATIC;
}

export type Scalar = boolean | number | string;
export type OpcType = "Boolean" | "UInt16" | "UInt32" | "Int32" | "Double" | "String";

export interface Signal {
  readonly name: string;
  readonly type: OpcType;
  readonly description: string;
  readonly read: (s: RobotStatus) => Scalar;
}

export interface Command {
  readonly name: string;
  readonly type: OpcType;
  readonly key: keyof MotomanCommands;
  readonly description: string;
}

const bit = (name: string, read: (s: RobotStatus) => boolean, description: string): Signal => ({ name, type: "Boolean", read, description });
const u16 = (name: string, read: (s: RobotStatus) => number, description: string): Signal => ({ name, type: "UInt16", read, description });

/** Every status signal of the register map (PascalCase of the profile's point names), plus three readable extras. */
export function statusSignals(axes: number): Signal[] {
  return [
    bit("ServoOn", (s) => s.servoOn, "servo power on (#50073); false while energy saving"),
    bit("Operating", (s) => s.operating, "job running (#50070)"),
    bit("Hold", (s) => s.hold, "hold (#50071)"),
    bit("Alarm", (s) => s.alarm, "any alarm active"),
    bit("Error", (s) => s.error, "last command refused; see ErrorCode"),
    bit("Remote", (s) => s.remote, "command remote selected (#80011)"),
    bit("Play", (s) => s.mode === "play", "play mode (#50054)"),
    bit("Teach", (s) => s.mode === "teach", "teach mode (#50053)"),
    bit("EstopOk", (s) => s.estopOk, "all e-stop circuits OK (1 = not pressed)"),
    bit("InZone", (s) => s.inZone, "robot inside the shared zone"),
    bit("CycleComplete", (s) => s.cycleComplete, "pulse after each finished job"),
    bit("JobReceived", (s) => s.jobReceived, "job select received"),
    bit("EnergySaving", (s) => s.energySaving, "energy-saving mode (#50727)"),
    bit("StartPermit", (s) => s.startPermit, "a start would be accepted now"),
    bit("WatchdogTripped", (s) => s.watchdogTripped, "heartbeat stopped for longer than WatchdogMs"),
    bit("MajorAlarm", (s) => s.majorAlarm, "major alarm active (#50010)"),
    bit("MinorAlarm", (s) => s.minorAlarm, "minor alarm active (#50011)"),
    bit("EstopExternalOk", (s) => s.estopExternalOk, "external e-stop OK (#80025, active-low)"),
    bit("EstopPendantOk", (s) => s.estopPendantOk, "pendant e-stop OK (#80026, active-low)"),
    bit("EstopControllerOk", (s) => s.estopControllerOk, "controller e-stop OK (#80027, active-low)"),
    bit("ContinuousCycle", (s) => s.continuousCycle, "continuous cycle mode (#50052)"),
    u16("AlarmCode", (s) => s.alarmCode, "most recent active alarm code (0 = none)"),
    u16("ErrorCode", (s) => s.errorCode, "last refusal, HSES added-status code (0 = none)"),
    u16("JobEcho", (s) => s.jobEcho, "selected job, echoed on job select"),
    u16("CurrentJob", (s) => s.currentJob, "job running or paused (0 = none)"),
    u16("JobPhase", (s) => s.jobPhaseIndex, "0 idle, else 1 + phase index"),
    { name: "SpeedOverride", type: "Double", read: (s) => s.speedOverride, description: "speed override, %" },
    u16("WatchdogMsReadback", (s) => s.watchdogMs, "WatchdogMs as the robot scanned it"),
    { name: "CycleCount", type: "UInt32", read: (s) => s.cycleCount, description: "finished jobs since power-on" },
    { name: "JobElapsedMs", type: "UInt32", read: (s) => Math.round(s.jobElapsedMs), description: "job time at 100 % override, ms" },
    ...Array.from({ length: axes }, (_, i): Signal => ({
      name: `Joint${i + 1}`,
      type: "Double",
      read: (s) => s.jointPositions[i] ?? 0,
      description: `axis ${i + 1} position, deg`,
    })),
    { name: "Mode", type: "String", read: (s) => s.mode, description: '"teach" or "play"' },
    { name: "JobPhaseName", type: "String", read: (s) => s.jobPhase, description: '"idle" or the current phase' },
    { name: "ErrorText", type: "String", read: (s) => describeRefusal(s.errorCode), description: "ErrorCode in words" },
  ];
}

/** The writable command signals: the command block of the register map. */
export const COMMAND_SIGNALS: readonly Command[] = [
  { name: "ExtServoOn", type: "Boolean", key: "extServoOn", description: "EXTERNAL SERVO ON; the robot acts on the rising edge" },
  { name: "ExtStart", type: "Boolean", key: "extStart", description: "EXTERNAL START; the robot acts on the rising edge" },
  { name: "ExtHold", type: "Boolean", key: "extHold", description: "EXTERNAL HOLD, level: true = hold" },
  { name: "AlarmReset", type: "Boolean", key: "alarmReset", description: "ALARM/ERROR RESET; rising edge" },
  { name: "JobStrobe", type: "Boolean", key: "jobStrobe", description: "job select strobe" },
  { name: "JobNumber", type: "UInt16", key: "jobNumber", description: "job to select (0 = none)" },
  { name: "Heartbeat", type: "UInt16", key: "heartbeat", description: "changed by the cell while the watchdog is armed" },
  { name: "WatchdogMs", type: "UInt16", key: "watchdogMs", description: "communication watchdog, ms (0 = off)" },
];
