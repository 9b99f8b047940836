/** Interlock engine: trips, forcing, quality, latching and resets, events only on transitions. */
import { pointTable } from "../helpers/point-table.js";
import { describe, expect, it } from "vitest";
import { LineCounter, parseDocument } from "yaml";
import { compileInterlocks, interlocksSectionSchema } from "../../src/config/logic-schema.js";
import { SourceMap, type ConfigIssue } from "../../src/config/issues.js";
import { InterlockEngine } from "../../src/core/interlocks-engine.js";
import type { InterlockEvent } from "../../src/core/interlocks.js";
import { type Direction, type PointKind } from "../../src/core/points.js";
import { goodSample, INITIAL_SAMPLE, sample, type Sample, type Status, type Value } from "../../src/core/sample.js";

const SPEC: ReadonlyArray<readonly [string, PointKind, Direction, Value?]> = [
  ["io1.door_closed", "bool", "input"],
  ["curtain.clear", "bool", "input"],
  ["io1.pressure", "float", "input"],
  ["io1.ack", "bool", "input"],
  ["robot.ext_hold", "bool", "output", true],
  ["io1.conveyor_run", "bool", "output"],
  ["io1.light_red", "bool", "output"],
  ["io1.speed", "int", "output"],
];
const { points: POINTS, env: ENV, at } = pointTable(SPEC);

function engine(yaml: string): InterlockEngine {
  const lineCounter = new LineCounter();
  const doc = parseDocument(yaml, { lineCounter });
  const issues: ConfigIssue[] = [];
  const section = interlocksSectionSchema.parse((doc.toJS() as { interlocks: unknown }).interlocks);
  const defs = compileInterlocks(section, ENV, POINTS, new SourceMap(doc, lineCounter), issues);
  if (issues.length > 0) throw new Error(JSON.stringify(issues));
  return new InterlockEngine(defs, POINTS);
}

/** Inputs good with these values (all four given defaults), `bad` ones with a status. */
function image(values: Partial<Record<string, Value>>, bad: Partial<Record<string, Status>> = {}): Sample[] {
  const base: Record<string, Value> = { "io1.door_closed": true, "curtain.clear": true, "io1.pressure": 5, "io1.ack": false };
  return POINTS.map((p) => {
    if (p.direction !== "input") return INITIAL_SAMPLE;
    const v = values[p.id] ?? base[p.id]!;
    const st = bad[p.id];
    return st ? sample(v, st, 1) : goodSample(v, 1);
  });
}

/** What logic asked for: conveyor on, no hold, light off, speed 50. */
const logic = (): (Value | null)[] => POINTS.map((p) => ({ "robot.ext_hold": false, "io1.conveyor_run": true, "io1.light_red": false, "io1.speed": 50 })[p.id] ?? null);

const DOOR = `
interlocks:
  door_closed:
    permit: "io1.door_closed and curtain.clear"
    force: { robot.ext_hold: true, io1.conveyor_run: false }
`;

const LATCHED = `
interlocks:
  air:
    permit: "io1.pressure > 3"
    force: [io1.conveyor_run, io1.speed]
    latch: true
    reset_roles: [engineer]
`;

