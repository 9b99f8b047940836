/**
 * Motoman YRC1000 device profile, the robot's signals: the command levels the
 * cell drives, the status the robot reports, and the HSES added-status codes
 * it refuses a command with. Where each signal sits in the controller's Modbus
 * window: ./motoman-yrc1000-map.ts; the window as register words:
 * ./motoman-yrc1000-codec.ts. Handshake and refusal codes:
 * simulators/motoman/README.md.
 */

export type MotomanMode = "teach" | "play";
export type MotomanEstop = "external" | "pendant" | "controller";

/** HSES added-status codes a YRC1000 gives when it refuses a command (reference §1.4). */
export const HSES_REFUSAL = {
  OPERATING: 0x2010,
  HOLD_EXTERNAL: 0x2040,
  ALARM: 0x2060,
  SERVO_OFF: 0x2070,
  WRONG_MODE: 0x2080,
  REMOTE_NOT_SET: 0x2100,
  START_PROHIBITED: 0x3230,
  SERVO_CANNOT_ON: 0x3450,
  NO_JOB: 0x4040,
} as const;
export type HsesRefusal = (typeof HSES_REFUSAL)[keyof typeof HSES_REFUSAL];

const REFUSAL_TEXT: Readonly<Record<HsesRefusal, string>> = {
  0x2010: "manipulator operating",
  0x2040: "hold by external",
  0x2060: "alarm or error occurring",
  0x2070: "servo off",
  0x2080: "incorrect mode",
  0x2100: "command remote not set",
  0x3230: "panel lock: start prohibited",
  0x3450: "servo power cannot be turned on",
  0x4040: "no specified job",
};

/** Text for an `error_code` value ("" for 0). */
export function describeRefusal(code: number): string {
  if (code === 0) return "";
  const text = (REFUSAL_TEXT as Readonly<Record<number, string>>)[code];
  return text ?? `unknown code 0x${code.toString(16).padStart(4, "0")}`;
}

/** Command levels the cell drives. `extHold` true means HOLD (the safe state). */
export interface MotomanCommands {
  readonly extServoOn: boolean;
  readonly extStart: boolean;
  readonly extHold: boolean;
  readonly alarmReset: boolean;
  readonly jobNumber: number;
  readonly jobStrobe: boolean;
  /** Any value the cell keeps changing; watched only while `watchdogMs` > 0. */
  readonly heartbeat: number;
  /** Communication watchdog: hold when `heartbeat` is unchanged for longer than this (0 = off). */
  readonly watchdogMs: number;
}

/**
 * Robot status as carried by the window. E-stop flags are active-low as on the
 * I/O (#80025–#80027): true = NOT pressed. `servoOn` is false while energy
 * saving. `errorCode` is the last refusal (HSES added status, 0 = none).
 */
export interface MotomanStatus {
  readonly mode: MotomanMode;
  readonly remote: boolean;
  readonly servoOn: boolean;
  readonly operating: boolean;
  readonly hold: boolean;
  readonly alarm: boolean;
  readonly majorAlarm: boolean;
  readonly minorAlarm: boolean;
  /** Code of the most recently raised active alarm, 0 when none. */
  readonly alarmCode: number;
  readonly error: boolean;
  readonly errorCode: number;
  readonly estopExternalOk: boolean;
  readonly estopPendantOk: boolean;
  readonly estopControllerOk: boolean;
  /** All three e-stop circuits OK. */
  readonly estopOk: boolean;
  readonly inZone: boolean;
  /** A pulse after each finished job. */
  readonly cycleComplete: boolean;
  readonly jobEcho: number;
  readonly jobReceived: boolean;
  /** Job running or paused (0 when none). */
  readonly currentJob: number;
  /** 0 when idle, else 1 + the index of the current phase in the job. */
  readonly jobPhaseIndex: number;
  /** Job time at 100 % override, ms (0 when idle). */
  readonly jobElapsedMs: number;
  /** Percent, 0–100. */
  readonly speedOverride: number;
  /** Degrees, one per axis. */
  readonly jointPositions: readonly number[];
  readonly cycleCount: number;
  readonly continuousCycle: boolean;
  readonly energySaving: boolean;
  /** A start would be accepted now (play, remote, servo on; no alarm, e-stop, hold, motion). */
  readonly startPermit: boolean;
  /** The watchdog setting as the robot scanned it (read-back), and whether it tripped. */
  readonly watchdogMs: number;
  readonly watchdogTripped: boolean;
}
