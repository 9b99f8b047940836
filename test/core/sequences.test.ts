/**
 * Sequences and latches in virtual time: nowMs advances 10 ms per cycle, cycle k at k*10 ms.
 * Definitions are compiled from YAML with the shipped compile functions.
 */
import { pointTable } from "../helpers/point-table.js";
import { describe, expect, it } from "vitest";
import { LineCounter, parseDocument } from "yaml";
import { compileLatches, compileSequences, latchesSectionSchema, sequencesSectionSchema } from "../../src/config/logic-schema.js";
import { SourceMap, type ConfigIssue } from "../../src/config/issues.js";
import { defaultSafe, type Direction, type PointKind } from "../../src/core/points.js";
import { goodSample, INITIAL_SAMPLE, sample, type Sample, type Status, type Value } from "../../src/core/sample.js";
import { LatchBank, SequenceEngine, type SequenceEvent } from "../../src/core/sequences.js";

const SPEC: ReadonlyArray<readonly [string, PointKind, Direction]> = [
  ["io1.part_present", "bool", "input"],
  ["robot.cycle_complete", "bool", "input"],
  ["io1.ack", "bool", "input"],
  ["io1.pressure", "float", "input"],
  ["io1.conveyor_run", "bool", "output"],
  ["io1.light_red", "bool", "output"],
  ["robot.start", "bool", "output"],
  ["io1.alarm_latched", "bool", "memory"],
];
const { points: POINTS, env: ENV, at } = pointTable(SPEC);

function parse(yaml: string): { doc: unknown; map: SourceMap } {
  const lineCounter = new LineCounter();
  const d = parseDocument(yaml, { lineCounter });
  return { doc: d.toJS(), map: new SourceMap(d, lineCounter) };
}
function sequences(yaml: string): SequenceEngine {
  const { doc, map } = parse(yaml);
  const issues: ConfigIssue[] = [];
  const defs = compileSequences(sequencesSectionSchema.parse((doc as { sequences: unknown }).sequences), ENV, POINTS, map, issues);
  if (issues.length > 0) throw new Error(JSON.stringify(issues));
  return new SequenceEngine(defs);
}
function latches(yaml: string): LatchBank {
  const { doc, map } = parse(yaml);
  const issues: ConfigIssue[] = [];
  const defs = compileLatches(latchesSectionSchema.parse((doc as { latches: unknown }).latches), ENV, POINTS, map, issues);
  if (issues.length > 0) throw new Error(JSON.stringify(issues));
  return new LatchBank(defs);
}

/** Good inputs with these values (false / 0 by default), `bad` ones with a status. */
function image(values: Partial<Record<string, Value>> = {}, bad: Partial<Record<string, Status>> = {}): Sample[] {
  return POINTS.map((p) => {
    if (p.direction !== "input") return INITIAL_SAMPLE;
    const v = values[p.id] ?? defaultSafe(p.kind);
    const st = bad[p.id];
    return st ? sample(v, st, 1) : goodSample(v, 1);
  });
}
const base = (): (Value | null)[] => POINTS.map((p) => p.safe);

/** Run cycles k = from..to-1 with the same inputs; the events and each cycle's step. */
function run(e: SequenceEngine, id: string, from: number, to: number, values: Partial<Record<string, Value>> = {}, bad: Partial<Record<string, Status>> = {}): { events: SequenceEvent[]; steps: string[] } {
  const events: SequenceEvent[] = [];
  const steps: string[] = [];
  for (let k = from; k < to; k++) {
    events.push(...e.apply({ image: image(values, bad), nowMs: k * 10, wallMs: 5000 + k * 10 }, base(), k));
    steps.push(e.state(id)!.step);
  }
  return { events, steps };
}

const PICK = `
sequences:
  pick:
    initial: idle
    fault_step: fault
    steps:
      idle:       { actions: { io1.conveyor_run: true } }
      wait_robot: { actions: { robot.start: true }, timeout: 100ms }
      fault:      { actions: { io1.light_red: true } }
    transitions:
      - { from: idle, to: wait_robot, when: "io1.part_present" }
      - { from: wait_robot, to: idle, when: "robot.cycle_complete" }
      - { from: fault, to: idle, when: "rising(io1.ack)" }
`;

