/**
 * The one place that reads the machine's clocks. Loop and core code take a
 * Clock; tests pass a virtual one.
 */
import { performance } from "node:perf_hooks";

export interface Clock {
  /** Monotonic milliseconds (fractional), for scheduling and durations. */
  now(): number;
  /** Wall-clock epoch milliseconds, for source timestamps. */
  wall(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => performance.timeOrigin + performance.now(),
};

/** A Clock driven by an RxJS scheduler's virtual time (TestScheduler). */
export function schedulerClock(scheduler: { now(): number }, wallOffsetMs = 1_700_000_000_000): Clock {
  return { now: () => scheduler.now(), wall: () => wallOffsetMs + scheduler.now() };
}

/** Milliseconds to two decimals, for messages and logs (a budget left over is rarely a round number). */
export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
