/**
 * What is retained and how it goes back into the engines (pure: no file).
 * The engines and the config are the shipped ones, compiled from YAML.
 */
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/load.js";
import { InterlockEngine } from "../../src/core/interlocks-engine.js";
import { SequenceEngine } from "../../src/core/sequences.js";
import { goodSample, INITIAL_SAMPLE, type Sample, type Value } from "../../src/core/sample.js";
import { captureState, parseStateBody, restoreState, stateBody, type RetainingEngines } from "../../src/persist/state.js";

const YAML = (retain = "true") => `
version: 1
cell: { id: c1 }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: 1502
    points:
      guard: { address: "di:0" }
      part:  { address: "di:1" }
      motor: { address: "coil:0", direction: output, safe: false }
      clamp: { address: "coil:1", direction: output, safe: false }
      lamp:  { address: "coil:2", direction: output, safe: false }
interlocks:
  guard: { permit: "io.guard", force: [io.motor], latch: true }
  soft:  { permit: "io.part", force: [io.lamp] }
sequences:
  kept:
    retain: ${retain}
    initial: idle
    steps: { idle: {}, clamping: { actions: { io.clamp: true } } }
    transitions: [ { from: idle, to: clamping, when: "io.part" } ]
  fresh:
    initial: a
    steps: { a: {}, b: {} }
    transitions: [ { from: a, to: b, when: "io.part" } ]
`;

class Cell implements RetainingEngines {
  readonly model;
  readonly interlocks: InterlockEngine;
  readonly sequences: SequenceEngine;
  desired: (Value | null)[] = [];
  private k = 0;

  constructor(yaml = YAML()) {
    this.model = loadConfigText(yaml).model;
    this.interlocks = new InterlockEngine(this.model.interlocks, this.model.points);
    this.sequences = new SequenceEngine(this.model.sequences);
  }

  /** One cycle of sequences then interlocks on these input values; returns the desired outputs by point id. */
  cycle(inputs: { guard: boolean; part: boolean }, wallMs = 1_700_000_000_000 + this.k * 20): Record<string, Value | null> {
    const image: Sample[] = this.model.points.map((p) =>
      p.direction === "input" ? goodSample(p.id === "io.guard" ? inputs.guard : inputs.part, wallMs) : INITIAL_SAMPLE,
    );
    const ctx = { image, nowMs: this.k * 20, wallMs };
    this.desired = this.model.points.map((p) => (p.direction === "input" ? null : p.safe));
    for (const p of this.model.points) if (p.direction === "output") this.desired[p.index] = true; // what logic asks for
    this.sequences.apply(ctx, this.desired, this.k);
    this.interlocks.apply(ctx, this.desired, this.k);
    this.k++;
    return Object.fromEntries(this.model.points.map((p) => [p.id, this.desired[p.index]!]));
  }
}

/** Save `from` through the file body and restore it into a fresh cell. */
function restart(from: Cell, yaml?: string): { cell: Cell; notes: ReturnType<typeof restoreState> } {
  const body = stateBody(captureState("c1", from), 1_700_000_999_000);
  const parsed = parseStateBody(body, "c1");
  if (!parsed.ok) throw new Error(parsed.reason);
  const cell = new Cell(yaml);
  return { cell, notes: restoreState(cell, parsed.state) };
}

