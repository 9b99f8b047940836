/**
 * Motoman YRC1000 device profile: the robot's command and status signals, and
 * the DEFAULT layout of those signals in the controller's Modbus window.
 *
 * A YRC1000 Modbus server exposes a window of M registers as holding
 * registers; which bit carries which signal is decided by the integrator's
 * Concurrent-I/O ladder, not by Yaskawa (reference §1.2). This file is the
 * layout the simulator serves and cellio expects by default; a cell whose
 * ladder differs gets its own points. Modbus holding register N is taken to be
 * M register N, so `base` is the first M register of the block: commands must
 * lie in M000–M559 (the part writable from outside), status in M000–M999.
 * Table, handshake and refusal codes: simulators/motoman/README.md.
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

export type MotomanEncoding = "bit" | "uint16" | "uint32" | "int32";

/** One signal of the window; `offset` is relative to `base`. */
export interface MotomanField {
  readonly name: string;
  readonly offset: number;
  readonly bit?: number;
  readonly encoding: MotomanEncoding;
  readonly direction: "input" | "output";
  /** Engineering value = raw × gain (raw integers on the wire). */
  readonly gain?: number;
  readonly unit?: string;
  readonly safe?: boolean | number;
  readonly description: string;
}

export const MOTOMAN_COMMAND_BLOCK = Object.freeze({ offset: 0, length: 4 });
export const MOTOMAN_STATUS_BLOCK = Object.freeze({ offset: 16, length: 30 });
/** Registers from `base` to the end of the status block. */
export const MOTOMAN_WINDOW_LENGTH = MOTOMAN_STATUS_BLOCK.offset + MOTOMAN_STATUS_BLOCK.length;
export const MOTOMAN_MAX_AXES = 8;
/** Highest M register writable from outside, and highest readable. */
export const M_WRITABLE_LAST = 559;
export const M_READABLE_LAST = 999;

/** Safe value of `watchdog_ms`: going safe arms the watchdog rather than disarming it. */
export const MOTOMAN_SAFE_WATCHDOG_MS = 1000;

const CMD = 0;
const SA = 16;
const SB = 17;
const JOINTS = 30;

const out = (name: string, offset: number, bit: number | undefined, safe: boolean | number, description: string) =>
  ({ name, offset, bit, encoding: bit === undefined ? "uint16" : "bit", direction: "output", safe, description }) as const;
const bitIn = (name: string, offset: number, bit: number, description: string): MotomanField => ({
  name, offset, bit, encoding: "bit", direction: "input", description,
});

