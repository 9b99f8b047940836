/**
 * The periodic cycle summary (`cellio run --summary-every S`): one log line
 * per window with the loop's lateness, the input phase's p99, the loop
 * thread's longest garbage-collection pause, skipped cycles, input deadline
 * misses, the mode and the devices that are not good. Lateness, phases and
 * GC are over the window; counters since start.
 */
import type { Logger } from "./infra/logger.js";
import { GcPauseMonitor, gcPausesOfThisThread, type GcPauseSource } from "./infra/gc-monitor.js";
import type { ControlLoop } from "./loop/control-loop.js";
import type { DeviceRunner } from "./loop/device-runner.js";

export interface CycleSummaryDeps {
  readonly loop: Pick<ControlLoop, "stats" | "mode">;
  readonly runners: readonly Pick<DeviceRunner, "name" | "state">[];
  readonly periodMs: number;
  readonly log: Logger;
  /** This thread's GC pauses (default: perf_hooks). */
  readonly gc?: GcPauseSource;
}

export class CycleSummary {
  private timer: ReturnType<typeof setInterval> | undefined;
  private gcCount = 0;
  private gcMaxMs = 0;
  private readonly gc: GcPauseMonitor;

  constructor(private readonly deps: CycleSummaryDeps) {
    this.gc = new GcPauseMonitor((ms) => {
      this.gcCount++;
      if (ms > this.gcMaxMs) this.gcMaxMs = ms;
    }, deps.gc ?? gcPausesOfThisThread);
  }

  /** Watch GC pauses from now on, and log a line every `everyMs` (0: never; `log()` still works). */
  start(everyMs: number): void {
    this.gc.start();
    if (everyMs > 0 && this.timer === undefined) {
      this.timer = setInterval(() => this.log(), everyMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.gc.stop();
  }

  /** Log the window's line, and start a new window. */
  log(): void {
    const { loop, runners, periodMs } = this.deps;
    const s = loop.stats;
    const sum = s.summary();
    const bad = runners.filter((r) => r.state !== "good").map((r) => `${r.name}:${r.state}`);
    const gcMax = round(this.gcMaxMs);
    this.deps.log.info(
      {
        mode: loop.mode,
        cycles: sum.cycles,
        periodMs,
        latenessP99Ms: round(sum.lateness.p99),
        latenessMaxMs: round(sum.lateness.max),
        cycleP99Ms: round(sum.duration.p99),
        inputP99Ms: round(sum.inputPhase.p99),
        outputP99Ms: round(sum.outputPhase.p99),
        gcPauses: this.gcCount,
        gcPauseMaxMs: gcMax,
        skipped: sum.skipped,
        overruns: sum.overruns,
        inputMisses: sum.inputMisses,
        devicesNotGood: bad,
      },
      `cycle summary: T=${periodMs} ms, lateness p99 ${round(sum.lateness.p99)} ms, max ${round(sum.lateness.max)} ms, input phase p99 ${round(sum.inputPhase.p99)} ms, GC pause max ${gcMax} ms, skipped ${sum.skipped}, misses ${sum.inputMisses}, mode ${loop.mode}`,
    );
    s.resetWindow();
    this.gcCount = 0;
    this.gcMaxMs = 0;
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
