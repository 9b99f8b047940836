/**
 * Motoman YRC1000 device profile: the DEFAULT layout of the robot's signals
 * (./motoman-yrc1000.ts) in the controller's Modbus window, as data, and its
 * expansion into cellio points.
 *
 * A YRC1000 Modbus server exposes a window of M registers as holding
 * registers; which bit carries which signal is decided by the integrator's
 * Concurrent-I/O ladder, not by Yaskawa (reference §1.2). This file is the
 * layout the simulator serves and cellio expects by default; a cell whose
 * ladder differs gets its own points. Modbus holding register N is taken to be
 * M register N, so `base` is the first M register of the block: commands must
 * lie in M000–M559 (the part writable from outside), status in M000–M999.
 * The table: simulators/motoman/README.md.
 */

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

/** The default map's fields for `axes` axes (joints beyond it left out); RangeError outside 1..MOTOMAN_MAX_AXES. */
export function motomanFields(axes: number): MotomanField[] {
  if (!Number.isInteger(axes) || axes < 1 || axes > MOTOMAN_MAX_AXES) throw new RangeError(`axes must be 1..${MOTOMAN_MAX_AXES}`);
  return MOTOMAN_YRC1000_MAP.filter((f) => !/^joint_\d+$/.test(f.name) || Number(f.name.slice(6)) <= axes);
}

/** A field's cellio point type: a bit is bool; a register value with a gain is float, without one int. */
export function pointType(f: MotomanField): MotomanPoint["type"] {
  if (f.encoding === "bit") return "bool";
  return f.gain === undefined ? "int" : "float";
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
  return motomanFields(opts.axes ?? 6).map((f) => {
    const gain = f.gain;
    const p: MotomanPoint = {
      name: f.name,
      address: addressOf(f, base),
      type: pointType(f),
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
