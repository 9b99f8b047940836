/**
 * The late-timer rule's contract: a timer on time judges at once, a late one
 * (more than LATE_TIMER_MS) in an immediate that the caller can cancel; the
 * repeating form judges late ticks the same way and stops. What the rule is
 * for (answers that came during a stall) is tested on the timers that use it:
 * test/drivers/modbus/stall*.test.ts, test/drivers/opcua/liveness-stall.test.ts.
 */
import { describe, expect, it } from "vitest";
import { LATE_TIMER_MS, everyAfterIo, isLate, judgeAfterIo } from "../../src/infra/late-timer.js";

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("late timers", () => {
  it("a timer is late only past LATE_TIMER_MS", () => {
    expect(isLate(100, 100 + LATE_TIMER_MS)).toBe(false);
    expect(isLate(100, 100 + LATE_TIMER_MS + 0.01)).toBe(true);
    expect(isLate(100, 90)).toBe(false); // early
  });

  it("judges at once on time, in a cancellable immediate when late", async () => {
    const log: string[] = [];
    expect(judgeAfterIo(50, () => log.push("on time"), 50 + LATE_TIMER_MS)).toBeUndefined();
    expect(log).toEqual(["on time"]);
    const late = judgeAfterIo(50, () => log.push("late"), 60);
    expect(late).toBeDefined();
    expect(log).toEqual(["on time"]);
    await turn();
    expect(log).toEqual(["on time", "late"]);
    const cancelled = judgeAfterIo(50, () => log.push("cancelled"), 60);
    clearImmediate(cancelled);
    await turn();
    await turn();
    expect(log).toEqual(["on time", "late"]);
  });

  it("a repeating check judges an on-time tick inside the tick, a late one after it (the tick's I/O), and stops", async () => {
    const log: string[] = [];
    let step = 5; // virtual ms per clock read: 5 is exactly on time (the period), 1000 is late
    let t = 0;
    const now = (): number => {
      log.push("tick");
      process.nextTick(() => log.push("tick ended")); // after the timer's callback, before any immediate
      return (t += step);
    };
    const judged = (what: string): Promise<void> =>
      new Promise<void>((resolve) => {
        const wait = (): void => void (log.includes(what) ? resolve() : setTimeout(wait, 5));
        wait();
      });
    const onTime = everyAfterIo(5, () => log.push("judged"), now);
    await judged("judged");
    onTime.stop();
    expect(log.slice(log.indexOf("judged") - 1, log.indexOf("judged") + 2)).toEqual(["tick", "judged", "tick ended"]);
    step = 1000;
    const late = everyAfterIo(5, () => log.push("judged late"), now);
    await judged("judged late");
    late.stop();
    const at = log.indexOf("judged late");
    expect(log.slice(at - 2, at + 1)).toEqual(["tick", "tick ended", "judged late"]);
    const count = log.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(log.length).toBe(count); // stopped: no tick, no judgement
  });
});