describe("latched interlocks over a restart", () => {
  it("a latched trip is tripped before the first cycle, stays tripped with its permit back, and clears only on a reset", () => {
    const a = new Cell();
    a.cycle({ guard: true, part: false });
    a.cycle({ guard: false, part: false }); // trip
    const tripAt = a.interlocks.state("guard")!.lastTripWallMs;
    const { cell: b, notes } = restart(a);
    expect(notes).toContainEqual(expect.objectContaining({ id: "guard", kind: "restored" }));

    const g = b.interlocks.state("guard")!;
    expect(g.tripped).toBe(true); // before any apply(): cycle 0
    expect(g.tripCount).toBe(1);
    expect(g.lastTripWallMs).toBe(tripAt);
    expect(g.lastCause).toBe(`restored from state file (tripped at ${new Date(tripAt).toISOString()}, cause permit false: io.guard)`);
    expect(b.interlocks.forcedBy(b.model.pointIndex.get("io.motor")!)).toBe("guard");
    expect(b.interlocks.checkReset("guard", "operator")).toMatchObject({ accepted: false, reason: "not evaluated yet" });

    for (let i = 0; i < 5; i++) expect(b.cycle({ guard: true, part: false })["io.motor"]).toBe(false);
    expect(b.interlocks.reset("guard", "operator")).toEqual({ accepted: true });
    expect(b.cycle({ guard: true, part: false })["io.motor"]).toBe(true);
    expect(b.interlocks.snapshot().find((s) => s.id === "guard")).toMatchObject({ tripped: false, tripCount: 1, cause: "permit false: io.guard" });
  });

  it("saving a restored trip again keeps the original cause (no nesting over many restarts)", () => {
    const a = new Cell();
    a.cycle({ guard: false, part: false });
    let c = a;
    for (let i = 0; i < 3; i++) c = restart(c).cell;
    expect(c.interlocks.snapshot().find((s) => s.id === "guard")!.cause).toBe("permit false: io.guard");
    expect(c.interlocks.state("guard")!.lastCause).toMatch(/^restored from state file \(tripped at .*, cause permit false: io\.guard\)$/);
    // A new trip after the reset has its own cause.
    c.cycle({ guard: true, part: false });
    c.interlocks.reset("guard", "engineer");
    c.cycle({ guard: true, part: false });
    c.cycle({ guard: false, part: false });
    expect(c.interlocks.snapshot().find((s) => s.id === "guard")).toMatchObject({ tripped: true, tripCount: 2, cause: "permit false: io.guard" });
    expect(c.interlocks.state("guard")!.lastCause).toBe("permit false: io.guard");
  });

  it("an unlatched trip is not brought back (its permit decides), but its counter is", () => {
    const a = new Cell();
    a.cycle({ guard: true, part: false }); // soft trips: part false
    const { cell: b, notes } = restart(a);
    expect(notes).toEqual([]);
    expect(b.interlocks.state("soft")).toMatchObject({ tripped: false, tripCount: 1, lastCause: "permit false: io.part" });
    expect(b.cycle({ guard: true, part: true })["io.lamp"]).toBe(true);
  });

  it("drops what no longer fits the config, saying so", () => {
    const a = new Cell();
    a.cycle({ guard: false, part: false });
    const unlatched = YAML().replace("force: [io.motor], latch: true", "force: [io.motor], latch: false").replace("  soft:  { permit: \"io.part\", force: [io.lamp] }\n", "");
    const { cell: b, notes } = restart(a, unlatched);
    expect(notes.map((n) => [n.id, n.kind, n.message])).toEqual([
      ["guard", "dropped", "interlock guard was tripped and latched, but is no longer latched: its permit decides"],
      ["soft", "dropped", "interlock soft is no longer in the config: its saved state is dropped"],
    ]);
    expect(b.interlocks.state("guard")!.tripped).toBe(false);
  });

  it("restore() after a cycle is a programming error", () => {
    const a = new Cell();
    a.cycle({ guard: true, part: true });
    expect(() => a.interlocks.restore([])).toThrow(/after apply/);
    expect(() => a.sequences.restore([])).toThrow(/after apply/);
  });
});

describe("sequences over a restart", () => {
  it("a retained sequence resumes at its step (entered afresh, actions after the first cycle); the others start at their initial step", () => {
    const a = new Cell();
    a.cycle({ guard: true, part: false });
    a.cycle({ guard: true, part: true });
    expect(a.sequences.state("kept")!.step).toBe("clamping");
    expect(a.sequences.state("fresh")!.step).toBe("b");
    const { cell: b, notes } = restart(a);
    expect(notes).toEqual([{ id: "kept", kind: "restored", message: "sequence kept resumes at step clamping (retained)" }]);
    expect(b.sequences.state("kept")!.step).toBe("clamping");
    expect(b.sequences.state("fresh")!.step).toBe("a");
    expect(b.cycle({ guard: true, part: false })["io.clamp"]).toBe(true);
    expect(b.sequences.state("kept")!.step).toBe("clamping");
  });

  it("without retain: true the step is not brought back", () => {
    const a = new Cell(YAML("false"));
    a.cycle({ guard: true, part: false });
    a.cycle({ guard: true, part: true });
    const { cell: b, notes } = restart(a, YAML("false"));
    expect(notes).toEqual([]);
    expect(b.sequences.state("kept")!.step).toBe("idle");
  });

  it("a saved step that is no longer in the config starts the sequence at its initial step, saying so", () => {
    const a = new Cell();
    a.cycle({ guard: true, part: false });
    a.cycle({ guard: true, part: true });
    const renamed = YAML().replace("clamping: { actions", "gripping: { actions").replace("to: clamping", "to: gripping");
    const { cell: b, notes } = restart(a, renamed);
    expect(notes).toEqual([{ id: "kept", kind: "dropped", message: "sequence kept: saved step clamping is no longer in the config; it starts at idle" }]);
    expect(b.sequences.state("kept")!.step).toBe("idle");
  });
});

describe("parseStateBody", () => {
  it("refuses a body that is not JSON, has the wrong shape, or belongs to another cell", () => {
    expect(parseStateBody("{", "c1")).toMatchObject({ ok: false, reason: expect.stringMatching(/^the body is not JSON/) as string });
    expect(parseStateBody('{"cell":"c1","savedAtWallMs":1,"interlocks":[{"id":"x"}],"sequences":[]}', "c1")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^the body does not have the v1 shape: interlocks\.0\.tripped/) as string,
    });
    const body = stateBody(captureState("c2", new Cell()), 1);
    expect(parseStateBody(body, "c1")).toEqual({ ok: false, reason: 'it was written by cell "c2", this is cell "c1"' });
  });
});
