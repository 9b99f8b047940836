/** The command path: validation, roles, the per-cycle queue, manual values, interlock checks, rate limiting. */
import { pointTable } from "../helpers/point-table.js";
import { describe, expect, it } from "vitest";
import { LineCounter, parseDocument } from "yaml";
import { compileInterlocks, interlocksSectionSchema } from "../../src/config/logic-schema.js";
import { SourceMap, type ConfigIssue } from "../../src/config/issues.js";
import { CommandRouter, parseCommand, RateLimiter, TokenBucket, type Caller, type CommandResult, type Role } from "../../src/core/commands.js";
import { InterlockEngine } from "../../src/core/interlocks-engine.js";
import { type Direction, type PointKind } from "../../src/core/points.js";
import { goodSample, INITIAL_SAMPLE, type Sample, type Value } from "../../src/core/sample.js";
import { SequenceEngine } from "../../src/core/sequences.js";

const SPEC: ReadonlyArray<readonly [string, PointKind, Direction]> = [
  ["io1.door_closed", "bool", "input"],
  ["io1.conveyor_run", "bool", "output"],
  ["io1.light_red", "bool", "output"],
  ["io1.speed", "int", "output"],
  ["io1.setpoint", "float", "output"],
  ["robot.job", "string", "output"],
  ["cell.recipe", "int", "memory"],
];
const { points: POINTS, idx: IDX, env: ENV, at } = pointTable(SPEC);

const CELL = `
interlocks:
  door:
    permit: "io1.door_closed"
    force: [io1.conveyor_run, io1.speed]
    latch: true
`;

function interlocks(): InterlockEngine {
  const lineCounter = new LineCounter();
  const doc = parseDocument(CELL, { lineCounter });
  const issues: ConfigIssue[] = [];
  const defs = compileInterlocks(interlocksSectionSchema.parse((doc.toJS() as { interlocks: unknown }).interlocks), ENV, POINTS, new SourceMap(doc, lineCounter), issues);
  if (issues.length > 0) throw new Error(JSON.stringify(issues));
  return new InterlockEngine(defs, POINTS);
}

const img = (door: boolean): Sample[] => POINTS.map((p) => (p.id === "io1.door_closed" ? goodSample(door, 1) : INITIAL_SAMPLE));

function cell(extra: Partial<ConstructorParameters<typeof CommandRouter>[0]> = {}) {
  const il = interlocks();
  const seq = new SequenceEngine([]);
  const router = new CommandRouter({
    points: POINTS,
    pointIndex: IDX,
    operatorWritable: new Set([at("io1.light_red"), at("io1.conveyor_run")]),
    interlocks: il,
    sequences: seq,
    ...extra,
  });
  let k = 0;
  /** One cycle as the loop runs it: drain, base + manual values, interlocks, afterInterlocks. */
  const cycle = (door: boolean) => {
    const applied = router.drain(k);
    const desired: (Value | null)[] = POINTS.map((p) => p.safe);
    router.manual.overlay(desired);
    const events = il.apply({ image: img(door), nowMs: k * 10, wallMs: k }, desired, k);
    router.afterInterlocks(events);
    k++;
    return { applied, desired, events };
  };
  return { il, router, cycle };
}

const as = (role: Role, caller = "hmi"): Caller => ({ role, caller, nowMs: 0 });
const rejected = (code: string): Partial<CommandResult> => ({ accepted: false, code } as Partial<CommandResult>);

