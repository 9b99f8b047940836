/**
 * The overrun policy, pure: warn above warn_pct of the period, fault after
 * N consecutive overruns. A fault latches until reset.
 */
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
