/**
 * Jobs of the simulated YRC1000: a job is a timed cycle through named phases,
 * each ending at a target joint pose. Pure data and pure functions, no timers.
 *
 * A job's time is "job time at 100 % speed override": the model advances it by
 * dt × override / 100, so a slower override stretches the cycle as on a robot.
 */

export interface JobPhaseDef {
  /** Phase name as reported in `status.jobPhase` ("idle" is reserved). */
  readonly name: string;
  /** Share of the job's duration, 0 < fraction ≤ 1; the shares add up to 1. */
  readonly fraction: number;
  /** True while the robot is inside the shared zone during this phase. */
  readonly inZone?: boolean;
  /** Joint pose (degrees) reached at the end of the phase; one value per axis. */
  readonly pose: readonly number[];
}

export interface JobDef {
  /** Job number selected by the cell (1–65535; 0 means "no job"). */
  readonly number: number;
  readonly name: string;
  /** Cycle time at 100 % speed override, ms. */
  readonly durationMs: number;
  readonly phases: readonly JobPhaseDef[];
}

/** Where a job is at a given job time. */
export interface PhaseAt {
  /** 0-based index into `job.phases`. */
  readonly index: number;
  readonly phase: JobPhaseDef;
  /** 0…1 progress inside the phase. */
  readonly progress: number;
}

export const DEFAULT_AXES = 6;

/** A plausible home pose for a 6-axis arm (degrees); extra axes sit at 0. */
export function homePose(axes: number = DEFAULT_AXES): number[] {
  const six = [0, -20, 30, 0, 50, 0];
  return Array.from({ length: axes }, (_, i) => six[i] ?? 0);
}

/** Checks a job list against the axis count; throws RangeError on the first problem. */
export function validateJobs(jobs: readonly JobDef[], axes: number): void {
  const seen = new Set<number>();
  for (const job of jobs) {
    const where = `job ${job.number} (${job.name})`;
    if (!Number.isInteger(job.number) || job.number < 1 || job.number > 0xffff) {
      throw new RangeError(`${where}: job number must be an integer 1..65535`);
    }
    if (seen.has(job.number)) throw new RangeError(`${where}: duplicate job number`);
    seen.add(job.number);
    if (!(job.durationMs > 0) || !Number.isFinite(job.durationMs)) {
      throw new RangeError(`${where}: durationMs must be a positive number`);
    }
    if (job.phases.length === 0) throw new RangeError(`${where}: needs at least one phase`);
    let sum = 0;
    for (const p of job.phases) {
      if (p.name === "idle") throw new RangeError(`${where}: phase name "idle" is reserved`);
      if (!(p.fraction > 0) || p.fraction > 1) throw new RangeError(`${where}: phase ${p.name} fraction must be in (0, 1]`);
      if (p.pose.length !== axes) {
        throw new RangeError(`${where}: phase ${p.name} pose has ${p.pose.length} values, the robot has ${axes} axes`);
      }
      sum += p.fraction;
    }
    if (Math.abs(sum - 1) > 1e-9) throw new RangeError(`${where}: phase fractions add up to ${sum}, not 1`);
  }
}

/** The phase a job is in at job time `elapsedMs` (clamped to the job's span). */
export function phaseAt(job: JobDef, elapsedMs: number): PhaseAt {
  const t = Math.min(Math.max(elapsedMs, 0), job.durationMs);
  let start = 0;
  for (let i = 0; i < job.phases.length; i++) {
    const phase = job.phases[i]!;
    const span = phase.fraction * job.durationMs;
    const isLast = i === job.phases.length - 1;
    if (t < start + span || isLast) {
      const progress = span > 0 ? Math.min(1, (t - start) / span) : 1;
      return { index: i, phase, progress };
    }
    start += span;
  }
  // validateJobs guarantees at least one phase, so the loop always returns.
  throw new RangeError(`job ${job.number} has no phases`);
}

/**
 * Joint pose at job time `elapsedMs`: each phase moves from the previous
 * phase's target (the first from `startPose`) to its own target along a
 * smoothstep, so positions and velocities are continuous across phases.
 */
export function poseAt(job: JobDef, elapsedMs: number, startPose: readonly number[]): number[] {
  const at = phaseAt(job, elapsedMs);
  const from = at.index === 0 ? startPose : job.phases[at.index - 1]!.pose;
  const to = at.phase.pose;
  const s = at.progress * at.progress * (3 - 2 * at.progress);
  return to.map((target, axis) => {
    const a = from[axis] ?? target;
    return a + (target - a) * s;
  });
}

/** A job in progress: the job, its job time, and the pose it started from. */
export interface JobRun {
  readonly job: JobDef;
  readonly elapsedMs: number;
  readonly startPose: readonly number[];
}

export interface RunStep {
  /** The run after the step; null when the job ended and does not repeat. */
  readonly run: JobRun | null;
  readonly joints: number[];
  /** The job reached its end during this step. */
  readonly completed: boolean;
}

/**
 * Advances a run by `jobMs` of job time. At the end the job completes; with
 * `repeat` (continuous cycle) a new run starts from the end pose and carries
 * the overshoot (at most one completion per step).
 */
export function advanceRun(run: JobRun, jobMs: number, repeat: boolean): RunStep {
  const { job } = run;
  const elapsed = run.elapsedMs + jobMs;
  if (elapsed < job.durationMs) {
    return { run: { ...run, elapsedMs: elapsed }, joints: poseAt(job, elapsed, run.startPose), completed: false };
  }
  const end = poseAt(job, job.durationMs, run.startPose);
  if (!repeat) return { run: null, joints: end, completed: true };
  const next: JobRun = { job, elapsedMs: Math.min(elapsed - job.durationMs, job.durationMs), startPose: end };
  return { run: next, joints: poseAt(job, next.elapsedMs, end), completed: true };
}

/**
 * Builds a pick-or-place style job: approach (30 %), in_zone (20 %),
 * `action` (20 %, in zone), retreat (30 %, back to home).
 */
export function zoneJob(
  number: number,
  name: string,
  durationMs: number,
  action: string,
  reach: readonly number[],
  home: readonly number[],
): JobDef {
  const above = reach.map((v, i) => (i === 2 ? v - 15 : v));
  return {
    number,
    name,
    durationMs,
    phases: [
      { name: "approach", fraction: 0.3, pose: above },
      { name: "in_zone", fraction: 0.2, inZone: true, pose: [...reach] },
      { name: action, fraction: 0.2, inZone: true, pose: reach.map((v, i) => (i === 5 ? v + 90 : v)) },
      { name: "retreat", fraction: 0.3, pose: [...home] },
    ],
  };
}

/** The demo cell's jobs: 1 PICK_A and 2 PLACE_B enter the zone, 3 HOME does not. */
export function defaultJobs(axes: number = DEFAULT_AXES): JobDef[] {
  const home = homePose(axes);
  const pickReach = home.map((v, i) => v + ([60, 35, 20, 0, -25, 0][i] ?? 0));
  const placeReach = home.map((v, i) => v + ([-70, 30, 25, 0, -20, 0][i] ?? 0));
  return [
    zoneJob(1, "PICK_A", 4000, "pick", pickReach, home),
    zoneJob(2, "PLACE_B", 4000, "place", placeReach, home),
    { number: 3, name: "HOME", durationMs: 1500, phases: [{ name: "homing", fraction: 1, pose: home }] },
  ];
}
