/**
 * A YRC1000-like robot controller as a pure state machine: no I/O, no timers.
 *
 * The cell's command signals are levels (`setInputs`), scanned on `tick(nowMs)`
 * like a controller's I/O scan: edges are found by comparing with the inputs
 * of the previous tick, so a pulse shorter than one tick is never seen.
 * Operator and fault actions (mode key, e-stops, alarms) act at once.
 * The behaviour and every choice made where the reference is silent are
 * documented in ./README.md.
 */
import {
  HSES_REFUSAL as REFUSAL,
  type HsesRefusal,
  type MotomanCommands,
  type MotomanEstop,
  type MotomanMode,
  type MotomanStatus,
} from "../../src/profiles/motoman-yrc1000.js";
import { advanceRun, DEFAULT_AXES, homePose, phaseAt, validateJobs, type JobDef, type JobRun } from "./jobs.js";

export { HSES_REFUSAL as REFUSAL, describeRefusal } from "../../src/profiles/motoman-yrc1000.js";
export type RobotMode = MotomanMode;
export type EstopSource = MotomanEstop;
/** Command levels from the cell; they take effect at the next `tick`. */
export type RobotInputs = MotomanCommands;

/** Everything the window carries, plus the phase name. */
export interface RobotStatus extends MotomanStatus {
  /** "idle" or the current phase's name. */
  readonly jobPhase: string;
}

export interface RobotInitialState {
  mode: RobotMode;
  remote: boolean;
  servoOn: boolean;
  speedOverride: number;
  energySaving: boolean;
  continuousCycle: boolean;
  jointPositions: readonly number[];
}

export interface RobotModelOptions {
  jobs: readonly JobDef[];
  axes?: number;
  initial?: Partial<RobotInitialState>;
  /** Delay between seeing the strobe and echoing the job, ms (default 10). */
  echoDelayMs?: number;
  /** Length of the cycle-complete pulse, ms (default 200). */
  cycleCompletePulseMs?: number;
}

const NO_INPUTS: RobotInputs = Object.freeze({
  extServoOn: false,
  extStart: false,
  extHold: false,
  alarmReset: false,
  jobNumber: 0,
  jobStrobe: false,
  heartbeat: 0,
  watchdogMs: 0,
});

export class RobotModel {
  readonly axes: number;
  private readonly jobs: ReadonlyMap<number, JobDef>;
  private readonly echoDelayMs: number;
  private readonly pulseMs: number;

  private inputs: RobotInputs = NO_INPUTS;
  private scanned: RobotInputs = NO_INPUTS;
  private lastNow: number | undefined;

  private mode: RobotMode;
  private remote: boolean;
  private servo: boolean;
  private energySaving: boolean;
  private continuousCycle: boolean;
  private speedOverride: number;
  private joints: number[];
  private readonly estop: Record<EstopSource, boolean> = { external: false, pendant: false, controller: false };
  private alarms: { code: number; major: boolean; resettable: boolean }[] = [];
  private errorCode = 0;

  private active: JobRun | null = null;
  private operating = false;
  private holdLatched = false;
  private cycleCount = 0;
  private cycleCompleteUntil = Number.NEGATIVE_INFINITY;

  private jobEcho = 0;
  private jobReceived = false;
  private strobeSince: number | null = null;
  private strobeDone = false;

  private wdLastChange: number | null = null;
  private wdLastHeartbeat = 0;
  private wdTripped = false;

  constructor(opts: RobotModelOptions) {
    this.axes = opts.axes ?? DEFAULT_AXES;
    if (!Number.isInteger(this.axes) || this.axes < 1 || this.axes > 8) throw new RangeError("axes must be 1..8");
    validateJobs(opts.jobs, this.axes);
    this.jobs = new Map(opts.jobs.map((j) => [j.number, j]));
    this.echoDelayMs = opts.echoDelayMs ?? 10;
    this.pulseMs = opts.cycleCompletePulseMs ?? 200;
    const init = opts.initial ?? {};
    this.mode = init.mode ?? "play";
    this.remote = (init.remote ?? true) && this.mode === "play";
    this.servo = (init.servoOn ?? false) && this.remote;
    this.energySaving = init.energySaving ?? false;
    this.continuousCycle = init.continuousCycle ?? false;
    this.speedOverride = 100;
    if (init.speedOverride !== undefined) this.setSpeedOverride(init.speedOverride);
    const joints = init.jointPositions ?? homePose(this.axes);
    if (joints.length !== this.axes) throw new RangeError(`jointPositions needs ${this.axes} values`);
    this.joints = [...joints];
  }