describe("CommandRouter: validation and roles", () => {
  it("a viewer may send nothing", () => {
    const { router } = cell();
    expect(router.submit({ kind: "set_point", point: "io1.light_red", value: true }, as("viewer"))).toMatchObject(rejected("forbidden"));
    expect(router.submit({ kind: "reset_interlock", id: "door" }, as("viewer"))).toMatchObject(rejected("forbidden"));
  });

  it("an operator may set operator-writable points only; an engineer may set any output or memory point", () => {
    const { router } = cell();
    expect(router.submit({ kind: "set_point", point: "io1.light_red", value: true }, as("operator"))).toEqual({ accepted: true });
    expect(router.submit({ kind: "set_point", point: "io1.speed", value: 10 }, as("operator"))).toEqual({
      accepted: false,
      code: "forbidden",
      reason: "role operator may not set io1.speed (not operator-writable)",
    });
    expect(router.submit({ kind: "set_point", point: "io1.speed", value: 10 }, as("engineer"))).toEqual({ accepted: true });
    expect(router.submit({ kind: "set_point", point: "cell.recipe", value: 3 }, as("engineer"))).toEqual({ accepted: true });
  });

  it("refuses unknown points (with a suggestion), inputs, and values that do not fit, without coercion", () => {
    const { router } = cell();
    const eng = as("engineer");
    expect(router.submit({ kind: "set_point", point: "io1.conveyor_rn", value: true }, eng)).toEqual({
      accepted: false,
      code: "unknown_target",
      reason: 'unknown point "io1.conveyor_rn" (did you mean "io1.conveyor_run"?)',
    });
    expect(router.submit({ kind: "set_point", point: "io1.door_closed", value: true }, eng)).toMatchObject(rejected("read_only"));
    for (const [point, value] of [
      ["io1.light_red", "true"],
      ["io1.light_red", 1],
      ["io1.speed", 1.5],
      ["io1.speed", "7"],
      ["io1.setpoint", Number.NaN],
      ["io1.setpoint", Number.POSITIVE_INFINITY],
      ["robot.job", 3],
      ["io1.light_red", null],
      ["io1.light_red", undefined],
    ] as const) {
      expect(router.submit({ kind: "set_point", point, value }, eng), `${point} = ${String(value)}`).toMatchObject(rejected("bad_value"));
    }
    expect(router.submit({ kind: "set_point", point: "io1.setpoint", value: 2 }, eng)).toEqual({ accepted: true }); // int into float
  });

  it("reset_sequence and reset_fault are for engineers; unknown targets are named", () => {
    const { router } = cell({ sequences: { has: (id) => id === "pick", reset: () => true }, faults: { resetFault: () => true } });
    expect(router.submit({ kind: "reset_sequence", id: "pick" }, as("operator"))).toMatchObject(rejected("forbidden"));
    expect(router.submit({ kind: "reset_sequence", id: "nope" }, as("engineer"))).toEqual({ accepted: false, code: "unknown_target", reason: 'no sequence "nope"' });
    expect(router.submit({ kind: "reset_sequence", id: "pick" }, as("engineer"))).toEqual({ accepted: true });
    expect(router.submit({ kind: "reset_fault" }, as("operator"))).toMatchObject(rejected("forbidden"));
    expect(router.submit({ kind: "reset_fault" }, as("engineer"))).toEqual({ accepted: true });
    expect(router.submit({ kind: "acknowledge", id: "a1" }, as("operator"))).toEqual({ accepted: false, code: "unknown_target", reason: 'no alarm "a1"' });
  });
});

