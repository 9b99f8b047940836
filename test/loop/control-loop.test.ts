import { describe, expect, it } from "vitest";
import { memoryLog } from "../helpers/memory-log.js";
import { CELL, makeHarness, runFor } from "./harness.js";

describe("control loop in virtual time", () => {
  it("ticks on the absolute timeline t0 + k*T with zero lateness", () => {
    const h = makeHarness();
    runFor(h, 1000);
    expect(h.results.length).toBe(99); // first cycle due at t0 = 10, last at 990
    h.results.forEach((r, k) => {
      expect(r.cycle).toBe(k);
      expect(r.dueMs).toBe(10 + k * 10);
      expect(r.latenessMs).toBe(0);
    });
    expect(h.dev.reads).toEqual(h.results.map((r) => r.dueMs));
    expect(h.loop.stats.skipped).toBe(0);
  });

  it("skips missed ticks and counts them, with no catch-up burst", () => {
    const h = makeHarness();
    runFor(h, 300, {
      // the read of the cycle due at 100 blocks the event loop for 35 ms
      100: () => {
        h.dev.blockMs = 35;
        h.dev.blockCount = 1;
      },
    });
    const dues = h.results.map((r) => r.dueMs);
    // cycle 100 ends at 135: cycles due at 110 and 120 have passed entirely and are skipped;
    // cycle 130 runs at once (5 ms late), then the timeline continues at 140
    expect(h.loop.stats.skipped).toBe(2);
    expect(dues).toContain(100);
    expect(dues).not.toContain(110);
    expect(dues).not.toContain(120);
    const c130 = h.results.find((r) => r.dueMs === 130)!;
    expect(c130.latenessMs).toBe(5);
    expect(h.results.find((r) => r.dueMs === 140)!.latenessMs).toBe(0);
    // no catch-up burst: after the late cycle, exactly one cycle per due time, none early
    for (let i = 1; i < dues.length; i++) expect(dues[i]! - dues[i - 1]!).toBeGreaterThanOrEqual(10);
    for (const r of h.results) expect(r.latenessMs).toBeGreaterThanOrEqual(0);
    expect(h.results.filter((r) => r.dueMs + r.latenessMs >= 135 && r.dueMs + r.latenessMs < 140)).toHaveLength(1);
  });

  it("ends the input phase at the input deadline and counts the miss; the late answer lands for the next cycle", () => {
    const h = makeHarness();
    h.dev.readLatency = 7; // budget is 4 ms
    runFor(h, 100);
    const r0 = h.results[0]!;
    expect(r0.inputMs).toBe(4);
    expect(h.loop.stats.inputMisses).toBe(h.results.length);
    // the first read came back at 17 ms, after cycle 0's snapshot: cycle 0 still waits for data …
    expect(r0.image[h.idx("io1.door_closed")]!.status).toBe("bad_waiting_for_initial_data");
    // … and cycle 1 sees it
    expect(h.results[1]!.image[h.idx("io1.door_closed")]!.value).toBe(true);
    expect(h.results[1]!.image[h.idx("io1.door_closed")]!.quality).toBe("good");
  });

  it("is quiet only while no phase runs and no read or write is in flight (a straggler counts)", () => {
    const h = makeHarness();
    h.dev.readLatency = 7; // budget 4: the input phase of the cycle due at 10 ends at 14, the read answers at 17
    const quiet: Record<number, boolean> = {};
    const probe = (t: number) => () => {
      quiet[t] = h.loop.quiet;
    };
    runFor(h, 30, { 5: probe(5), 12: probe(12), 15: probe(15), 18: probe(18) });
    expect(quiet).toEqual({ 5: true, 12: false, 15: false, 18: true });
  });

  it("never asks a device again while its read is in flight (no queue build-up)", () => {
    const h = makeHarness();
    h.dev.readLatency = 25;
    runFor(h, 200);
    // a read every 30 ms (25 ms in flight, then the next due tick)
    expect(h.dev.reads.length).toBeLessThanOrEqual(Math.ceil(190 / 30) + 1);
    expect(h.runner.counters.busySkips).toBeGreaterThan(0);
    for (let i = 1; i < h.dev.reads.length; i++) expect(h.dev.reads[i]! - h.dev.reads[i - 1]!).toBeGreaterThanOrEqual(25);
  });

  it("faults after N consecutive overruns and drives every output safe", () => {
    const h = makeHarness();
    const conveyor = h.idx("io1.conveyor_run");
    const lamp = h.idx("io1.lamp");
    runFor(h, 400, {
      // each cycle now burns 12 ms of a 10 ms period in a synchronous chunk
      100: () => {
        h.dev.readLatency = 0;
        h.dev.blockMs = 12;
        h.dev.blockCount = 5;
      },
    });
    const before = h.results.find((r) => r.dueMs === 90)!;
    expect(before.mode).toBe("running");
    expect(before.commanded[conveyor]).toBe(true);
    const faultedAt = h.results.findIndex((r) => r.mode === "faulted");
    expect(faultedAt).toBeGreaterThan(0);
    // the third overrun in a row trips the fault; the cycle after it is the first faulted one
    const overrunsBefore = h.results.slice(0, faultedAt).filter((r) => r.overrun).length;
    expect(overrunsBefore).toBe(3); // fault_after: 3
    expect(h.results[faultedAt - 1]!.overrun).toBe(true);
    const last = h.results.at(-1)!;
    expect(last.mode).toBe("faulted"); // latched after the overruns stop
    expect(last.commanded[conveyor]).toBe(false);
    expect(last.commanded[lamp]).toBe(true); // lamp's safe value is true
    expect(h.loop.resetFault()).toBe(true);
    expect(h.loop.mode).toBe("running");
  });

  it("warns above warn_pct of the period without faulting", () => {
    const h = makeHarness();
    h.dev.readLatency = 0;
    h.dev.blockMs = 8.5; // 85 % of T
    h.dev.blockCount = 15;
    runFor(h, 200);
    expect(h.loop.stats.warnings).toBeGreaterThan(10);
    expect(h.loop.stats.overruns).toBe(0);
    expect(h.loop.mode).toBe("running");
  });

  it("holds outputs at their safe values until the first complete good scan", () => {
    const h = makeHarness();
    const conveyor = h.idx("io1.conveyor_run");
    h.dev.fail = { ok: false, status: "bad_no_communication", error: "down" };
    runFor(h, 200, { 100: () => (h.dev.fail = undefined) });
    for (const r of h.results.filter((r) => r.dueMs < 100)) {
      expect(r.mode).toBe("starting");
      expect(r.commanded[conveyor]).toBe(false);
    }
    const firstGood = h.results.find((r) => r.mode === "running")!;
    expect(firstGood.dueMs).toBeGreaterThanOrEqual(100);
    expect(firstGood.commanded[conveyor]).toBe(true);
    // the writes: safe value first, then the logic's value
    const conveyorWrites = h.dev.writes.flatMap((w) => w.changes.filter((c) => c.index === conveyor).map((c) => c.value));
    expect(conveyorWrites).toEqual([false, true]);
  });

  it("marks a failed device's points bad with a frozen source timestamp, and its rule's output safe", () => {
    const h = makeHarness();
    const door = h.idx("io1.door_closed");
    const conveyor = h.idx("io1.conveyor_run");
    runFor(h, 200, { 100: () => (h.dev.fail = { ok: false, status: "bad_timeout", error: "timeout" }) });
    const lastGood = h.results.filter((r) => r.image[door]!.quality === "good").at(-1)!;
    const bad = h.results.at(-1)!;
    expect(bad.image[door]!.status).toBe("bad_timeout");
    expect(bad.image[door]!.value).toBe(true); // last value kept
    expect(bad.image[door]!.sourceTs).toBe(lastGood.image[door]!.sourceTs); // never refreshed
    expect(bad.commanded[conveyor]).toBe(false);
    expect(h.runner.state).toBe("bad");
  });

  it("turns a silent device's samples uncertain after stale_after_ms", () => {
    const h = makeHarness();
    const door = h.idx("io1.door_closed");
    runFor(h, 300, { 100: () => (h.dev.readLatency = 1000) });
    const statuses = h.results.map((r) => [r.dueMs, r.image[door]!.status] as const);
    const firstStale = statuses.find(([, s]) => s === "uncertain_last_usable")!;
    // last good read completed at 91 ms; stale_after 50 ms → stale from the cycle after 141 ms
    expect(firstStale[0]).toBe(150);
    expect(h.results.at(-1)!.commanded[h.idx("io1.conveyor_run")]).toBe(false);
  });
});

