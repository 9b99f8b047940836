/**
 * Config sections for interlocks, sequences and latches: schema (shape,
 * durations, JSON Schema) and compile errors with YAML path and line:col.
 */
import { pointTable } from "../helpers/point-table.js";
import { describe, expect, it } from "vitest";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import {
  checkSingleDriver,
  compileInterlocks,
  compileLatches,
  compileSequences,
  durationSchema,
  interlocksSectionSchema,
  latchesSectionSchema,
  sequencesSectionSchema,
} from "../../src/config/logic-schema.js";
import { SourceMap, type ConfigIssue } from "../../src/config/issues.js";
import { type Direction, type PointKind } from "../../src/core/points.js";

const SPEC: ReadonlyArray<readonly [string, PointKind, Direction]> = [
  ["io1.door_closed", "bool", "input"],
  ["io1.part_present", "bool", "input"],
  ["io1.pressure", "float", "input"],
  ["io1.ack", "bool", "input"],
  ["robot.ext_hold", "bool", "output"],
  ["io1.conveyor_run", "bool", "output"],
  ["io1.light_red", "bool", "output"],
  ["io1.speed", "int", "output"],
  ["io1.alarm_latched", "bool", "memory"],
  ["cell.count", "int", "memory"],
];
const { points: POINTS, idx: IDX, env: ENV } = pointTable(SPEC);

interface Sections {
  interlocks?: unknown;
  sequences?: unknown;
  latches?: unknown;
}

