/**
 * Motoman YRC1000 device profile, the register codec: the command and status
 * blocks of the default window (./motoman-yrc1000-map.ts) as register words,
 * to and from the robot's signals (./motoman-yrc1000.ts). Used by the
 * simulator's Modbus face and by tests that read the window directly.
 */
import type { MotomanCommands, MotomanStatus } from "./motoman-yrc1000.js";
import { MOTOMAN_MAX_AXES, MOTOMAN_YRC1000_MAP, motomanFields, type MotomanField } from "./motoman-yrc1000-map.js";

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
  const fields = motomanFields(axes).filter((f) => f.direction === "input");
  const v = readFields(fields, words);
  const entries = STATUS_KEYS.map(([name, key]) => [key, v.get(name)] as const);
  const jointPositions = Array.from({ length: axes }, (_, i) => Number(v.get(`joint_${i + 1}`)));
  const status = { ...Object.fromEntries(entries), mode: v.get("play") === true ? "play" : "teach", jointPositions };
  // The entries carry exactly the MotomanStatus keys listed in STATUS_KEYS; the test round-trips every one.
  return Object.freeze(status as unknown as MotomanStatus);
}
