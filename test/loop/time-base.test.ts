/**
 * The time base of timers and step timeouts (ctx.nowMs): the cycle's place on
 * the schedule, so that a delay of N periods ends in exactly the N-th cycle
 * (core/expr/README.md: "ton(x, 50ms) ... true at exactly t = 50" with a
 * 10 ms cycle), whatever the devices' answer times and wherever the
 * monotonic clock stands.
 */
import { describe, expect, it } from "vitest";
import { CELL, makeHarness, runFor, type Harness } from "./harness.js";

const TIMED = CELL.replace(
  'logic:\n  io1.conveyor_run: "io1.door_closed and not io1.part_present"',
  `logic:
  io1.lamp: "ton(io1.door_closed, 50ms)"
sequences:
  s:
    initial: idle
    fault_step: fault
    steps:
      idle:  {}
      wait:  { timeout: 50ms }
      fault: {}
    transitions:
      - { from: idle, to: wait, when: "io1.door_closed" }
      - { from: wait, to: idle, when: "io1.part_present" }`,
);

/** Door closes at t = 95: the cycle due at 100 reads it first. */
function closeDoorAt95(h: Harness, latencyAtEdge: number, latencyAfter: number): Record<number, () => void> {
  h.dev.values.set(h.idx("io1.door_closed"), false);
  return {
    95: () => {
      h.dev.values.set(h.idx("io1.door_closed"), true);
      h.dev.readLatency = latencyAtEdge;
    },
    105: () => (h.dev.readLatency = latencyAfter),
  };
}

/** [cycles after the edge's cycle, lamp, sequence events] of the cycles from the edge's on. */
function fromEdge(h: Harness): { lampOnAfter: number; faultAfter: number } {
  const lamp = h.idx("io1.lamp");
  const edge = h.results.find((r) => r.sequenceEvents.some((e) => e.to === "wait"))!;
  expect(edge).toBeDefined();
  const lampOn = h.results.find((r) => r.cycle > edge.cycle && r.commanded[lamp] === true)!;
  const fault = h.results.find((r) => r.sequenceEvents.some((e) => e.kind === "fault"))!;
  return { lampOnAfter: lampOn.cycle - edge.cycle, faultAfter: fault.cycle - edge.cycle };
}

describe("timers and step timeouts count the cycles' schedule", () => {
  it("a 50 ms delay at a 10 ms period ends in the 5th cycle, though the device answered 2 ms late at the edge and 1 ms late after", () => {
    const h = makeHarness(TIMED);
    h.dev.readLatency = 1;
    runFor(h, 300, closeDoorAt95(h, 2, 1));
    // measured after the input phase, the time in the 5th cycle was 151 - 102 = 49 ms: one cycle late
    expect(fromEdge(h)).toEqual({ lampOnAfter: 5, faultAfter: 5 });
    expect(h.loop.logic.sequences.state("s")!.lastFault).toBe("step wait timed out after 50 ms");
  });

  it("and in the 5th cycle when the monotonic clock passes 2^18 ms during the delay (no float residue of the readings)", () => {
    // Past 262144 ms a reading of this clock loses its last bit: (OFFSET + 151) - (OFFSET + 101)
    // is 49.999999999970896, and so was the difference of two due times t0 + k·T with t0 = OFFSET + T.
    const OFFSET = 262024.6849535087;
    expect(OFFSET + 151 - (OFFSET + 101)).toBeLessThan(50);
    const h = makeHarness(TIMED, OFFSET);
    h.dev.readLatency = 1;
    runFor(h, 300, closeDoorAt95(h, 1, 1));
    expect(fromEdge(h)).toEqual({ lampOnAfter: 5, faultAfter: 5 });
    const dues = h.results.map((r) => r.dueMs);
    for (let i = 1; i < dues.length; i++) expect(dues[i]! - dues[i - 1]!).toBe(10);
  });
});