/** The default map, as data. Joints 1..8 follow from `JOINTS`. */
export const MOTOMAN_YRC1000_MAP: readonly MotomanField[] = Object.freeze([
  out("ext_servo_on", CMD, 0, false, "EXTERNAL SERVO ON request; the robot acts on the rising edge"),
  out("ext_start", CMD, 1, false, "EXTERNAL START; the robot acts on the rising edge"),
  out("ext_hold", CMD, 2, true, "EXTERNAL HOLD, level: true = hold (the safe state)"),
  out("alarm_reset", CMD, 3, false, "ALARM/ERROR RESET; the robot acts on the rising edge"),
  out("job_strobe", CMD, 4, false, "job select strobe: raise after writing job_number, drop after job_echo matches"),
  out("job_number", CMD + 1, undefined, 0, "job to select (0 = none)"),
  out("heartbeat", CMD + 2, undefined, 0, "changed by the cell every cycle while the watchdog is armed"),
  out("watchdog_ms", CMD + 3, undefined, MOTOMAN_SAFE_WATCHDOG_MS, "communication watchdog, ms (0 = off): the robot holds if heartbeat stops"),
  bitIn("servo_on", SA, 0, "servo power on (#50073); false while energy saving"),
  bitIn("operating", SA, 1, "job running (#50070)"),
  bitIn("hold", SA, 2, "hold (#50071): external hold level, or a job stopped by hold and not yet restarted"),
  bitIn("alarm", SA, 3, "any alarm active (#50010/#50011)"),
  bitIn("error", SA, 4, "last command refused; see error_code (#50014)"),
  bitIn("remote", SA, 5, "command remote selected (#80011)"),
  bitIn("play", SA, 6, "play mode (#50054)"),
  bitIn("teach", SA, 7, "teach mode (#50053)"),
  bitIn("estop_ok", SA, 8, "all e-stop circuits OK (1 = not pressed)"),
  bitIn("in_zone", SA, 9, "robot inside the shared zone"),
  bitIn("cycle_complete", SA, 10, "pulse after each finished job"),
  bitIn("job_received", SA, 11, "job select received (strobe seen, job exists); clears when the strobe drops"),
  bitIn("energy_saving", SA, 12, "energy-saving mode (#50727)"),
  bitIn("start_permit", SA, 13, "a start would be accepted now"),
  bitIn("watchdog_tripped", SA, 14, "heartbeat stopped for longer than watchdog_ms"),
  bitIn("major_alarm", SB, 0, "major alarm active (#50010): servo off"),
  bitIn("minor_alarm", SB, 1, "minor alarm active (#50011)"),
  bitIn("estop_external_ok", SB, 2, "external e-stop circuit OK (#80025, active-low)"),
  bitIn("estop_pendant_ok", SB, 3, "pendant e-stop OK (#80026, active-low)"),
  bitIn("estop_controller_ok", SB, 4, "controller e-stop OK (#80027, active-low)"),
  bitIn("continuous_cycle", SB, 5, "continuous cycle mode (#50052); otherwise one cycle per start"),
  { name: "alarm_code", offset: 18, encoding: "uint16", direction: "input", description: "most recent active alarm code (0 = none)" },
  { name: "error_code", offset: 19, encoding: "uint16", direction: "input", description: "last refusal, HSES added-status code (0 = none)" },
  { name: "job_echo", offset: 20, encoding: "uint16", direction: "input", description: "selected job, echoed on job select" },
  { name: "current_job", offset: 21, encoding: "uint16", direction: "input", description: "job running or paused (0 = none)" },
  { name: "job_phase", offset: 22, encoding: "uint16", direction: "input", description: "0 idle, else 1 + phase index" },
  { name: "speed_override", offset: 23, encoding: "uint16", direction: "input", gain: 0.01, unit: "%", description: "speed override (raw in 0.01 %)" },
  { name: "watchdog_ms_readback", offset: 24, encoding: "uint16", direction: "input", unit: "ms", description: "watchdog_ms as the robot scanned it" },
  { name: "cycle_count", offset: 26, encoding: "uint32", direction: "input", description: "finished jobs since power-on" },
  { name: "job_elapsed_ms", offset: 28, encoding: "uint32", direction: "input", unit: "ms", description: "job time at 100 % override" },
  ...Array.from({ length: MOTOMAN_MAX_AXES }, (_, i): MotomanField => ({
    name: `joint_${i + 1}`, offset: JOINTS + 2 * i, encoding: "int32", direction: "input", gain: 0.001, unit: "deg",
    description: `axis ${i + 1} position (raw in 0.001 deg)`,
  })),
] satisfies MotomanField[]);

// --- points in cellio's Modbus address syntax --------------------------------

export interface MotomanPoint {
  readonly name: string;
  readonly address: string;
  readonly type: "bool" | "int" | "float";
  readonly direction: "input" | "output";
  readonly safe?: boolean | number;
  readonly description: string;
  readonly unit?: string;
  /** cellio point scaling: engineering = raw × gain. */
  readonly scale?: { readonly gain: number };
}

function fieldsFor(axes: number): MotomanField[] {
  if (!Number.isInteger(axes) || axes < 1 || axes > MOTOMAN_MAX_AXES) throw new RangeError(`axes must be 1..${MOTOMAN_MAX_AXES}`);
  return MOTOMAN_YRC1000_MAP.filter((f) => !/^joint_\d+$/.test(f.name) || Number(f.name.slice(6)) <= axes);
}

