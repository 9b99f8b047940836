/**
 * A SchedulerLike that fires on time without burning a core.
 *
 * Measured on this class of machine: libuv timers have 1 ms resolution and
 * fire up to 1 ms early or late; spinning on setImmediate is precise but costs
 * ~19 % of a core at 100 Hz; a worker posting ticks adds ~1 ms of message
 * latency. This scheduler combines them:
 *
 *  1. coarse: a plain setTimeout that wakes `coarseMarginMs` (to the next
 *     whole millisecond) before the deadline;
 *  2. fine: a chain of setImmediate callbacks, each of which blocks the thread
 *     in Atomics.wait (a futex sleep: no CPU) for at most `sliceMs`, so I/O
 *     callbacks still run between slices. Each slice is a sleep and a wake-up,
 *     which on a VM costs CPU (≈ 40 µs each, measured). 0.5 ms slices saved
 *     ~0.7 % of a core at 100 Hz idle, but with the 32-device fleet on a busy
 *     2-core machine they made the tick's lateness p99 ~1 ms worse: 0.25 ms;
 *  3. finish: Atomics.wait overshoots (timer slack plus wake-up: measured
 *     p50 ≈ 0.1 ms at normal priority, ≈ 0.055 ms under SCHED_FIFO, p99
 *     ≈ 0.15–0.26 ms on this VM), so the last sleep ends early by a margin and
 *     the rest is a busy-wait on the monotonic clock. The margin is the median
 *     of the overshoots this scheduler has seen (between `minSpinMs` and
 *     `maxSpinMs`; `spinMs` until 32 are known): half the ticks spin a few
 *     tens of µs, the other half start late by their overshoot less the
 *     margin (tens of µs). A margin at their p90 + 20 µs made nearly every
 *     tick start on time but spun 46–73 µs a tick on the 32-device fleet
 *     (the median: 9–14 µs, with a mean lateness of 22–31 µs instead of
 *     11–31 µs): about 0.5 % of a core that the simulator's and the broker's
 *     processes want too.
 *
 * `quiet()` (optional) says nothing is in flight that a long sleep could
 * delay (the control loop: no phase running, no device read or write
 * outstanding). While it holds, the fine phase is one sleep instead of a
 * chain of slices: each slice costs a futex wake-up (tens of µs of CPU on a
 * VM), ~8 of them a cycle. Without `quiet`, or while it is false, the thread
 * is never blocked for more than `sliceMs` at a time.
 */
import { Subscription, type SchedulerAction, type SchedulerLike } from "rxjs";
import type { Clock } from "../infra/clock.js";

export interface PreciseSchedulerOptions {
  /** How early the coarse timer wakes (ms). Must exceed setTimeout's error (~1 ms). */
  coarseMarginMs?: number;
  /** Longest single blocking sleep (ms). */
  sliceMs?: number;
  /** Busy-wait this long at the end until the sleeps' overshoot is known (ms). */
  spinMs?: number;
  /** Bounds of the learned end margin (ms). */
  minSpinMs?: number;
  maxSpinMs?: number;
  /** Nothing is in flight that one long sleep could delay: the fine phase may sleep in one piece. */
  quiet?: () => boolean;
}

/** Overshoots of the final sleeps, and the margin learned from them. */
class SleepMargin {
  private readonly seen = new Float64Array(32);
  private n = 0;
  margin: number;

  constructor(
    initial: number,
    private readonly min: number,
    private readonly max: number,
  ) {
    this.margin = initial;
  }

  /** Sleep until about `until` (clock ms), recording how far the sleep overshot. */
  sleepUntil(clock: Pick<Clock, "now">, until: number): void {
    const t = clock.now();
    const ms = until - t;
    if (ms <= 0) return;
    blockFor(ms);
    this.seen[this.n++] = clock.now() - t - ms;
    if (this.n === this.seen.length) {
      this.seen.sort(); // in place, numeric (typed array): no allocation
      const median = this.seen[this.seen.length >> 1]!;
      this.margin = Math.min(this.max, Math.max(this.min, median));
      this.n = 0;
    }
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function blockFor(ms: number): void {
  if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
}

class PreciseAction<T> extends Subscription implements SchedulerAction<T> {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private deadline = 0;
  private state: T | undefined;

  constructor(
    private readonly sched: PreciseScheduler,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
  ) {
    super(() => this.cancel());
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.cancel();
    this.state = state;
    this.deadline = this.sched.now() + Math.max(0, delay);
    this.arm();
    return this;
  }

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private arm(): void {
    const remaining = this.deadline - this.sched.now();
    // Whole milliseconds: Node arms libuv's timer for the truncated delay and, finding a fractional
    // one not yet due when it fires, waits one more millisecond. And libuv counts from its loop
    // time, up to a millisecond stale, so the timer may fire that much early: a coarse wait of 1 ms
    // left over after it would be a second wake-up in most cycles. When quiet, the fine phase takes
    // that millisecond in its one sleep; otherwise a 1 ms epoll wait is cheaper than 4 slices.
    const coarse = Math.floor(remaining - this.sched.coarseMarginMs);
    if (coarse >= (this.sched.quiet() ? 2 : 1)) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.arm();
      }, coarse);
      return;
    }
    this.immediate = setImmediate(() => this.fine());
  }

  private fine(): void {
    this.immediate = undefined;
    if (this.closed) return;
    const s = this.sched;
    const margin = s.end.margin;
    // A sleep overshoots (see the margin): a slice is taken only while it still
    // ends before the final sleep-and-spin, so it cannot overshoot the deadline.
    if (this.deadline - s.now() > s.sliceMs + margin && !s.quiet()) {
      blockFor(s.sliceMs);
      this.immediate = setImmediate(() => this.fine());
      return;
    }
    s.end.sleepUntil(s, this.deadline - margin);
    while (s.now() < this.deadline) {
      // busy-wait the last fraction of a millisecond: see the header comment
    }
    this.work.call(this, this.state);
  }
}

export class PreciseScheduler implements SchedulerLike {
  readonly coarseMarginMs: number;
  readonly sliceMs: number;
  /** The final sleep's margin, learned from its overshoots. */
  readonly end: SleepMargin;
  readonly quiet: () => boolean;

  constructor(
    private readonly clock: Clock,
    opts: PreciseSchedulerOptions = {},
  ) {
    this.coarseMarginMs = opts.coarseMarginMs ?? 2;
    this.sliceMs = opts.sliceMs ?? 0.25;
    this.end = new SleepMargin(opts.spinMs ?? 0.15, opts.minSpinMs ?? 0, opts.maxSpinMs ?? 0.3);
    this.quiet = opts.quiet ?? (() => false);
  }

  now(): number {
    return this.clock.now();
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    return new PreciseAction<T>(this, work).schedule(state, delay);
  }
}