  /** Latch new command levels; they take effect at the next `tick`. */
  setInputs(next: Partial<RobotInputs>): void {
    const merged = { ...this.inputs, ...next };
    for (const k of ["jobNumber", "watchdogMs"] as const) {
      const v = merged[k];
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${k} must be an integer 0..65535`);
    }
    this.inputs = Object.freeze(merged);
  }

  /** Advance time to `nowMs` (monotonic), then scan the inputs. */
  tick(nowMs: number): void {
    if (!Number.isFinite(nowMs)) throw new RangeError("nowMs must be finite");
    if (this.lastNow !== undefined && nowMs < this.lastNow) {
      throw new RangeError(`time went backwards: ${nowMs} < ${this.lastNow}`);
    }
    const dt = this.lastNow === undefined ? 0 : nowMs - this.lastNow;
    this.lastNow = nowMs;
    this.advanceJob(dt, nowMs);
    this.scan(nowMs);
  }

  setMode(mode: RobotMode): void {
    if (mode === this.mode) return;
    this.mode = mode;
    this.servo = false; // a mode change drops servo power, as on the pendant key switch
    this.operating = false; // the job stays current (paused): a start resumes it
    if (mode === "teach") this.remote = false;
  }

  /** Ignored in teach mode: teach forces remote off. */
  setRemote(on: boolean): void {
    this.remote = on && this.mode === "play";
  }

  pressEstop(which: EstopSource): void {
    this.estop[which] = true;
    this.servo = false;
    this.operating = false; // the job stays current (paused): a start resumes it
  }

  /** Releasing never restores servo power: the cell must request it again. */
  releaseEstop(which: EstopSource): void {
    this.estop[which] = false;
  }

  raiseAlarm(code: number, opts: { major: boolean; resettable: boolean }): void {
    if (!Number.isInteger(code) || code < 1 || code > 0xffff) throw new RangeError("alarm code must be 1..65535");
    this.alarms = this.alarms.filter((a) => a.code !== code);
    this.alarms.push({ code, major: opts.major, resettable: opts.resettable });
    this.operating = false; // the job stays current (paused): a start resumes it
    if (opts.major) this.servo = false;
  }

  /** Clears one alarm whatever its kind (the cause was repaired, power cycled). */
  clearAlarm(code: number): void {
    this.alarms = this.alarms.filter((a) => a.code !== code);
  }

  setSpeedOverride(pct: number): void {
    if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new RangeError("speed override must be 0..100 %");
    this.speedOverride = pct;
  }

  /** Energy saving only starts while no job is running (ignored otherwise). */
  setEnergySaving(on: boolean): void {
    if (on && this.operating) return;
    this.energySaving = on;
  }

  setContinuousCycle(on: boolean): void {
    this.continuousCycle = on;
  }

  get status(): RobotStatus {
    const now = this.lastNow ?? Number.NEGATIVE_INFINITY;
    const at = this.active ? phaseAt(this.active.job, this.active.elapsedMs) : null;
    const servoOn = this.servo && !this.energySaving;
    const alarm = this.alarms.length > 0;
    const estopOk = !this.estop.external && !this.estop.pendant && !this.estop.controller;
    const extHold = this.scanned.extHold || this.wdTripped;
    return Object.freeze({
      mode: this.mode,
      remote: this.remote,
      servoOn,
      operating: this.operating,
      hold: extHold || this.holdLatched,
      alarm,
      majorAlarm: this.alarms.some((a) => a.major),
      minorAlarm: this.alarms.some((a) => !a.major),
      alarmCode: this.alarms[this.alarms.length - 1]?.code ?? 0,
      error: this.errorCode !== 0,
      errorCode: this.errorCode,
      estopExternalOk: !this.estop.external,
      estopPendantOk: !this.estop.pendant,
      estopControllerOk: !this.estop.controller,
      estopOk,
      inZone: at?.phase.inZone === true,
      cycleComplete: now < this.cycleCompleteUntil,
      jobEcho: this.jobEcho,
      jobReceived: this.jobReceived,
      currentJob: this.active?.job.number ?? 0,
      jobPhase: at?.phase.name ?? "idle",
      jobPhaseIndex: at ? at.index + 1 : 0,
      jobElapsedMs: this.active?.elapsedMs ?? 0,
      speedOverride: this.speedOverride,
      jointPositions: Object.freeze([...this.joints]),
      cycleCount: this.cycleCount,
      continuousCycle: this.continuousCycle,
      energySaving: this.energySaving,
      startPermit:
        this.mode === "play" && this.remote && servoOn && !alarm && estopOk && !extHold && !this.operating,
      watchdogMs: this.scanned.watchdogMs,
      watchdogTripped: this.wdTripped,
    });
  }

  // --- internals ---------------------------------------------------------

  private advanceJob(dt: number, now: number): void {
    if (!this.operating || !this.active) return;
    const step = advanceRun(this.active, (dt * this.speedOverride) / 100, this.continuousCycle);
    this.active = step.run;
    this.joints = step.joints;
    if (!step.completed) return;
    this.cycleCount++;
    this.cycleCompleteUntil = now + this.pulseMs;
    this.operating = step.run !== null;
  }

  private scan(now: number): void {
    const i = this.inputs;
    const p = this.scanned;
    this.scanned = i;
    this.scanWatchdog(now);
    if (i.alarmReset && !p.alarmReset) {
      this.alarms = this.alarms.filter((a) => !a.resettable);
      this.errorCode = 0;
    }
    if ((i.extHold || this.wdTripped) && this.operating) {
      this.operating = false; // the job stays current (paused): a start resumes it
      this.holdLatched = true;
    }
    this.scanStrobe(now);
    if (i.extServoOn && !p.extServoOn) this.requestServoOn();
    if (i.extStart && !p.extStart) this.requestStart();
  }

  private scanWatchdog(now: number): void {
    const { watchdogMs, heartbeat } = this.inputs;
    if (watchdogMs === 0) {
      this.wdLastChange = null;
      this.wdTripped = false;
      return;
    }
    if (this.wdLastChange === null || heartbeat !== this.wdLastHeartbeat) {
      this.wdLastChange = now;
      this.wdLastHeartbeat = heartbeat;
    }
    this.wdTripped = now - this.wdLastChange > watchdogMs;
  }

  private scanStrobe(now: number): void {
    if (!this.inputs.jobStrobe) {
      this.jobReceived = false;
      this.strobeSince = null;
      this.strobeDone = false;
      return;
    }
    this.strobeSince ??= now;
    if (this.strobeDone || now - this.strobeSince < this.echoDelayMs) return;
    this.strobeDone = true;
    if (this.mode !== "play") return this.refuse(REFUSAL.WRONG_MODE);
    if (!this.remote) return this.refuse(REFUSAL.REMOTE_NOT_SET);
    if (this.operating) return this.refuse(REFUSAL.OPERATING);
    const n = this.inputs.jobNumber;
    if (!this.jobs.has(n)) return this.refuse(REFUSAL.NO_JOB);
    this.jobEcho = n;
    this.jobReceived = true;
    this.active = null; // a new selection moves the cursor to the top of the new job
    this.errorCode = 0;
  }

  private requestServoOn(): void {
    if (this.estop.external || this.estop.pendant || this.estop.controller) return this.refuse(REFUSAL.SERVO_CANNOT_ON);
    if (this.mode !== "play") return this.refuse(REFUSAL.WRONG_MODE);
    if (!this.remote) return this.refuse(REFUSAL.REMOTE_NOT_SET);
    if (this.alarms.length > 0) return this.refuse(REFUSAL.ALARM);
    this.servo = true;
    this.energySaving = false; // a servo-on command wakes the robot from energy saving
    this.errorCode = 0;
  }

  private requestStart(): void {
    const s = this.status;
    if (!s.estopOk) return this.refuse(REFUSAL.START_PROHIBITED);
    if (s.mode !== "play") return this.refuse(REFUSAL.WRONG_MODE);
    if (!s.remote) return this.refuse(REFUSAL.REMOTE_NOT_SET);
    if (s.alarm) return this.refuse(REFUSAL.ALARM);
    if (s.operating) return this.refuse(REFUSAL.OPERATING);
    if (this.scanned.extHold || this.wdTripped) return this.refuse(REFUSAL.HOLD_EXTERNAL);
    if (!s.servoOn) return this.refuse(REFUSAL.SERVO_OFF);
    const job = this.active?.job ?? this.jobs.get(this.jobEcho);
    if (!job) return this.refuse(REFUSAL.NO_JOB);
    this.active ??= { job, elapsedMs: 0, startPose: [...this.joints] };
    this.operating = true;
    this.holdLatched = false;
    this.cycleCompleteUntil = Number.NEGATIVE_INFINITY;
    this.errorCode = 0;
  }

  private refuse(code: HsesRefusal): void {
    this.errorCode = code;
  }
}
