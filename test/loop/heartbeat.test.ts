import { describe, expect, it } from "vitest";
import type { CycleResult } from "../../src/loop/control-loop.js";
import { CELL, makeHarness, runFor } from "./harness.js";

const WITH_HEARTBEATS = CELL.replace(
  '      lamp:         { address: "coil:1", direction: output, safe: true }',
  `      lamp:         { address: "coil:1", direction: output, safe: true }
      alive:        { address: "coil:2", direction: output, heartbeat: toggle }
      beat:         { address: "hr:0", direction: output, heartbeat: counter }`,
);

/** From one running cycle to the next, the toggle at `alive` flips and the counter at `beat` adds 1 (mod 65536). */
function expectBeatInEveryCycle(running: readonly CycleResult[], alive: number, beat: number): void {
  for (let i = 1; i < running.length; i++) {
    expect(running[i]!.commanded[alive]).toBe(!running[i - 1]!.commanded[alive]);
    expect(running[i]!.commanded[beat]).toBe(((running[i - 1]!.commanded[beat] as number) + 1) % 65536);
  }
}

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
    expectBeatInEveryCycle(running, alive, beat);
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

  it("they change in every cycle that runs, also across skipped cycles (a toggle must not hold its value after an odd number of skips)", () => {
    const h = makeHarness(WITH_HEARTBEATS);
    const alive = h.idx("io1.alive");
    const beat = h.idx("io1.beat");
    runFor(h, 400, {
      200: () => {
        h.dev.blockMs = 25; // the cycle due at 200 ends at 225: the one due at 210 is skipped
        h.dev.blockCount = 1;
      },
    });
    const running = h.results.filter((r) => r.mode === "running");
    const skips = running.slice(1).filter((r, i) => r.cycle - running[i]!.cycle === 2);
    expect(skips.length).toBe(1);
    expectBeatInEveryCycle(running, alive, beat);
  });
});
