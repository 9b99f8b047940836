import { describe, expect, it } from "vitest";
import { CELL, makeHarness, runFor } from "./harness.js";

const WITH_HEARTBEATS = CELL.replace(
  '      lamp:         { address: "coil:1", direction: output, safe: true }',
  `      lamp:         { address: "coil:1", direction: output, safe: true }
      alive:        { address: "coil:2", direction: output, heartbeat: toggle }
      beat:         { address: "hr:0", direction: output, heartbeat: counter }`,
);

describe("heartbeat outputs", () => {
  it("toggle flips and counter counts every cycle once outputs are enabled, and both stop at their safe value on a fault", () => {
    const h = makeHarness(WITH_HEARTBEATS);
    const alive = h.idx("io1.alive");
    const beat = h.idx("io1.beat");
    runFor(h, 400, {
      200: () => {
        h.dev.readLatency = 0;
        h.dev.blockMs = 12;
        h.dev.blockCount = 5;
      },
    });
    const running = h.results.filter((r) => r.mode === "running");
    expect(running.length).toBeGreaterThan(10);
    for (const r of running) {
      expect(r.commanded[alive]).toBe(r.cycle % 2 === 1);
      expect(r.commanded[beat]).toBe((r.cycle + 1) % 65536);
    }
    const faulted = h.results.filter((r) => r.mode === "faulted");
    expect(faulted.length).toBeGreaterThan(0);
    for (const r of faulted) {
      expect(r.commanded[alive]).toBe(false);
      expect(r.commanded[beat]).toBe(0);
    }
    // every cycle writes the changed heartbeats
    const beatWrites = h.dev.writes.filter((w) => w.changes.some((c) => c.index === beat));
    expect(beatWrites.length).toBeGreaterThanOrEqual(running.length);
  });
});
