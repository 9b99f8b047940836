/**
 * Manual mode and alarms through the control loop, in virtual time: the
 * command path, CycleResult.control / modeEvents / alarmEvents, and what the
 * device is actually asked to write.
 */
import { describe, expect, it } from "vitest";
import { CELL, makeHarness, runFor, type Harness } from "./harness.js";
import type { Command, CommandResult, Role } from "../../src/core/commands.js";

const YAML = `${CELL}
interlocks:
  door:
    permit: "io1.door_closed"
    force: [io1.conveyor_run]
    latch: true
manual_mode: {}
`;

function send(h: Harness, command: Command, role: Role = "engineer"): CommandResult {
  return h.loop.logic.commands.submit(command, { role, caller: "vt", nowMs: h.clock.now() });
}

/** The value of the latest write of `index` to the fake device at or before `t`. */
function writtenAt(h: Harness, index: number, t: number): unknown {
  let v: unknown;
  for (const w of h.dev.writes) if (w.t <= t) for (const c of w.changes) if (c.index === index) v = c.value;
  return v;
}

describe("manual mode through the loop (virtual time)", () => {
  it("switches at the next cycle, writes the commanded value, is forced safe by a tripped interlock, and returns to the logic in auto", () => {
    const h = makeHarness(YAML);
    const conveyor = h.idx("io1.conveyor_run");
    const replies: Record<string, CommandResult> = {};
    h.dev.values.set(h.idx("io1.part_present"), true); // logic: conveyor off while a part is present
    runFor(h, 600, {
      105: () => (replies["manual"] = send(h, { kind: "set_mode", mode: "manual" })),
      155: () => (replies["set"] = send(h, { kind: "set_point", point: "io1.conveyor_run", value: true })),
      255: () => h.dev.values.set(h.idx("io1.door_closed"), false),
      305: () => h.dev.values.set(h.idx("io1.door_closed"), true),
      355: () => (replies["reset"] = send(h, { kind: "reset_interlock", id: "door" }, "operator")),
      405: () => (replies["ack"] = send(h, { kind: "acknowledge", id: "interlock.door" }, "operator")),
      455: () => (replies["auto"] = send(h, { kind: "set_mode", mode: "auto" })),
    });
    expect(replies).toEqual({ manual: { accepted: true }, set: { accepted: true }, reset: { accepted: true }, ack: { accepted: true }, auto: { accepted: true } });
    const at = (t: number) => h.results.find((r) => r.dueMs === t)!;
    expect(at(100).control).toBe("auto");
    expect(at(110).control).toBe("manual");
    expect(at(110).modeEvents).toEqual([expect.objectContaining({ kind: "switch", from: "auto", to: "manual", by: "engineer vt", cycle: at(110).cycle })]);
    expect(h.results.flatMap((r) => r.modeEvents)).toHaveLength(2);

    expect(at(150).commanded[conveyor]).toBe(false);
    expect(at(160).commanded[conveyor]).toBe(true); // the logic would say false (a part is present)
    expect(writtenAt(h, conveyor, 200)).toBe(true);

    const trip = h.results.find((r) => r.interlockEvents.some((e) => e.kind === "trip"))!;
    expect(trip.control).toBe("manual");
    expect(trip.commanded[conveyor]).toBe(false);
    expect(trip.alarmEvents).toEqual([expect.objectContaining({ kind: "raise", id: "interlock.door" })]);
    expect(writtenAt(h, conveyor, trip.dueMs + 5)).toBe(false);
    // reset in manual: the manual value was dropped at the trip, so nothing restarts
    const reset = h.results.find((r) => r.interlockEvents.some((e) => e.kind === "reset"))!;
    expect(reset.alarmEvents).toEqual([expect.objectContaining({ kind: "clear", id: "interlock.door" })]);
    for (const r of h.results.filter((x) => x.dueMs > trip.dueMs && x.dueMs <= 450)) expect(r.commanded[conveyor]).toBe(false);
    expect(at(410).alarmEvents).toEqual([expect.objectContaining({ kind: "ack", id: "interlock.door", cause: "acknowledged by operator vt" })]);
    expect(h.loop.logic.alarms.state("interlock.door")).toMatchObject({ active: false, acked: true });

    expect(at(460).control).toBe("auto");
    expect(at(460).commanded[conveyor]).toBe(false); // the logic: a part is present
  });

  it("back in auto the logic drives the output again", () => {
    const h = makeHarness(YAML);
    const conveyor = h.idx("io1.conveyor_run");
    runFor(h, 300, {
      55: () => send(h, { kind: "set_mode", mode: "manual" }),
      // in manual the conveyor is safe (false) although the logic (door closed, no part) says true
      155: () => send(h, { kind: "set_mode", mode: "auto" }),
    });
    const at = (t: number) => h.results.find((r) => r.dueMs === t)!;
    expect(at(50).commanded[conveyor]).toBe(true);
    expect(at(100).commanded[conveyor]).toBe(false);
    expect(at(100).control).toBe("manual");
    expect(at(160).commanded[conveyor]).toBe(true);
    expect(writtenAt(h, conveyor, 300)).toBe(true);
  });

  it("raises device.<name> while the device is lost and clears it when it answers again", () => {
    const h = makeHarness(YAML);
    runFor(h, 300, {
      100: () => (h.dev.fail = { ok: false, status: "bad_timeout", error: "no answer" }),
      200: () => (h.dev.fail = undefined),
    });
    const events = h.results.flatMap((r) => r.alarmEvents).filter((e) => e.id === "device.io1");
    expect(events.map((e) => e.kind)).toEqual(["raise", "clear"]);
    expect(events[0]!.cause).toMatch(/^device io1 lost/);
  });
});
