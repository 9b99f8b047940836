/**
 * The systemd watchdog, fed by the control loop, not by a timer alone.
 *
 * A bare setInterval ping proves only that the event loop runs. Here a timer
 * checks, every half of WATCHDOG_USEC (as sd_watchdog_enabled(3) advises),
 * whether the loop's cycle counter has advanced recently, and sends
 * WATCHDOG=1 only then. A loop that stalls while the event loop lives (a lost
 * tick timer, a cycle that never finishes) stops the pings, and systemd kills
 * and restarts cellio after WatchdogSec (the heartbeat check of OpenPLC's
 * watchdog thread, with systemd as the enforcer).
 */
import type { Clock } from "./clock.js";
import type { Logger } from "./logger.js";
import type { NotifyFields } from "./sd-notify.js";

/**
 * The ping interval systemd asks for (half of WATCHDOG_USEC, in ms), or
 * undefined when there is no watchdog for this process: WATCHDOG_USEC unset
 * or invalid, or WATCHDOG_PID naming another process (sd_watchdog_enabled(3)).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d+$/.test(usec)) return undefined;
  const wpid = env.WATCHDOG_PID;
  if (wpid !== undefined && wpid !== "" && Number(wpid) !== pid) return undefined;
  const ms = Number(usec) / 1000;
  return ms > 0 ? ms / 2 : undefined;
}

export interface LoopWatchdogOptions {
  readonly notifier: { notify(fields: NotifyFields): void };
  /** The loop's completed-cycle counter. */
  readonly cycles: () => number;
  /** The loop's period: with a slow loop the counter may legitimately sit still for a while. */
  readonly periodMs: number;
  /** How often to check and ping (half of WATCHDOG_USEC). */
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly log: Logger;
}

export class LoopWatchdog {
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastCount = -1;
  private lastAdvanceMs = 0;
  private stalledFlag = false;
  /** How long the counter may stand still before the loop counts as stalled. */
  readonly graceMs: number;
  /** Pings sent (for tests and diagnostics). */
  pings = 0;

  constructor(private readonly o: LoopWatchdogOptions) {
    // Three periods: a late or skipped tick is not a stall; a slow loop keeps its pings between cycles.
    this.graceMs = 3 * o.periodMs;
  }

  /** The loop has not advanced for longer than the grace time (pings withheld). */
  get stalled(): boolean {
    return this.stalledFlag;
  }

  /** Start checking; pings at once when the loop has advanced. */
  start(): void {
    if (this.timer) return;
    this.lastCount = this.o.cycles();
    this.lastAdvanceMs = this.o.clock.now();
    this.check();
    this.timer = setInterval(() => this.check(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check: ping when the counter moved within the grace time. */
  check(): void {
    const now = this.o.clock.now();
    const count = this.o.cycles();
    if (count !== this.lastCount) {
      this.lastCount = count;
      this.lastAdvanceMs = now;
    }
    if (now - this.lastAdvanceMs <= this.graceMs) {
      if (this.stalledFlag) {
        this.stalledFlag = false;
        this.o.log.info({ cycle: count }, "control loop advancing again: watchdog pings resumed");
        this.o.notifier.notify({ WATCHDOG: 1, STATUS: `running, cycle ${count}` });
      } else {
        this.o.notifier.notify({ WATCHDOG: 1 });
      }
      this.pings++;
      return;
    }
    if (!this.stalledFlag) {
      this.stalledFlag = true;
      const sinceMs = Math.round(now - this.lastAdvanceMs);
      this.o.log.error(
        { cycle: count, sinceMs },
        "control loop stalled: watchdog pings withheld, systemd will kill and restart cellio after WatchdogSec",
      );
      this.o.notifier.notify({ STATUS: `control loop stalled at cycle ${count} for ${sinceMs} ms` });
    }
  }
}