/** Compile every section in the YAML text; issues as "line:col path: message". */
function compileText(text: string) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(doc.errors[0]!.message);
  const map = new SourceMap(doc, lineCounter);
  const js = (doc.toJS() ?? {}) as Sections;
  const issues: ConfigIssue[] = [];
  const interlocks = compileInterlocks(interlocksSectionSchema.parse(js.interlocks), ENV, POINTS, map, issues);
  const sequences = compileSequences(sequencesSectionSchema.parse(js.sequences), ENV, POINTS, map, issues);
  const latches = compileLatches(latchesSectionSchema.parse(js.latches), ENV, POINTS, map, issues);
  return { interlocks, sequences, latches, issues: issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`) };
}

describe("schemas", () => {
  it("parses durations to ms", () => {
    expect(["500ms", "10s", "1.5s", "2min", "1h", 250].map((d) => durationSchema.parse(d))).toEqual([500, 10_000, 1500, 120_000, 3_600_000, 250]);
    for (const bad of ["10", "10 s", "s", "-1s", 0, -5, "1d"]) expect(durationSchema.safeParse(bad).success, String(bad)).toBe(false);
  });

  it("parses decimal durations to the exact ms (16.1s is 16100 ms, not 16.1 × 1000 = 16100.000000000002)", () => {
    // A step timeout of 16.1s printed "timed out after 16100.000000000002 ms" and tripped one cycle late.
    const cases: [string, number][] = [["16.1s", 16_100], ["2.01s", 2010], ["32.3s", 32_300], ["4.1min", 246_000], ["1.1h", 3_960_000], ["0.035h", 126_000], ["1.25ms", 1.25]];
    expect(cases.map(([d]) => durationSchema.parse(d))).toEqual(cases.map(([, ms]) => ms));
  });

  it("fills defaults: latch false, both roles, no transitions, not retained, empty sections", () => {
    const il = interlocksSectionSchema.parse({ a: { permit: "true", force: ["x.y"] } });
    expect(il.a).toEqual({ permit: "true", force: ["x.y"], latch: false, reset_roles: ["operator", "engineer"] });
    expect(sequencesSectionSchema.parse({ s: { initial: "a", steps: { a: {} } } }).s).toEqual({ initial: "a", steps: { a: { actions: {} } }, transitions: [], retain: false });
    expect(interlocksSectionSchema.parse(undefined)).toEqual({});
    expect(sequencesSectionSchema.parse(undefined)).toEqual({});
    expect(latchesSectionSchema.parse(undefined)).toEqual({});
  });

  it("is strict: unknown keys, empty reset_roles and viewer resets are refused", () => {
    expect(interlocksSectionSchema.safeParse({ a: { permit: "true", force: [], lach: true } }).success).toBe(false);
    expect(interlocksSectionSchema.safeParse({ a: { permit: "true", force: [], reset_roles: [] } }).success).toBe(false);
    expect(interlocksSectionSchema.safeParse({ a: { permit: "true", force: [], reset_roles: ["viewer"] } }).success).toBe(false);
    expect(sequencesSectionSchema.safeParse({ s: { initial: "a", steps: { a: { action: {} } } } }).success).toBe(false);
    expect(latchesSectionSchema.safeParse({ "x.y": { set: "true" } }).success).toBe(false);
  });

  it("produces a JSON Schema with descriptions (input side: durations are strings or numbers)", () => {
    const js = JSON.stringify(z.toJSONSchema(z.object({ i: interlocksSectionSchema, s: sequencesSectionSchema, l: latchesSectionSchema }), { io: "input" }));
    expect(js).toContain("Stay tripped until reset");
    expect(js).toContain('"pattern":"^(\\\\d+(?:\\\\.\\\\d+)?)(ms|s|min|h)$"');
  });
});

describe("compileInterlocks", () => {
  it("compiles both force forms: a map of values and a list of safe values", () => {
    const r = compileText(`
interlocks:
  door_closed:
    permit: "io1.door_closed and ton(io1.part_present, 2s)"
    force: { robot.ext_hold: true, io1.conveyor_run: false }
    latch: true
  air:
    permit: "io1.pressure > 3"
    force: [io1.conveyor_run, io1.speed]
    reset_roles: [engineer]
`);
    expect(r.issues).toEqual([]);
    expect(r.interlocks.map((d) => ({ id: d.id, force: d.force, latch: d.latch, roles: d.resetRoles }))).toEqual([
      { id: "door_closed", force: [{ index: IDX.get("robot.ext_hold"), value: true }, { index: IDX.get("io1.conveyor_run"), value: false }], latch: true, roles: ["operator", "engineer"] },
      { id: "air", force: [{ index: IDX.get("io1.conveyor_run"), value: false }, { index: IDX.get("io1.speed"), value: 0 }], latch: false, roles: ["engineer"] },
    ]);
  });

  it("reports unknown points, inputs, memory points, wrong types and expression errors with path and line", () => {
    const r = compileText(`interlocks:
  a:
    permit: "io1.door_closd and io1.pressure"
    force: { io1.conveyer_run: false, io1.door_closed: true, io1.speed: 1.5 }
  b:
    permit: "true"
    force:
      - io1.alarm_latched
      - nope.x
`);
    expect(r.issues).toEqual([
      `3:14 interlocks.a.permit: unknown point 'io1.door_closd' (did you mean 'io1.door_closed'?)`,
      "3:33 interlocks.a.permit: expected bool, got float",
      `4:14 interlocks.a.force.io1.conveyer_run: unknown point "io1.conveyer_run" (did you mean "io1.conveyor_run"?)`,
      `4:39 interlocks.a.force.io1.door_closed: "io1.door_closed" is an input; an interlock forces only outputs`,
      "4:62 interlocks.a.force.io1.speed: 1.5 does not fit io1.speed (int)",
      `8:9 interlocks.b.force.0: "io1.alarm_latched" is a memory point; an interlock forces only outputs`,
      `9:9 interlocks.b.force.1: unknown point "nope.x"`,
    ]);
    expect(r.interlocks.map((d) => d.id)).toEqual(["b"]);
  });

  it("rejects two interlocks forcing different values onto one output, an empty force and a duplicate", () => {
    const r = compileText(`interlocks:
  a:
    permit: "io1.door_closed"
    force: { robot.ext_hold: true }
  b:
    permit: "io1.pressure > 1"
    force: { robot.ext_hold: false, io1.conveyor_run: false }
  c:
    permit: "io1.pressure > 2"
    force: [robot.ext_hold]
  d:
    permit: "true"
    force: []
  e:
    permit: "true"
    force: [io1.light_red, io1.light_red]
`);
    expect(r.issues).toEqual([
      "7:14 interlocks.b.force.robot.ext_hold: robot.ext_hold is forced to false here but to true by interlock a; interlocks forcing one output must agree",
      "10:13 interlocks.c.force.0: robot.ext_hold is forced to false here but to true by interlock a; interlocks forcing one output must agree",
      "13:12 interlocks.d.force: force names no outputs",
      "16:28 interlocks.e.force.1: io1.light_red is listed twice",
    ]);
  });

  it("accepts two interlocks forcing the same value", () => {
    const r = compileText(`interlocks:
  a: { permit: "io1.door_closed", force: [io1.conveyor_run] }
  b: { permit: "io1.pressure > 1", force: { io1.conveyor_run: false } }
`);
    expect(r.issues).toEqual([]);
  });
});

describe("compileSequences", () => {
  it("compiles steps, actions, timeouts and transitions in order", () => {
    const r = compileText(`
sequences:
  pick:
    initial: idle
    fault_step: fault
    steps:
      idle:       { actions: { io1.conveyor_run: true } }
      wait_robot: { actions: { robot.ext_hold: false }, timeout: 10s }
      fault:      { actions: { io1.light_red: true } }
    transitions:
      - { from: idle, to: wait_robot, when: "io1.part_present" }
      - { from: wait_robot, to: idle, when: "rising(io1.ack)" }
      - { from: wait_robot, to: fault, when: "io1.pressure < 1" }
`);
    expect(r.issues).toEqual([]);
    const s = r.sequences[0]!;
    expect({ initial: s.initial, fault: s.faultStep }).toEqual({ initial: 0, fault: 2 });
    expect(s.steps.map((st) => [st.name, st.timeoutMs, st.actions, st.transitions.map((t) => [t.to, t.when.source])])).toEqual([
      ["idle", undefined, [{ index: IDX.get("io1.conveyor_run"), value: true }], [[1, "io1.part_present"]]],
      ["wait_robot", 10_000, [{ index: IDX.get("robot.ext_hold"), value: false }], [[0, "rising(io1.ack)"], [2, "io1.pressure < 1"]]],
      ["fault", undefined, [{ index: IDX.get("io1.light_red"), value: true }], []],
    ]);
  });

  it("reports missing steps, a timeout without a fault step, bad actions and expression errors with path and line", () => {
    const r = compileText(`sequences:
  pick:
    initial: idel
    steps:
      idle:
        actions: { io1.door_closed: true, io1.speed: "fast", cell.count: 1 }
      wait:
        timeout: 5s
    transitions:
      - { from: idle, to: wiat, when: "io1.part_present" }
      - from: wait
        to: idle
        when: "io1.ack or"
      - { from: idle, to: idle, when: "true" }
`);
    expect(r.issues).toEqual([
      `3:14 sequences.pick.initial: initial step "idel" is not one of the steps (did you mean "idle"?)`,
      `10:27 sequences.pick.transitions.0.to: step "wiat" is not one of the steps (did you mean "wait"?)`,
      "13:26 sequences.pick.transitions.1.when: expected a value, found end of expression",
      "14:27 sequences.pick.transitions.2.to: a transition from idle to itself",
      `6:20 sequences.pick.steps.idle.actions.io1.door_closed: "io1.door_closed" is an input; sequence actions drive only outputs`,
      `6:43 sequences.pick.steps.idle.actions.io1.speed: "fast" does not fit io1.speed (int)`,
      `6:62 sequences.pick.steps.idle.actions.cell.count: "cell.count" is a memory point; sequence actions drive only outputs`,
      "8:18 sequences.pick.steps.wait.timeout: a step timeout needs the sequence's fault_step (where a timed-out step goes)",
    ]);
    expect(r.sequences).toEqual([]);
  });

  it("reports an unknown fault_step, a fault step with a timeout and a sequence without steps", () => {
    const r = compileText(`sequences:
  a:
    initial: s
    fault_step: flt
    steps: { s: {} }
  b:
    initial: s
    fault_step: f
    steps: { s: {}, f: { timeout: 1s } }
  c:
    initial: s
    steps: {}
`);
    expect(r.issues).toEqual([
      `4:17 sequences.a.fault_step: fault_step "flt" is not one of the steps`,
      "9:35 sequences.b.steps.f.timeout: the fault step cannot have a timeout",
      "12:12 sequences.c.steps: a sequence needs at least one step",
    ]);
  });
});

describe("compileLatches", () => {
  it("compiles latches on bool outputs and memory points", () => {
    const r = compileText(`latches:
  io1.alarm_latched: { set: "io1.pressure < 3", reset: "rising(io1.ack)" }
  io1.light_red: { set: "io1.part_present", reset: "not io1.door_closed" }
`);
    expect(r.issues).toEqual([]);
    expect(r.latches.map((l) => [l.id, l.target, l.memory])).toEqual([
      ["io1.alarm_latched", IDX.get("io1.alarm_latched"), true],
      ["io1.light_red", IDX.get("io1.light_red"), false],
    ]);
  });

  it("reports unknown, input and non-bool targets and expression errors", () => {
    const r = compileText(`latches:
  io1.alarm: { set: "true", reset: "false" }
  io1.ack: { set: "true", reset: "false" }
  io1.speed: { set: "true", reset: "false" }
  io1.light_red: { set: "io1.pressure", reset: "false" }
`);
    expect(r.issues).toEqual([
      `2:3 latches.io1.alarm: unknown point "io1.alarm"`,
      `3:3 latches.io1.ack: "io1.ack" is an input; a latch drives an output or a memory point`,
      `4:3 latches.io1.speed: "io1.speed" is of type int; a latch drives a bool point`,
      "5:26 latches.io1.light_red.set: expected bool, got float",
    ]);
  });
});

describe("checkSingleDriver", () => {
  it("reports a point driven by logic and a latch, by logic and a sequence, or by two sequences", () => {
    const text = `latches:
  io1.light_red: { set: "true", reset: "false" }
sequences:
  a:
    initial: s
    steps:
      s: { actions: { io1.conveyor_run: true, robot.ext_hold: true } }
      t: { actions: { robot.ext_hold: false } }
  b:
    initial: s
    steps:
      s: { actions: { robot.ext_hold: true, io1.speed: 3 } }
`;
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter });
    const js = doc.toJS() as Sections;
    const issues: ConfigIssue[] = [];
    checkSingleDriver(["io1.light_red", "io1.speed"], sequencesSectionSchema.parse(js.sequences), latchesSectionSchema.parse(js.latches), new SourceMap(doc, lineCounter), issues);
    expect(issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`)).toEqual([
      "2:3 latches.io1.light_red: io1.light_red is also driven by a logic rule",
      "12:23 sequences.b.steps.s.actions.robot.ext_hold: robot.ext_hold is also driven by sequence a",
      "12:45 sequences.b.steps.s.actions.io1.speed: io1.speed is also driven by a logic rule",
    ]);
  });
});