describe("InterlockEngine: trips and forcing", () => {
  it("forces its outputs while the permit is false and emits one trip event naming the false terms", () => {
    const e = engine(DOOR);
    const d0 = logic();
    expect(e.apply({ image: image({}), nowMs: 0, wallMs: 100 }, d0, 0)).toEqual([]);
    expect(d0[at("io1.conveyor_run")]).toBe(true);
    const d1 = logic();
    const ev = e.apply({ image: image({ "curtain.clear": false }), nowMs: 10, wallMs: 110 }, d1, 1);
    expect(ev).toEqual([{ kind: "trip", id: "door_closed", cycle: 1, wallMs: 110, cause: "permit false: curtain.clear" }]);
    expect(d1[at("robot.ext_hold")]).toBe(true);
    expect(d1[at("io1.conveyor_run")]).toBe(false);
    expect(d1[at("io1.speed")]).toBe(50); // not named: untouched
    expect(e.state("door_closed")).toMatchObject({ permitted: false, tripped: true, latched: false, tripCount: 1, lastTripWallMs: 110 });
  });

  it("emits nothing while nothing changes, and returns the same shared empty array every time", () => {
    const e = engine(DOOR);
    const first = e.apply({ image: image({}), nowMs: 0, wallMs: 0 }, logic(), 0);
    for (let k = 1; k < 5; k++) expect(e.apply({ image: image({}), nowMs: k * 10, wallMs: 0 }, logic(), k)).toBe(first);
    e.apply({ image: image({ "io1.door_closed": false }), nowMs: 50, wallMs: 0 }, logic(), 5);
    const again = e.apply({ image: image({ "io1.door_closed": false }), nowMs: 60, wallMs: 0 }, logic(), 6);
    expect(again).toBe(first);
    expect(e.state("door_closed")!.tripCount).toBe(1);
  });

  it("unlatched: clears by itself when the permit is true again, and stops forcing", () => {
    const e = engine(DOOR);
    e.apply({ image: image({ "io1.door_closed": false }), nowMs: 0, wallMs: 0 }, logic(), 0);
    const d = logic();
    const ev = e.apply({ image: image({}), nowMs: 10, wallMs: 10 }, d, 1);
    expect(ev).toEqual([{ kind: "clear", id: "door_closed", cycle: 1, wallMs: 10, cause: "permit true" }]);
    expect(d[at("io1.conveyor_run")]).toBe(true);
    expect(e.forcedBy(at("io1.conveyor_run"))).toBeUndefined();
  });

  it("a list of outputs forces each to its safe value", () => {
    const e = engine(LATCHED);
    const d = logic();
    e.apply({ image: image({ "io1.pressure": 1 }), nowMs: 0, wallMs: 0 }, d, 0);
    expect(d[at("io1.conveyor_run")]).toBe(false);
    expect(d[at("io1.speed")]).toBe(0);
  });

  it("forcedBy names the tripped interlock forcing a point; forcedPoints lists what it forces", () => {
    const e = engine(DOOR);
    expect(e.forcedPoints("door_closed")).toEqual([at("robot.ext_hold"), at("io1.conveyor_run")]);
    e.apply({ image: image({ "io1.door_closed": false }), nowMs: 0, wallMs: 0 }, logic(), 0);
    expect(e.forcedBy(at("io1.conveyor_run"))).toBe("door_closed");
    expect(e.forcedBy(at("io1.light_red"))).toBeUndefined();
  });

  it("keeps the permit's timers running while tripped", () => {
    const e = engine(`
interlocks:
  settle:
    permit: "ton(io1.door_closed, 30ms)"
    force: [io1.conveyor_run]
`);
    const trace: boolean[] = [];
    for (let k = 0; k < 6; k++) {
      e.apply({ image: image({}), nowMs: k * 10, wallMs: 0 }, logic(), k);
      trace.push(e.state("settle")!.tripped);
    }
    expect(trace).toEqual([true, true, true, false, false, false]);
  });
});

describe("InterlockEngine: quality", () => {
  it("trips on a referenced input that is not good even when the permit is true", () => {
    const e = engine(DOOR);
    const d = logic();
    const ev = e.apply({ image: image({}, { "curtain.clear": "uncertain_last_usable" }), nowMs: 0, wallMs: 5 }, d, 0);
    expect(ev).toEqual([{ kind: "trip", id: "door_closed", cycle: 0, wallMs: 5, cause: "input curtain.clear is uncertain_last_usable" }]);
    expect(d[at("io1.conveyor_run")]).toBe(false);
  });

  it("counts points referenced only inside quality_ok()", () => {
    const e = engine(`
interlocks:
  q:
    permit: "quality_ok(io1.ack) or io1.door_closed"
    force: [io1.light_red]
`);
    e.apply({ image: image({}, { "io1.ack": "bad_timeout" }), nowMs: 0, wallMs: 0 }, logic(), 0);
    expect(e.state("q")!.tripped).toBe(true);
  });

  it("a device comm loss trips every interlock that references one of its points, and only those", () => {
    const e = engine(`
interlocks:
  door:
    permit: "io1.door_closed"
    force: [io1.conveyor_run]
  air:
    permit: "io1.pressure > 1"
    force: [io1.speed]
  curtain:
    permit: "curtain.clear"
    force: [robot.ext_hold]
`);
    const lost = { "io1.door_closed": "bad_no_communication", "io1.pressure": "bad_no_communication", "io1.ack": "bad_no_communication" } as const;
    const d = logic();
    const ev = e.apply({ image: image({}, lost), nowMs: 0, wallMs: 0 }, d, 0);
    expect(ev.map((x: InterlockEvent) => [x.id, x.cause])).toEqual([
      ["door", "input io1.door_closed is bad_no_communication"],
      ["air", "input io1.pressure is bad_no_communication"],
    ]);
    expect(e.state("curtain")!.tripped).toBe(false);
    expect(d[at("io1.conveyor_run")]).toBe(false);
    expect(d[at("io1.speed")]).toBe(0);
    expect(d[at("robot.ext_hold")]).toBe(false);
  });

  it("a never-read input (waiting for initial data) trips it", () => {
    const e = engine(DOOR);
    const img = image({});
    img[at("curtain.clear")] = INITIAL_SAMPLE;
    e.apply({ image: img, nowMs: 0, wallMs: 0 }, logic(), 0);
    expect(e.state("door_closed")!.lastCause).toBe("input curtain.clear is bad_waiting_for_initial_data");
  });
});

