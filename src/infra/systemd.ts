/**
 * cellio's side of a `Type=notify` unit: READY=1 once the first cycle ran,
 * WATCHDOG=1 while the loop advances, STOPPING=1 on shutdown, STATUS= lines.
 * Outside systemd (no NOTIFY_SOCKET) every call does nothing.
 */
import { firstValueFrom, type Observable } from "rxjs";
import { systemClock, type Clock } from "./clock.js";
import type { Logger } from "./logger.js";
import { SdNotifier } from "./sd-notify.js";
import { LoopWatchdog, watchdogIntervalMs } from "./watchdog.js";

export interface SystemdLinkOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  /** The loop's completed-cycle counter. */
  readonly cycles: () => number;
  readonly periodMs: number;
  readonly env?: NodeJS.ProcessEnv;
}

export class SystemdLink {
  readonly notifier: SdNotifier;
  readonly watchdog: LoopWatchdog | undefined;
  /** WATCHDOG=1 is checked for this often (half of WATCHDOG_USEC); undefined: no watchdog. */
  readonly watchdogIntervalMs: number | undefined;
  private readonly log: Logger;
  private state: "starting" | "ready" | "stopping" = "starting";

  private readonly cycles: () => number;

  constructor(o: SystemdLinkOptions) {
    this.cycles = o.cycles;
    const env = o.env ?? process.env;
    this.log = o.log.child({ component: "systemd" });
    this.notifier = new SdNotifier({ log: o.log, env });
    const intervalMs = this.notifier.enabled ? watchdogIntervalMs(env) : undefined;
    this.watchdogIntervalMs = intervalMs;
    this.watchdog =
      intervalMs === undefined
        ? undefined
        : new LoopWatchdog({ notifier: this.notifier, cycles: o.cycles, periodMs: o.periodMs, intervalMs, clock: o.clock ?? systemClock, log: this.log });
    this.notifier.start();
    if (this.notifier.enabled) this.notifier.notify({ STATUS: "starting: loading devices" });
  }

  /** READY=1 once the loop has completed a cycle (at once if it has already). */
  async readyAfterFirstCycle(cycles$: Observable<unknown>, status: string): Promise<void> {
    if (!this.notifier.enabled) return;
    if (this.cycles() === 0) await firstValueFrom(cycles$);
    this.ready(status);
  }

  /** Config loaded, devices started, first cycle done: READY=1, then the loop-driven watchdog. */
  ready(status: string): void {
    if (!this.notifier.enabled || this.state !== "starting") return;
    this.state = "ready";
    this.notifier.notify({ READY: 1, STATUS: status });
    this.watchdog?.start();
    this.log.info({ watchdogPingMs: this.watchdogIntervalMs }, "told systemd: ready");
  }

  /** Shutdown began: STOPPING=1 and no more pings. */
  stopping(): void {
    this.state = "stopping";
    this.watchdog?.stop();
    this.notifier.notify({ STOPPING: 1, STATUS: "stopping: writing safe outputs" });
  }

  /** Let the helper go (after the last message). */
  close(): void {
    this.watchdog?.stop();
    this.notifier.close();
  }
}