describe("SequenceEngine", () => {
  it("holds the active step's actions, takes a true transition, and releases the old step's outputs", () => {
    const e = sequences(PICK);
    const d0 = base();
    expect(e.apply({ image: image(), nowMs: 0, wallMs: 0 }, d0, 0)).toEqual([]);
    expect(d0[at("io1.conveyor_run")]).toBe(true);
    expect(d0[at("robot.start")]).toBe(false);
    const d1 = base();
    const ev = e.apply({ image: image({ "io1.part_present": true }), nowMs: 10, wallMs: 99 }, d1, 1);
    expect(ev).toEqual([{ kind: "step", id: "pick", from: "idle", to: "wait_robot", cycle: 1, wallMs: 99, cause: "io1.part_present" }]);
    expect(d1[at("robot.start")]).toBe(true);
    expect(d1[at("io1.conveyor_run")]).toBe(false); // released: back to the base value
    expect(e.state("pick")).toEqual({ id: "pick", step: "wait_robot", enteredAtMs: 10, stepElapsedMs: 0, faulted: false, lastFault: "" });
    expect(e.states()).toEqual([e.state("pick")]);
  });

  it("takes no transition in the cycle a step is entered (the first cycle enters the initial step), so at most one step per cycle", () => {
    const e = sequences(PICK);
    const r = run(e, "pick", 0, 5, { "io1.part_present": true, "robot.cycle_complete": true });
    expect(r.steps).toEqual(["idle", "wait_robot", "idle", "wait_robot", "idle"]);
  });

  it("emits nothing while it stays", () => {
    const quiet = sequences(PICK);
    const first = quiet.apply({ image: image(), nowMs: 0, wallMs: 0 }, base(), 0);
    expect(quiet.apply({ image: image(), nowMs: 10, wallMs: 0 }, base(), 1)).toBe(first);
  });

  it("a step that runs out of time goes to the fault step with lastFault, at the first cycle at or after the timeout", () => {
    const e = sequences(PICK);
    run(e, "pick", 0, 1);
    run(e, "pick", 1, 2, { "io1.part_present": true }); // wait_robot entered at t=10
    const r = run(e, "pick", 2, 13);
    expect(r.steps).toEqual([...Array<string>(9).fill("wait_robot"), "fault", "fault"]);
    expect(r.events).toEqual([
      { kind: "fault", id: "pick", from: "wait_robot", to: "fault", cycle: 11, wallMs: 5110, cause: "step wait_robot timed out after 100 ms" },
    ]);
    expect(e.state("pick")).toMatchObject({ step: "fault", faulted: true, lastFault: "step wait_robot timed out after 100 ms", enteredAtMs: 110, stepElapsedMs: 10 });
  });

  it("the timeout wins over a transition that turns true in the same cycle", () => {
    const e = sequences(PICK);
    run(e, "pick", 0, 1);
    run(e, "pick", 1, 2, { "io1.part_present": true });
    expect(run(e, "pick", 2, 11).steps.at(-1)).toBe("wait_robot");
    expect(run(e, "pick", 11, 12, { "robot.cycle_complete": true }).steps).toEqual(["fault"]);
  });

  it("leaves the fault step on a rising edge that happens after entering it, not on a level held from before", () => {
    const e = sequences(PICK);
    run(e, "pick", 0, 1);
    run(e, "pick", 1, 2, { "io1.part_present": true });
    expect(run(e, "pick", 2, 12, { "io1.ack": true }).steps.at(-1)).toBe("fault"); // ack held true into the fault
    expect(run(e, "pick", 12, 16, { "io1.ack": true }).steps).toEqual(["fault", "fault", "fault", "fault"]);
    expect(run(e, "pick", 16, 17, { "io1.ack": false }).steps).toEqual(["fault"]);
    expect(run(e, "pick", 17, 18, { "io1.ack": true }).steps).toEqual(["idle"]);
  });

  it("ton() in a transition counts from step entry", () => {
    const e = sequences(`
sequences:
  s:
    initial: a
    steps: { a: {}, b: {} }
    transitions:
      - { from: a, to: b, when: "io1.part_present" }
      - { from: b, to: a, when: "ton(io1.ack, 50ms)" }
`);
    run(e, "s", 0, 10, { "io1.ack": true }); // ack true for 100 ms before b is entered
    const r = run(e, "s", 10, 18, { "io1.part_present": true, "io1.ack": true });
    // b entered at t=100: ton sees ack from there and is true at t=150.
    expect(r.steps).toEqual(["b", "b", "b", "b", "b", "a", "b", "b"]);
  });

  it("evaluates transitions in order: the first true one wins", () => {
    const e = sequences(`
sequences:
  s:
    initial: a
    steps: { a: {}, b: {}, c: {} }
    transitions:
      - { from: a, to: c, when: "io1.pressure > 5" }
      - { from: a, to: b, when: "io1.pressure > 2" }
`);
    expect(run(e, "s", 0, 2, { "io1.pressure": 9 }).steps).toEqual(["a", "c"]);
    const e2 = sequences(`
sequences:
  s:
    initial: a
    steps: { a: {}, b: {}, c: {} }
    transitions:
      - { from: a, to: b, when: "io1.pressure > 2" }
      - { from: a, to: c, when: "io1.pressure > 5" }
`);
    expect(run(e2, "s", 0, 2, { "io1.pressure": 9 }).steps).toEqual(["a", "b"]);
  });

  it("does not take a transition whose condition uses a point that is not good; quality_ok() can lead to a fault step", () => {
    const yaml = `
sequences:
  s:
    initial: a
    fault_step: f
    steps: { a: {}, b: {}, f: {} }
    transitions:
      - { from: a, to: b, when: "io1.part_present" }
      - { from: a, to: f, when: "not quality_ok(robot.cycle_complete)" }
`;
    const e = sequences(yaml);
    expect(run(e, "s", 0, 3, { "io1.part_present": true }, { "io1.part_present": "uncertain_last_usable" }).steps).toEqual(["a", "a", "a"]);
    expect(run(e, "s", 3, 4, { "io1.part_present": true }, { "io1.part_present": "uncertain_last_usable", "robot.cycle_complete": "bad_timeout" }).steps).toEqual(["f"]);
  });

  it("reset() goes to the initial step at the next apply, restarts timers and keeps lastFault", () => {
    const e = sequences(PICK);
    run(e, "pick", 0, 1);
    run(e, "pick", 1, 2, { "io1.part_present": true });
    run(e, "pick", 2, 13);
    expect(e.state("pick")!.step).toBe("fault");
    expect(e.reset("pick")).toBe(true);
    expect(e.reset("nope")).toBe(false);
    expect(e.state("pick")!.step).toBe("fault"); // not before the next cycle
    const r = run(e, "pick", 13, 14);
    expect(r.events).toEqual([{ kind: "reset", id: "pick", from: "fault", to: "idle", cycle: 13, wallMs: 5130, cause: "reset" }]);
    expect(e.state("pick")).toMatchObject({ step: "idle", enteredAtMs: 130, faulted: false, lastFault: "step wait_robot timed out after 100 ms" });
    // wait_robot's timeout counts afresh: entered at t=140, still there at t=230.
    run(e, "pick", 14, 15, { "io1.part_present": true });
    expect(run(e, "pick", 15, 24).steps.every((s) => s === "wait_robot")).toBe(true);
    expect(run(e, "pick", 24, 25).steps).toEqual(["fault"]);
  });

  it("a reset restarts the transitions' timers of the initial step", () => {
    const e = sequences(`
sequences:
  s:
    initial: a
    steps: { a: {}, b: {} }
    transitions:
      - { from: a, to: b, when: "ton(io1.ack, 50ms)" }
`);
    run(e, "s", 0, 4, { "io1.ack": true }); // 30 ms of the 50
    e.reset("s");
    const r = run(e, "s", 4, 10, { "io1.ack": true });
    expect(r.steps).toEqual(["a", "a", "a", "a", "a", "b"]); // entered again at t=40, true at t=90
  });
});