describe("CommandRouter: the queue", () => {
  it("applies nothing before drain(), then everything in order at the start of the next cycle", () => {
    const { router, cycle } = cell();
    const first = cycle(true);
    expect(first.applied).toEqual([]);
    expect(cycle(true).applied).toBe(first.applied); // the shared empty array: no allocation when idle
    router.submit({ kind: "set_point", point: "io1.light_red", value: true }, as("operator", "mqtt:a"));
    router.submit({ kind: "set_point", point: "io1.light_red", value: false }, as("operator", "mqtt:b"));
    router.submit({ kind: "set_point", point: "cell.recipe", value: 4 }, as("engineer"));
    expect(router.manual.get(at("io1.light_red"))).toBeNull();
    const c = cycle(true);
    expect(c.applied).toEqual([
      { cycle: 2, command: { kind: "set_point", point: "io1.light_red", value: true }, role: "operator", caller: "mqtt:a", result: { accepted: true }, pointIndex: at("io1.light_red") },
      { cycle: 2, command: { kind: "set_point", point: "io1.light_red", value: false }, role: "operator", caller: "mqtt:b", result: { accepted: true }, pointIndex: at("io1.light_red") },
      { cycle: 2, command: { kind: "set_point", point: "cell.recipe", value: 4 }, role: "engineer", caller: "hmi", result: { accepted: true }, pointIndex: at("cell.recipe") },
    ]);
    expect(router.manual.get(at("io1.light_red"))).toBe(false);
    expect(c.desired[at("cell.recipe")]).toBe(4);
    expect(cycle(true).applied).toEqual([]);
  });

  it("refuses with busy when the queue for the next cycle is full", () => {
    const { router } = cell({ maxQueue: 2 });
    const cmd = { kind: "set_point", point: "io1.light_red", value: true } as const;
    expect(router.submit(cmd, as("operator")).accepted).toBe(true);
    expect(router.submit(cmd, as("operator")).accepted).toBe(true);
    expect(router.submit(cmd, as("operator"))).toMatchObject(rejected("busy"));
    router.drain(0);
    expect(router.submit(cmd, as("operator")).accepted).toBe(true);
  });

  it("refuses set_point on a point that logic or a sequence drives", () => {
    const { router } = cell({ drivenBy: (i) => (i === at("io1.light_red") ? "sequence pick" : undefined) });
    expect(router.submit({ kind: "set_point", point: "io1.light_red", value: true }, as("engineer"))).toEqual({
      accepted: false,
      code: "not_ready",
      reason: "io1.light_red is driven by sequence pick; switch to manual mode to set it",
    });
  });

  it("hands acknowledge and reset_fault to their ports at drain time and reports the outcome", () => {
    const acks: string[] = [];
    const { router } = cell({
      alarms: { has: () => true, checkAcknowledge: () => ({ accepted: true }), acknowledge: (id, role) => (acks.push(`${id}/${role}`), { accepted: true }) },
      faults: { resetFault: () => false },
    });
    router.submit({ kind: "acknowledge", id: "low_air" }, as("operator"));
    router.submit({ kind: "reset_fault" }, as("engineer"));
    expect(acks).toEqual([]);
    const out = router.drain(7);
    expect(acks).toEqual(["low_air/operator"]);
    expect(out.map((a) => a.result)).toEqual([{ accepted: true }, { accepted: false, code: "not_ready", reason: "the fault is still active" }]);
  });
});

describe("CommandRouter and interlocks", () => {
  it("refuses set_point on an output a tripped interlock forces, naming the interlock; manual values are still forced", () => {
    const { router, cycle } = cell();
    router.submit({ kind: "set_point", point: "io1.conveyor_run", value: true }, as("operator"));
    expect(cycle(true).desired[at("io1.conveyor_run")]).toBe(true); // applied at drain, overlaid as the base
    cycle(false); // door opens: trips
    expect(router.submit({ kind: "set_point", point: "io1.conveyor_run", value: true }, as("operator"))).toEqual({
      accepted: false,
      code: "interlocked",
      reason: "io1.conveyor_run is forced by interlock door",
    });
    expect(router.submit({ kind: "set_point", point: "io1.light_red", value: true }, as("operator")).accepted).toBe(true);
  });

  it("re-checks at drain: a set_point queued just before a trip is refused and not stored", () => {
    const { il, router, cycle } = cell();
    cycle(true);
    expect(router.submit({ kind: "set_point", point: "io1.speed", value: 80 }, as("engineer")).accepted).toBe(true);
    il.apply({ image: img(false), nowMs: 0, wallMs: 0 }, POINTS.map(() => null), 99); // trips before the loop drains
    const c = cycle(false);
    expect(c.applied[0]!.result).toEqual({ accepted: false, code: "interlocked", reason: "io1.speed is forced by interlock door" });
    expect(router.manual.get(at("io1.speed"))).toBeNull();
  });

  it("drops manual values of the outputs a tripping interlock forces, so they do not restart by themselves after the reset", () => {
    const { router, cycle } = cell();
    router.submit({ kind: "set_point", point: "io1.conveyor_run", value: true }, as("operator"));
    router.submit({ kind: "set_point", point: "io1.light_red", value: true }, as("operator"));
    cycle(true);
    const trip = cycle(false);
    expect(trip.events.map((e) => e.kind)).toEqual(["trip"]);
    expect(trip.desired[at("io1.conveyor_run")]).toBe(false);
    cycle(true);
    expect(router.submit({ kind: "reset_interlock", id: "door" }, as("operator"))).toEqual({ accepted: true });
    const after = cycle(true);
    expect(after.events.map((e) => e.kind)).toEqual(["reset"]);
    expect(after.desired[at("io1.conveyor_run")]).toBe(false); // manual value dropped at the trip
    expect(after.desired[at("io1.light_red")]).toBe(true); // not forced by door: kept
  });

  it("answers a reset while the permit is false at once, naming the false terms", () => {
    const { router, cycle } = cell();
    cycle(false);
    expect(router.submit({ kind: "reset_interlock", id: "door" }, as("operator"))).toEqual({
      accepted: false,
      code: "interlocked",
      reason: "permit is still false: io1.door_closed",
    });
    expect(router.submit({ kind: "reset_interlock", id: "nope" }, as("operator"))).toMatchObject(rejected("unknown_target"));
  });

  it("a reset queued while permitted but drained after the permit dropped is refused at drain", () => {
    const { il, router, cycle } = cell();
    cycle(false);
    cycle(true);
    expect(router.submit({ kind: "reset_interlock", id: "door" }, as("operator")).accepted).toBe(true);
    il.apply({ image: img(false), nowMs: 0, wallMs: 0 }, POINTS.map(() => null), 99);
    const c = cycle(false);
    expect(c.applied[0]!.result).toMatchObject(rejected("interlocked"));
    expect(il.state("door")!.tripped).toBe(true);
  });
});

