import { describe, expect, it, vi } from "vitest";
import { PreciseScheduler } from "../../src/loop/precise-scheduler.js";
import { systemClock } from "../../src/infra/clock.js";

describe("PreciseScheduler", () => {
  it("never runs work before its deadline, also when rescheduled from inside the work", async () => {
    const s = new PreciseScheduler(systemClock);
    const fired: { deadline: number; at: number }[] = [];
    await new Promise<void>((resolve) => {
      let deadline = systemClock.now() + 3;
      s.schedule(function (this: { schedule(state?: undefined, delay?: number): unknown }) {
        fired.push({ deadline, at: systemClock.now() });
        if (fired.length === 20) return resolve();
        deadline = systemClock.now() + 3.3;
        this.schedule(undefined, 3.3);
      }, 3);
    });
    expect(fired).toHaveLength(20);
    for (const f of fired) expect(f.at).toBeGreaterThanOrEqual(f.deadline);
  });

  it("does not run cancelled work", async () => {
    const s = new PreciseScheduler(systemClock);
    let ran = 0;
    // due long after the cancel: on a loaded machine the cancel's own timer can be late by several ms
    const sub = s.schedule(() => ran++, 60);
    const sub2 = s.schedule(() => ran++, 1);
    sub2.unsubscribe();
    setTimeout(() => sub.unsubscribe(), 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(ran).toBe(0);
  });

  it("never runs work early once it has learned the final sleep's margin (quiet: one sleep per wait)", async () => {
    const s = new PreciseScheduler(systemClock, { quiet: () => true });
    const late: number[] = [];
    await new Promise<void>((resolve) => {
      let deadline = systemClock.now() + 2.5;
      s.schedule(function (this: { schedule(state?: undefined, delay?: number): unknown }) {
        late.push(systemClock.now() - deadline);
        if (late.length === 100) return resolve(); // the margin is relearned every 32 sleeps
        deadline = systemClock.now() + 2.5;
        this.schedule(undefined, 2.5);
      }, 2.5);
    });
    for (const l of late) expect(l).toBeGreaterThanOrEqual(0);
    expect(s.end.margin).toBeGreaterThanOrEqual(0);
    expect(s.end.margin).toBeLessThanOrEqual(0.3);
  });

  it("learns the final sleep's margin as the median of 32 overshoots, within its bounds", () => {
    // a clock that reads each sleep as 1 ms plus a scripted overshoot (the real sleep is 1 ms)
    const overshoots = [...new Array<number>(17).fill(0.05), ...new Array<number>(15).fill(0.2)];
    const margin = (shoots: number[], bounds: { minSpinMs?: number; maxSpinMs?: number } = {}): number => {
      let t = 0;
      let i = 0;
      let before = true;
      const clock = {
        now: (): number => {
          if (!before) t += 1 + shoots[i++]!;
          before = !before;
          return t;
        },
        wall: () => 0,
      };
      const s = new PreciseScheduler(clock, { spinMs: 0.15, ...bounds });
      for (let k = 0; k < shoots.length; k++) {
        expect(s.end.margin).toBe(0.15); // the initial margin until 32 are known
        s.end.sleepUntil(clock, t + 1);
      }
      return s.end.margin;
    };
    expect(margin(overshoots)).toBeCloseTo(0.05, 9); // the median, not the p90 (0.2): most ticks spin little
    expect(margin(overshoots, { minSpinMs: 0.08 })).toBe(0.08);
    expect(margin(overshoots.map(() => 0.9))).toBe(0.3); // the default bound: a 0.3 ms spin at most
  });

  it("sleeps in one piece while quiet() holds, in slices while it does not", async () => {
    const immediatesWhile = async (quiet: boolean): Promise<number> => {
      // 100 ms, not 20: a stall of this thread (another test worker, the VM) of most of the wait
      // would leave too few turns for the "not quiet" count, which happened once at 20 ms
      const s = new PreciseScheduler(systemClock, { coarseMarginMs: 100, sliceMs: 0.25, quiet: () => quiet });
      let immediates = 0;
      let stop = false;
      const spin = (): void => {
        immediates++;
        if (!stop) setImmediate(spin);
      };
      const done = new Promise<void>((resolve) => s.schedule(() => resolve(), 100));
      setImmediate(spin);
      await done;
      stop = true;
      return immediates;
    };
    // quiet: the whole fine phase (~100 ms) is one blocking sleep, so the spinning immediates get
    // at most a couple of turns (before the sleep starts and none during it)
    expect(await immediatesWhile(true)).toBeLessThanOrEqual(3);
    // not quiet: 0.25 ms slices, each followed by a turn of the event loop
    expect(await immediatesWhile(false)).toBeGreaterThan(3);
  });

  it("lets I/O callbacks run while it waits for a deadline (never blocks longer than a slice)", async () => {
    const s = new PreciseScheduler(systemClock, { coarseMarginMs: 100, sliceMs: 0.25 }); // 100 ms: as above
    let immediates = 0;
    const done = new Promise<void>((resolve) => s.schedule(() => resolve(), 100));
    // keep posting immediates: if the scheduler blocked the thread for the
    // whole fine phase, none of them would run before the work does
    let stop = false;
    const spin = (): void => {
      immediates++;
      if (!stop) setImmediate(spin);
    };
    setImmediate(spin);
    await done;
    stop = true;
    // one blocking sleep would let exactly one through; 400 slices let many through (fewer on a loaded machine)
    expect(immediates).toBeGreaterThan(3);
  });

  it("wakes once before its fine phase: one setTimeout, of whole milliseconds", async () => {
    // A fractional delay made Node wait one more millisecond when libuv's timer fired, and a
    // timer fired early (libuv's loop time is stale) left a 1 ms coarse wait: two wake-ups a cycle.
    const s = new PreciseScheduler(systemClock, { quiet: () => true });
    const spy = vi.spyOn(globalThis, "setTimeout");
    try {
      for (const delay of [9.7, 6.2, 4.05]) {
        spy.mockClear();
        const deadline = systemClock.now() + delay;
        const at = await new Promise<number>((resolve) => s.schedule(() => resolve(systemClock.now()), delay));
        expect(at).toBeGreaterThanOrEqual(deadline);
        const delays = spy.mock.calls.map((c) => c[1]).filter((d) => d === undefined || d < 100); // not the test runner's own timeouts
        expect(delays, `delay ${delay}`).toHaveLength(1);
        expect(Number.isInteger(delays[0]), `delay ${delay}: ${String(delays[0])}`).toBe(true);
      }
    } finally {
      spy.mockRestore();
    }
  });
});