describe("InterlockEngine: latching and reset", () => {
  const trip = (e: InterlockEngine): void => void e.apply({ image: image({ "io1.pressure": 1 }), nowMs: 0, wallMs: 0 }, logic(), 0);

  it("stays tripped when the permit comes back, until a reset is accepted", () => {
    const e = engine(LATCHED);
    trip(e);
    for (let k = 1; k < 4; k++) {
      const d = logic();
      expect(e.apply({ image: image({}), nowMs: k * 10, wallMs: 0 }, d, k)).toEqual([]);
      expect(d[at("io1.conveyor_run")]).toBe(false);
    }
    expect(e.state("air")).toMatchObject({ permitted: true, tripped: true });
    expect(e.reset("air", "engineer")).toEqual({ accepted: true });
    const d = logic();
    expect(e.apply({ image: image({}), nowMs: 50, wallMs: 77 }, d, 5)).toEqual([{ kind: "reset", id: "air", cycle: 5, wallMs: 77, cause: "reset by engineer" }]);
    expect(d[at("io1.conveyor_run")]).toBe(true);
    expect(e.state("air")!.tripped).toBe(false);
  });

  it("refuses a reset while the permit is false, naming the false terms, and does not remember it", () => {
    const e = engine(LATCHED);
    trip(e);
    expect(e.reset("air", "engineer")).toEqual({ accepted: false, code: "interlocked", reason: "permit is still false: io1.pressure > 3" });
    const ev = e.apply({ image: image({}), nowMs: 10, wallMs: 0 }, logic(), 1);
    expect(ev).toEqual([]);
    expect(e.state("air")!.tripped).toBe(true);
  });

  it("refuses a reset while a referenced input is not good", () => {
    const e = engine(LATCHED);
    trip(e);
    e.apply({ image: image({}, { "io1.pressure": "bad_timeout" }), nowMs: 10, wallMs: 0 }, logic(), 1);
    expect(e.reset("air", "engineer")).toEqual({ accepted: false, code: "interlocked", reason: "input io1.pressure is bad_timeout" });
  });

  it("an accepted reset whose permit has dropped by the next cycle trips again in that cycle, before any output is written", () => {
    const e = engine(LATCHED);
    trip(e);
    e.apply({ image: image({}), nowMs: 10, wallMs: 0 }, logic(), 1);
    expect(e.reset("air", "engineer").accepted).toBe(true);
    const d = logic();
    const ev = e.apply({ image: image({ "io1.pressure": 2 }), nowMs: 20, wallMs: 0 }, d, 2);
    expect(ev.map((x) => x.kind)).toEqual(["reset", "trip"]);
    expect(d[at("io1.conveyor_run")]).toBe(false);
    expect(e.state("air")!.tripCount).toBe(2);
  });

  it("checks roles: reset_roles, engineers always, viewers never", () => {
    const e = engine(LATCHED + DOOR.replace("interlocks:\n", "").replace("force:", "latch: true\n    force:"));
    e.apply({ image: image({ "io1.pressure": 1, "io1.door_closed": false }), nowMs: 0, wallMs: 0 }, logic(), 0);
    e.apply({ image: image({}), nowMs: 10, wallMs: 0 }, logic(), 1);
    expect(e.checkReset("air", "operator")).toMatchObject({ accepted: false, code: "forbidden" });
    expect(e.checkReset("air", "viewer")).toMatchObject({ accepted: false, code: "forbidden" });
    expect(e.checkReset("door_closed", "viewer")).toMatchObject({ accepted: false, code: "forbidden" });
    expect(e.checkReset("door_closed", "operator")).toEqual({ accepted: true });
    expect(e.reset("air", "operator").accepted).toBe(false);
    expect(e.state("air")!.tripped).toBe(true);
    expect(e.reset("air", "engineer").accepted).toBe(true);
  });

  it("refuses resets of unknown and untripped interlocks", () => {
    const e = engine(LATCHED);
    e.apply({ image: image({}), nowMs: 0, wallMs: 0 }, logic(), 0);
    expect(e.reset("nope", "engineer")).toMatchObject({ accepted: false, code: "unknown_target" });
    expect(e.reset("air", "engineer")).toEqual({ accepted: false, code: "not_ready", reason: "interlock air is not tripped" });
  });

  it("an unlatched interlock cannot be reset past a false permit", () => {
    const e = engine(DOOR);
    e.apply({ image: image({ "io1.door_closed": false }), nowMs: 0, wallMs: 0 }, logic(), 0);
    expect(e.reset("door_closed", "engineer")).toEqual({ accepted: false, code: "interlocked", reason: "permit is still false: io1.door_closed" });
  });
});