function addressOf(f: MotomanField, base: number): string {
  const n = base + f.offset;
  switch (f.encoding) {
    case "bit":
      return `hr:${n}.${f.bit ?? 0}`;
    case "uint16":
      return `hr:${n}:uint16`;
    case "uint32":
    case "int32":
      return `hr:${n}:${f.encoding}:abcd`;
  }
}

/**
 * The default map as cellio points, with holding-register addresses from
 * `base` (= the first M register of the block). Throws RangeError when the
 * command block would leave M000–M559 or the status block M000–M999.
 */
export function motomanPoints(base = 0, opts: { axes?: number } = {}): MotomanPoint[] {
  const cmdLast = base + MOTOMAN_COMMAND_BLOCK.offset + MOTOMAN_COMMAND_BLOCK.length - 1;
  const statusLast = base + MOTOMAN_WINDOW_LENGTH - 1;
  if (!Number.isInteger(base) || base < 0) throw new RangeError(`base must be a non-negative integer, got ${base}`);
  if (cmdLast > M_WRITABLE_LAST) throw new RangeError(`command registers end at M${cmdLast}, past M${M_WRITABLE_LAST}`);
  if (statusLast > M_READABLE_LAST) throw new RangeError(`status registers end at M${statusLast}, past M${M_READABLE_LAST}`);
  return fieldsFor(opts.axes ?? 6).map((f) => {
    const gain = f.gain;
    const p: MotomanPoint = {
      name: f.name,
      address: addressOf(f, base),
      type: f.encoding === "bit" ? "bool" : gain === undefined ? "int" : "float",
      direction: f.direction,
      description: f.description,
      ...(f.safe === undefined ? {} : { safe: f.safe }),
      ...(f.unit === undefined ? {} : { unit: f.unit }),
      ...(gain === undefined ? {} : { scale: { gain } }),
    };
    return Object.freeze(p);
  });
}

/** The default map at base 0 with six axes. */
export const MOTOMAN_YRC1000_POINTS: readonly MotomanPoint[] = Object.freeze(motomanPoints(0));

// --- register codec ------------------------------------------------------------

type Values = Map<string, boolean | number>;

function writeFields(fields: readonly MotomanField[], values: Values): Map<number, number> {
  const regs = new Map<number, number>();
  for (const f of fields) {
    const v = values.get(f.name);
    if (v === undefined) throw new Error(`no value for ${f.name}`);
    if (f.encoding === "bit") {
      const word = regs.get(f.offset) ?? 0;
      regs.set(f.offset, v === true ? word | (1 << (f.bit ?? 0)) : word);
      continue;
    }
    const raw = Math.round(Number(v) / (f.gain ?? 1));
    if (f.encoding === "uint16") {
      regs.set(f.offset, clamp(raw, 0, 0xffff));
    } else {
      const r = f.encoding === "int32" ? clamp(raw, -0x80000000, 0x7fffffff) : clamp(raw, 0, 0xffffffff);
      const u = r >>> 0;
      regs.set(f.offset, u >>> 16);
      regs.set(f.offset + 1, u & 0xffff);
    }
  }
  return regs;
}

