/**
 * Timer slack of the loop's thread (Linux).
 *
 * The kernel lets a timed sleep of a normal-priority thread end up to its
 * "timer slack" late (50 µs by default) so that it can batch wake-ups. The
 * loop's tick ends in a timed sleep (Atomics.wait, see
 * src/loop/precise-scheduler.ts) followed by a busy-wait whose length is
 * learned from how late those sleeps end, so every µs of slack is a µs of CPU
 * spent spinning, every cycle. Measured on the 2-core VM: the sleep's
 * overshoot p50 ≈ 136 µs with the default slack and ≈ 90 µs with 1 ns.
 * SCHED_FIFO threads have no slack; this is for the normal-priority case.
 *
 * `/proc/self/timerslack_ns` is the main thread's (the process's first
 * thread: cellio's loop); a thread may write its own without privileges.
 * From any other thread it would need CAP_SYS_NICE and would still change the
 * main thread, so it is only done from the main thread. The value is read
 * back, never assumed, and put back at stop (the process may go on, as in
 * tests and benchmarks).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { isMainThread } from "node:worker_threads";

export interface TimerSlackState {
  /** The slack set (ns), as read back; undefined when not changed. */
  readonly ns: number | undefined;
  /** The slack before (ns), put back by restoreTimerSlack(). */
  readonly previous: number | undefined;
  /** Why it was not changed. */
  readonly reason?: string;
}

/** What setTimerSlack() touches of the system (tests inject fakes). */
export interface TimerSlackSys {
  readonly platform: NodeJS.Platform;
  readonly mainThread: boolean;
  read(): string;
  write(text: string): void;
}

const FILE = "/proc/self/timerslack_ns";

export const procTimerSlack: TimerSlackSys = {
  platform: process.platform,
  mainThread: isMainThread,
  read: () => readFileSync(FILE, "utf8"),
  write: (text) => writeFileSync(FILE, text),
};

export const SLACK_UNCHANGED: TimerSlackState = Object.freeze({ ns: undefined, previous: undefined });

/** The finest timer slack (1 ns: 0 would mean "the default") for the calling thread, which must be the main thread. */
export function setTimerSlack(ns = 1, sys: TimerSlackSys = procTimerSlack): TimerSlackState {
  const unchanged = (reason: string): TimerSlackState => ({ ns: undefined, previous: undefined, reason });
  if (sys.platform !== "linux") return unchanged(`timer slack is set on Linux only (this is ${sys.platform})`);
  if (!sys.mainThread) return unchanged("timer slack is set from the main thread only (the loop's)");
  try {
    const previous = parseSlack(sys.read());
    sys.write(String(ns));
    const now = parseSlack(sys.read());
    if (now !== ns) return { ns: undefined, previous, reason: `the kernel reports ${now} ns after writing ${ns}` };
    return { ns, previous };
  } catch (e) {
    return unchanged(e instanceof Error ? e.message : String(e));
  }
}

/** Put the slack back as it was before setTimerSlack(). */
export function restoreTimerSlack(state: TimerSlackState, sys: TimerSlackSys = procTimerSlack): void {
  if (state.ns === undefined || state.previous === undefined) return;
  try {
    sys.write(String(state.previous));
  } catch {
    // The process is stopping the cell; a slack left fine costs nothing.
  }
}

function parseSlack(text: string): number {
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 0) throw new Error(`unexpected ${FILE} content: ${JSON.stringify(text)}`);
  return n;
}
