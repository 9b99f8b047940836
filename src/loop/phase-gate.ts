/**
 * One phase of a cycle (its reads, or its writes) without an Observable per
 * device and per cycle: each read or write the phase starts is counted, and
 * calls `ioDone` with the phase's token when it is over; the phase ends when
 * the last of them is done or at its deadline (an action on the injected
 * scheduler: virtual time in tests), whichever comes first. A late answer of
 * an earlier phase carries an old token and is not counted in this one.
 *
 * The deadline is the phase's start plus its budget on the loop's clock, not
 * whenever the scheduler's action runs:
 *  - early: a timer may fire up to 1 ms before its time (libuv's clock is
 *    whole milliseconds), which took up to a quarter of a 4 ms budget from
 *    the devices; the rest is waited for;
 *  - late, by more than LATE_TIMER_MS: this thread was stalled (a busy core,
 *    a long task, a GC). libuv runs the due timers before it reads the
 *    sockets, so answers that came during the stall would count as past the
 *    deadline; the phase then ends one turn later, after that turn's I/O
 *    (infra/late-timer.ts, as the drivers' timeouts do), through `afterIo`:
 *    an immediate in the daemon, which runs right after the poll phase. The
 *    default, a zero delay on the phase scheduler, is a timer: with
 *    asyncScheduler it costs about a millisecond more (virtual time in
 *    tests). Tested with real sockets in test/loop/phase-stall.test.ts.
 */
import type { SchedulerLike, Subscription } from "rxjs";
import { isLate } from "../infra/late-timer.js";
import type { DeviceRunner } from "./device-runner.js";

/** A deadline action this far (ms) before the phase's due time counts as on time (no rescheduling for a rounding). */
const EARLY_MS = 0.01;

export class PhaseGate {
  /** The token of the phase in progress; bumped when a phase ends (or is abandoned). */
  private token = 0;
  /** Reads or writes of the phase still in flight (+1 while the phase is starting). */
  private pending = 0;
  /** What follows the phase in progress. */
  private next: (() => void) | undefined;
  /** The deadline of the phase in progress. */
  private deadlineSub: Subscription | undefined;
  /** The devices whose read (write) the phase started. */
  private readonly startedRunners: DeviceRunner[] = [];
  /** When the phase in progress is over at the latest (the loop's clock). */
  private dueAt = 0;
  /** The phase's deadline has been put off once already, for a stall. */
  private stalled = false;

  /** Where every read or write the phase starts reports that it is over. */
  readonly ioDone = (token: number): void => {
    if (token === this.token && --this.pending === 0) this.end();
  };

  private readonly deadline = (token?: number): void => {
    if (token !== this.token) return;
    const now = this.now();
    if (this.dueAt - now > EARLY_MS) {
      this.deadlineSub = this.scheduler.schedule(this.deadline, this.dueAt - now, token); // fired early
      return;
    }
    if (!this.stalled && isLate(this.dueAt, now)) {
      this.stalled = true;
      // after this turn's I/O; a phase that ends meanwhile bumps the token, and this call is ignored
      this.deadlineSub = undefined;
      this.afterIo(() => this.deadline(token));
      return;
    }
    this.deadlineSub = undefined;
    this.end();
  };

  constructor(
    private readonly scheduler: SchedulerLike,
    /** The loop's clock (ms); the scheduler's own by default. */
    private readonly now: () => number = () => scheduler.now(),
    /** Runs `fn` after the event loop's next I/O poll (setImmediate in the daemon); default: a zero delay on `scheduler`. */
    private readonly afterIo: (fn: () => void) => void = (fn) => void scheduler.schedule(fn, 0),
  ) {}

  /** A phase is running (started and not yet ended). */
  get running(): boolean {
    return this.next !== undefined;
  }

  /** The token to hand to the reads or writes of the phase being started. */
  get phase(): number {
    return this.token;
  }

  /** Start a phase: returns the (emptied) list of runners it started. */
  begin(): DeviceRunner[] {
    this.token++;
    // One pending for the phase itself, so that an answer that comes back
    // while the phase is still starting (a device not connected answers at
    // once) cannot end it early.
    this.pending = 1;
    this.startedRunners.length = 0;
    return this.startedRunners;
  }

  /** Count a read or write about to start (before the start: its answer may come back at once). */
  add(): void {
    this.pending++;
  }

  /** The read or write counted by `add` did not start. */
  notStarted(): void {
    this.pending--;
  }

  /** Everything is started: `next` runs when the last is done, or after `budgetMs`. */
  await(budgetMs: number, next: () => void): void {
    if (this.pending === 1) {
      // nothing (left) in flight
      this.token++;
      next();
      return;
    }
    this.next = next;
    this.dueAt = this.now() + budgetMs;
    this.stalled = false;
    this.deadlineSub = this.scheduler.schedule(this.deadline, budgetMs, this.token);
    this.pending--;
  }

  /** Drop the phase in progress: nothing follows it, its late answers are ignored. */
  abandon(): void {
    this.token++;
    this.deadlineSub?.unsubscribe();
    this.deadlineSub = undefined;
    this.next = undefined;
  }

  private end(): void {
    this.token++;
    this.deadlineSub?.unsubscribe();
    this.deadlineSub = undefined;
    const next = this.next;
    this.next = undefined;
    next?.();
  }
}