describe("LatchBank (SR, reset dominant)", () => {
  const ALARM = `
latches:
  io1.alarm_latched: { set: "io1.pressure < 3", reset: "rising(io1.ack)" }
  io1.light_red: { set: "io1.part_present", reset: "robot.cycle_complete" }
`;
  type Step = { values?: Partial<Record<string, Value>>; bad?: Partial<Record<string, Status>> };
  function trace(b: LatchBank, point: string, steps: readonly Step[]): string {
    let out = "";
    steps.forEach((s, k) => {
      const d = base();
      b.apply({ image: image({ "io1.pressure": 5, ...s.values }, s.bad), nowMs: k * 10, wallMs: k }, d);
      out += d[at(point)] === true ? "1" : "0";
    });
    return out;
  }

  it("sets, holds, and resets on the edge; reset wins over set", () => {
    const steps: Step[] = [{}, { values: { "io1.pressure": 2 } }, {}, {}, { values: { "io1.ack": true } }, {}, { values: { "io1.pressure": 1, "io1.ack": true } }, { values: { "io1.pressure": 1, "io1.ack": false } }, { values: { "io1.pressure": 1, "io1.ack": true } }];
    expect(trace(latches(ALARM), "io1.alarm_latched", steps)).toBe("011100010");
  });

  it("a set that uses a point that is not good does not set; a reset that does, resets", () => {
    const b = latches(ALARM);
    expect(trace(b, "io1.light_red", [{ values: { "io1.part_present": true }, bad: { "io1.part_present": "bad_timeout" } }, {}])).toBe("00");
    expect(trace(latches(ALARM), "io1.light_red", [{ values: { "io1.part_present": true } }, {}, { bad: { "robot.cycle_complete": "bad_no_communication" } }, {}])).toBe("1100");
  });

  it("a memory latch updates the image and reports only changes", () => {
    const b = latches(ALARM);
    const writes: Array<[number, boolean, number]> = [];
    const img = (): Sample[] => image({ "io1.pressure": 2 });
    const first = img();
    b.apply({ image: first, nowMs: 0, wallMs: 7 }, base(), (i, v, ts) => writes.push([i, v, ts]));
    expect(first[at("io1.alarm_latched")]).toMatchObject({ value: true, quality: "good", sourceTs: 7 });
    // The loop puts it into the input table, so the next image already holds it: nothing to write.
    const second = img();
    second[at("io1.alarm_latched")] = first[at("io1.alarm_latched")]!;
    b.apply({ image: second, nowMs: 10, wallMs: 8 }, base(), (i, v, ts) => writes.push([i, v, ts]));
    expect(writes).toEqual([[at("io1.alarm_latched"), true, 7]]);
    expect(b.value("io1.alarm_latched")).toBe(true);
    b.resetAll();
    expect(b.value("io1.alarm_latched")).toBe(false);
  });
});