describe("safe start", () => {
  it("writes every output's safe value before the logic drives it, even when the very first scan is good", () => {
    const h = makeHarness();
    const conveyor = h.idx("io1.conveyor_run");
    runFor(h, 100);
    expect(h.results[0]!.image[h.idx("io1.door_closed")]!.quality).toBe("good"); // cycle 0 is a complete good scan
    expect(h.results[0]!.mode).toBe("starting");
    expect(h.results[0]!.commanded[conveyor]).toBe(false);
    expect(h.results[1]!.mode).toBe("running");
    expect(h.results[1]!.commanded[conveyor]).toBe(true);
    const first = h.dev.writes[0]!.changes;
    expect(first.map((c) => [c.index, c.value])).toEqual([
      [conveyor, false],
      [h.idx("io1.lamp"), true],
    ]);
  });
});

describe("overruns while starting", () => {
  it("are counted but do not fault the cell before the first good scan", () => {
    const h = makeHarness();
    h.dev.fail = { ok: false, status: "bad_no_communication", error: "down" };
    h.dev.readLatency = 0;
    h.dev.blockMs = 12;
    h.dev.blockCount = 8;
    runFor(h, 300, { 150: () => (h.dev.fail = undefined) });
    expect(h.loop.stats.overruns).toBeGreaterThanOrEqual(8);
    expect(h.results.some((r) => r.mode === "faulted")).toBe(false);
    expect(h.results.at(-1)!.mode).toBe("running");
  });

  it("are logged at info while starting, and at warn once the cell runs", () => {
    const mem = memoryLog("info");
    const h = makeHarness(CELL, 0, mem.log);
    h.dev.readLatency = 0;
    h.dev.blockMs = 12; // the first cycle overruns (cold start)
    h.dev.blockCount = 1;
    runFor(h, 300, {
      200: () => {
        h.dev.blockCount = 1; // one overrun while running
      },
    });
    const overruns = mem.lines.filter((l) => l.msg.startsWith("cycle overrun"));
    expect(overruns.map((l) => [l.level, l.msg])).toEqual([
      [30, "cycle overrun while starting (outputs held safe)"],
      [40, "cycle overrun"],
    ]);
    expect(h.loop.stats.overruns).toBe(2);
    // Where the time went: the device blocked the input phase for 12 ms.
    for (const l of overruns) {
      const { periodMs, latenessMs, inputMs, logicMs, outputMs, durationMs } = l as unknown as Record<string, number>;
      expect(periodMs).toBe(10);
      expect(latenessMs).toBeGreaterThanOrEqual(0);
      expect(inputMs).toBeGreaterThanOrEqual(12);
      expect(inputMs! + logicMs! + outputMs!).toBeCloseTo(durationMs!, 6);
    }
  });
});
