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

  it("a read that is in flight but not yet due back does not make a device stale before stale_after_ms", () => {
    const h = makeHarness();
    const door = h.idx("io1.door_closed");
    runFor(h, 400, { 100: () => (h.dev.readLatency = 45) }); // stale_after 50: answers within it
    expect(h.results.every((r) => r.image[door]!.status !== "uncertain_last_usable")).toBe(true);
  });
});
