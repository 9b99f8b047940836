/**
 * Staleness (DeviceRunner.checkStale) in virtual time: when a device's
 * samples turn uncertain, and that they all come back good when it answers
 * again, outputs included.
 */
import { describe, expect, it } from "vitest";
import { makeHarness, runFor } from "./harness.js";

describe("stale samples", () => {
  it("a device that answers again after a stale spell has every point good again, its outputs too (regression: outputs stayed uncertain)", () => {
    const h = makeHarness();
    const door = h.idx("io1.door_closed");
    const lamp = h.idx("io1.lamp"); // an output nothing changes: written once at start
    runFor(h, 600, {
      100: () => (h.dev.readLatency = 200), // the read started at 100 answers at 300: stale from 150
      105: () => (h.dev.readLatency = 1),
    });
    const stale = h.results.find((r) => r.image[door]!.status === "uncertain_last_usable")!;
    expect(stale).toBeDefined();
    expect(stale.image[lamp]!.status).toBe("uncertain_last_usable");
    const last = h.results.at(-1)!;
    expect(last.image[door]!.status).toBe("good");
    expect(last.image[lamp]!.status).toBe("good");
    expect(last.image[lamp]!.value).toBe(true);
    expect(h.runner.state).toBe("good");
  });

  it("a stall of cellio itself does not make a device stale (regression: both demo interlocks tripped latched, cause uncertain_last_usable, at load 23)", () => {
    const h = makeHarness();
    const door = h.idx("io1.door_closed");
    runFor(h, 600, {
      100: () => (h.dev.readLatency = 7), // answers come back after the 4 ms input budget: each image has the previous read's data
      // the event loop is blocked 200 ms between two cycles (stale_after is 50 ms): the first cycle after it runs
      // before its read is back, on data read 200 ms ago (the read of the cycle due at 120 is back at 127)
      128: () => h.clock.block(200),
    });
    expect(h.loop.stats.skipped).toBeGreaterThan(0); // the stall happened, and is counted as cellio's
    expect(h.results.map((r) => r.image[door]!.status).filter((s) => s !== "good")).toEqual([]);
    expect(h.runner.state).toBe("good");
  });

  it("a device that stays silent while cellio runs still turns stale, also after a stall", () => {
    const h = makeHarness();
    const door = h.idx("io1.door_closed");
    runFor(h, 600, {
      125: () => h.clock.block(200),
      330: () => (h.dev.readLatency = 10_000),
    });
    const firstStale = h.results.find((r) => r.image[door]!.status === "uncertain_last_usable");
    expect(firstStale).toBeDefined();
    expect(firstStale!.dueMs).toBeGreaterThan(350);
    expect(firstStale!.dueMs).toBeLessThan(420);
  });

  it("a read that is in flight but not yet due back does not make a device stale before stale_after_ms", () => {
    const h = makeHarness();
    const door = h.idx("io1.door_closed");
    runFor(h, 400, { 100: () => (h.dev.readLatency = 45) }); // stale_after 50: answers within it
    expect(h.results.every((r) => r.image[door]!.status !== "uncertain_last_usable")).toBe(true);
  });
});
