/**
 * Timers that judge (a timeout, a silence, a liveness check) after a stall
 * of this thread (a busy core, a long synchronous task): libuv runs the
 * timers that fell due during the stall BEFORE it polls the sockets, so an
 * answer that came in time would be taken for a failure. A timer that fires
 * more than LATE_TIMER_MS after it was due means such a stall; its judgement
 * then waits for an immediate, which runs after that turn's poll phase has
 * read the sockets. On time, the judgement is at once and strict.
 *
 * Users: the Modbus TCP client's request timeout (which then judges only
 * what was due when the timer fired), the RTU-over-TCP frame silence and the
 * TCP connect timeout, the OPC UA client's Read, Write and connect deadlines
 * (judgeAfterIo in its withTimeout), its link's liveness check (everyAfterIo),
 * and the loop's phase deadlines (isLate: they put themselves off through an
 * injected afterIo, setImmediate in the daemon, so virtual time still drives
 * them in tests).
 *
 * The serial line (drivers/modbus/rtu-line.ts) uses isLate with its
 * own grace timer instead: serialport reads through the thread pool, some
 * turns later than one immediate.
 */

/** A timer this much (ms) past its due time means this thread was stalled. */
export const LATE_TIMER_MS = 3;

/** A timer due at `dueAt` that runs at `now` (both performance.now() milliseconds, or both of one Clock) is late. */
export function isLate(dueAt: number, now: number): boolean {
  return now - dueAt > LATE_TIMER_MS;
}

/**
 * Runs `judge` at once when the timer due at `dueAt` fired on time, else in an
 * immediate (after this turn's socket reads) and returns it: the caller
 * cancels it (clearImmediate) when what it judges resolves meanwhile (the
 * frame completed, the connection came). `now` defaults to performance.now().
 */
export function judgeAfterIo(dueAt: number, judge: () => void, now = performance.now()): NodeJS.Immediate | undefined {
  if (isLate(dueAt, now)) return setImmediate(judge);
  judge();
  return undefined;
}

/**
 * A setInterval (unref'd) whose judgement, when its tick fires late, waits
 * for an immediate (judgeAfterIo); a tick that finds the previous judgement
 * still waiting skips. `judge` gets the time the tick fired, of `now`.
 */
export function everyAfterIo(periodMs: number, judge: (firedAt: number) => void, now: () => number = () => performance.now()): { stop(): void } {
  let last = now();
  let pending: NodeJS.Immediate | undefined;
  const tick = (): void => {
    const at = now();
    const dueAt = last + periodMs;
    last = at;
    if (pending !== undefined) return;
    pending = judgeAfterIo(
      dueAt,
      () => {
        pending = undefined;
        judge(at);
      },
      at,
    );
  };
  const timer = setInterval(tick, periodMs);
  timer.unref();
  return {
    stop(): void {
      clearInterval(timer);
      if (pending !== undefined) clearImmediate(pending);
      pending = undefined;
    },
  };
}