function readFields(fields: readonly MotomanField[], words: ArrayLike<number>): Values {
  const word = (i: number): number => {
    const w = words[i];
    if (w === undefined) throw new RangeError(`register window too short: no word at offset ${i}`);
    return w & 0xffff;
  };
  const values: Values = new Map();
  for (const f of fields) {
    if (f.encoding === "bit") {
      values.set(f.name, ((word(f.offset) >> (f.bit ?? 0)) & 1) === 1);
      continue;
    }
    let raw = word(f.offset);
    if (f.encoding !== "uint16") raw = raw * 0x10000 + word(f.offset + 1);
    if (f.encoding === "int32" && raw >= 0x80000000) raw -= 0x100000000;
    values.set(f.name, f.gain === undefined ? raw : raw * f.gain);
  }
  return values;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

const COMMAND_FIELDS = MOTOMAN_YRC1000_MAP.filter((f) => f.direction === "output");
const COMMAND_KEYS: ReadonlyArray<readonly [string, keyof MotomanCommands]> = [
  ["ext_servo_on", "extServoOn"], ["ext_start", "extStart"], ["ext_hold", "extHold"], ["alarm_reset", "alarmReset"],
  ["job_strobe", "jobStrobe"], ["job_number", "jobNumber"], ["heartbeat", "heartbeat"], ["watchdog_ms", "watchdogMs"],
];
const STATUS_KEYS: ReadonlyArray<readonly [string, keyof MotomanStatus]> = [
  ["servo_on", "servoOn"], ["operating", "operating"], ["hold", "hold"], ["alarm", "alarm"], ["error", "error"],
  ["remote", "remote"], ["estop_ok", "estopOk"], ["in_zone", "inZone"], ["cycle_complete", "cycleComplete"],
  ["job_received", "jobReceived"], ["energy_saving", "energySaving"], ["start_permit", "startPermit"],
  ["watchdog_tripped", "watchdogTripped"], ["major_alarm", "majorAlarm"], ["minor_alarm", "minorAlarm"],
  ["estop_external_ok", "estopExternalOk"], ["estop_pendant_ok", "estopPendantOk"],
  ["estop_controller_ok", "estopControllerOk"], ["continuous_cycle", "continuousCycle"], ["alarm_code", "alarmCode"],
  ["error_code", "errorCode"], ["job_echo", "jobEcho"], ["current_job", "currentJob"], ["job_phase", "jobPhaseIndex"],
  ["speed_override", "speedOverride"], ["watchdog_ms_readback", "watchdogMs"], ["cycle_count", "cycleCount"],
  ["job_elapsed_ms", "jobElapsedMs"],
];

/** The command block as register words, keyed by offset from `base`. */
export function encodeCommandRegisters(c: MotomanCommands): Map<number, number> {
  return writeFields(COMMAND_FIELDS, new Map(COMMAND_KEYS.map(([name, key]) => [name, c[key]])));
}

/** The cell's commands from the window (`words[0]` is the register at `base`). */
export function decodeCommandRegisters(words: ArrayLike<number>): MotomanCommands {
  const v = readFields(COMMAND_FIELDS, words);
  return Object.freeze(Object.fromEntries(COMMAND_KEYS.map(([name, key]) => [key, v.get(name)])) as unknown as MotomanCommands);
}

/** The status block as register words, keyed by offset from `base`; joints the robot lacks read 0. */
export function encodeStatusRegisters(s: MotomanStatus): Map<number, number> {
  const values: Values = new Map(STATUS_KEYS.map(([name, key]) => [name, s[key] as boolean | number]));
  values.set("play", s.mode === "play");
  values.set("teach", s.mode === "teach");
  for (let i = 0; i < MOTOMAN_MAX_AXES; i++) values.set(`joint_${i + 1}`, s.jointPositions[i] ?? 0);
  return writeFields(MOTOMAN_YRC1000_MAP.filter((f) => f.direction === "input"), values);
}

/** The robot's status from the window (`words[0]` is the register at `base`). */
export function decodeStatusRegisters(words: ArrayLike<number>, axes = 6): MotomanStatus {
  const fields = fieldsFor(axes).filter((f) => f.direction === "input");
  const v = readFields(fields, words);
  const entries = STATUS_KEYS.map(([name, key]) => [key, v.get(name)] as const);
  const jointPositions = Array.from({ length: axes }, (_, i) => Number(v.get(`joint_${i + 1}`)));
  const status = { ...Object.fromEntries(entries), mode: v.get("play") === true ? "play" : "teach", jointPositions };
  // The entries carry exactly the MotomanStatus keys listed in STATUS_KEYS; the test round-trips every one.
  return Object.freeze(status as unknown as MotomanStatus);
}
