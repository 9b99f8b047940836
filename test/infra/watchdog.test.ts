/**
 * LoopWatchdog decisions on a manual clock: WATCHDOG=1 only while the cycle
 * counter advances, withheld when it stands still, resumed when it moves
 * again; a slow loop keeps its pings between cycles. And the environment
 * rules of sd_watchdog_enabled(3).
 */
import { describe, expect, it } from "vitest";
import { LoopWatchdog, watchdogIntervalMs } from "../../src/infra/watchdog.js";
import type { NotifyFields } from "../../src/infra/sd-notify.js";
import { silentLogger } from "../../src/infra/logger.js";

function rig(periodMs: number) {
  let now = 0;
  let cycles = 0;
  const sent: NotifyFields[] = [];
  const w = new LoopWatchdog({
    notifier: { notify: (f) => void sent.push(f) },
    cycles: () => cycles,
    periodMs,
    intervalMs: 1000,
    clock: { now: () => now, wall: () => now },
    log: silentLogger(),
  });
  const pings = (): number => sent.filter((f) => f.WATCHDOG === 1).length;
  return {
    w,
    sent,
    pings,
    /** Advance time by `ms`, with the loop completing `n` cycles meanwhile, then check. */
    step(ms: number, n: number) {
      now += ms;
      cycles += n;
      w.check();
    },
  };
}

describe("LoopWatchdog", () => {
  it("pings while the cycle counter advances and withholds the ping when it stands still", () => {
    const r = rig(20);
    r.step(1000, 50);
    r.step(1000, 50);
    expect(r.pings()).toBe(2);
    r.step(1000, 0); // stalled: the event loop still runs this check
    r.step(1000, 0);
    expect(r.pings()).toBe(2);
    expect(r.w.stalled).toBe(true);
    expect(r.sent.some((f) => String(f.STATUS).startsWith("control loop stalled at cycle 100"))).toBe(true);
    r.step(1000, 10); // it moves again
    expect(r.pings()).toBe(3);
    expect(r.w.stalled).toBe(false);
  });

  it("keeps pinging between the cycles of a loop slower than the ping interval, within three periods", () => {
    const r = rig(2500);
    r.step(1000, 1);
    r.step(1000, 0);
    r.step(1000, 0);
    r.step(1000, 1);
    expect(r.pings()).toBe(4);
    for (let i = 0; i < 7; i++) r.step(1000, 0); // up to 7 s without a cycle: within 3 periods (7.5 s)
    expect(r.w.stalled).toBe(false);
    expect(r.pings()).toBe(11);
    r.step(1000, 0); // 8 s: stalled
    expect(r.w.stalled).toBe(true);
    expect(r.pings()).toBe(11);
  });
});

describe("watchdogIntervalMs", () => {
  it("is half of WATCHDOG_USEC, for this process only", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "10000000" }, 42)).toBe(5000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "10000000", WATCHDOG_PID: "42" }, 42)).toBe(5000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "10000000", WATCHDOG_PID: "43" }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "0" }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "ten" }, 42)).toBeUndefined();
  });
});
