/**
 * The overrun policy, pure: warn above warn_pct of the period, fault after
 * N consecutive overruns. A fault latches until reset. `logOverrun` says it
 * in the log, once per run of overruns.
 */
import type { Logger } from "../infra/logger.js";

export type OverrunVerdict = "ok" | "warn" | "overrun" | "fault";

export class OverrunPolicy {
  private consecutive = 0;
  private faultedFlag = false;

  constructor(
    private readonly periodMs: number,
    private readonly warnPct: number,
    private readonly faultAfter: number,
  ) {}

  get faulted(): boolean {
    return this.faultedFlag;
  }

  get consecutiveOverruns(): number {
    return this.consecutive;
  }

  /** Judge one cycle's execution time. Returns "fault" only on the cycle that trips it. */
  /** With `armed` false (start-up) overruns are counted but never fault. */
  judge(durationMs: number, armed = true): OverrunVerdict {
    if (durationMs > this.periodMs) {
      this.consecutive++;
      if (armed && !this.faultedFlag && this.consecutive >= this.faultAfter) {
        this.faultedFlag = true;
        return "fault";
      }
      return "overrun";
    }
    this.consecutive = 0;
    return durationMs > (this.periodMs * this.warnPct) / 100 ? "warn" : "ok";
  }

  /** Clear a fault. Refused (false) while cycles are still overrunning. */
  reset(): boolean {
    if (this.consecutive > 0) return false;
    this.faultedFlag = false;
    return true;
  }
}

/** Where one cycle's time went (ms), for the overrun line. */
export interface CycleTimes {
  readonly cycle: number;
  readonly durationMs: number;
  readonly periodMs: number;
  readonly latenessMs: number;
  readonly inputMs: number;
  readonly logicMs: number;
  readonly outputMs: number;
}

/**
 * Log an overrun verdict: the first overrun of a run of them (while starting,
 * outputs are held safe and an overrun cannot fault the cell, and the first
 * cycles run cold code: news, not a warning), and the fault. Where the time
 * went: a phase far over its budget (its deadline is a timer) says the thread
 * was held, not that the devices were slow.
 */
export function logOverrun(log: Logger, verdict: "overrun" | "fault", policy: OverrunPolicy, starting: boolean, times: CycleTimes): void {
  if (verdict === "fault") {
    log.error({ cycle: times.cycle, consecutive: policy.consecutiveOverruns }, "overrun fault: every output is driven to its safe value until the fault is reset");
  } else if (policy.consecutiveOverruns === 1) {
    if (starting) log.info(times, "cycle overrun while starting (outputs held safe)");
    else log.warn(times, "cycle overrun");
  }
}