describe("parseCommand", () => {
  it("accepts well-formed commands and refuses anything else with bad_command", () => {
    expect(parseCommand({ kind: "reset_fault" })).toEqual({ ok: true, command: { kind: "reset_fault" } });
    expect(parseCommand({ kind: "set_point", point: "io1.light_red", value: true })).toEqual({ ok: true, command: { kind: "set_point", point: "io1.light_red", value: true } });
    for (const bad of [null, "reset", { kind: "reboot" }, { kind: "reset_interlock" }, { kind: "reset_fault", extra: 1 }, { kind: "acknowledge", id: 3 }]) {
      const r = parseCommand(bad);
      expect(r.ok, JSON.stringify(bad)).toBe(false);
      if (!r.ok) expect(r.result).toMatchObject(rejected("bad_command"));
    }
  });
});

describe("rate limiting", () => {
  it("TokenBucket: capacity at once, then refills with time", () => {
    const b = new TokenBucket(3, 2);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(400)).toBe(false); // 0.8 token
    expect(b.take(500)).toBe(true);
    expect(b.take(500)).toBe(false);
    expect(b.full(10_000)).toBe(true);
    expect(b.take(5_000)).toBe(true); // time going backwards does not refill or break it
  });

  it("RateLimiter: one bucket per caller, refuses the flood, and keeps busy callers' buckets when full", () => {
    const l = new RateLimiter({ capacity: 2, perSecond: 1, maxCallers: 2 });
    expect([l.allow("a", 0), l.allow("a", 0), l.allow("a", 0)]).toEqual([true, true, false]);
    expect(l.allow("b", 0)).toBe(true);
    expect(l.allow("c", 0)).toBe(false); // a and b are not full again: c must wait
    expect(l.allow("a", 100)).toBe(false); // and a did not get a fresh bucket
    expect(l.allow("c", 5_000)).toBe(true); // a and b have refilled and are forgotten
  });

  it("the router refuses a caller over its rate with rate_limited", () => {
    const { router } = cell({ limiter: new RateLimiter({ capacity: 1, perSecond: 1, maxCallers: 10 }) });
    const cmd = { kind: "set_point", point: "io1.light_red", value: true } as const;
    expect(router.submit(cmd, { role: "operator", caller: "x", nowMs: 0 }).accepted).toBe(true);
    expect(router.submit(cmd, { role: "operator", caller: "x", nowMs: 10 })).toEqual({ accepted: false, code: "rate_limited", reason: "too many commands from x" });
    expect(router.submit(cmd, { role: "operator", caller: "y", nowMs: 10 }).accepted).toBe(true);
    expect(router.submit(cmd, { role: "operator", caller: "x", nowMs: 1010 }).accepted).toBe(true);
  });
});
