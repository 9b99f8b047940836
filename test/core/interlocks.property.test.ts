/**
 * Interlock properties (fast-check), for ANY sequence of process images
 * (random values, random qualities), logic outputs and reset commands:
 * - after apply(), every output named by a tripped interlock is at its forced value;
 * - an interlock whose referenced points are not all good is tripped;
 * - a latched interlock never clears without an accepted reset, and a reset is
 *   accepted only while the permit was true;
 * - for stateless permits the engine matches a small reference model exactly.
 */
import { pointTable } from "../helpers/point-table.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LineCounter, parseDocument } from "yaml";
import { compileInterlocks, interlocksSectionSchema } from "../../src/config/logic-schema.js";
import { SourceMap, type ConfigIssue } from "../../src/config/issues.js";
import type { Role } from "../../src/core/commands.js";
import { InterlockEngine } from "../../src/core/interlocks-engine.js";
import type { InterlockDef } from "../../src/core/interlocks.js";
import { type Direction, type PointDef, type PointKind } from "../../src/core/points.js";
import { INITIAL_SAMPLE, sample, STATUSES, type Sample, type Status, type Value } from "../../src/core/sample.js";

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
const { points: POINTS, idx: IDX, env: ENV } = pointTable(SPEC);
const INPUTS = POINTS.filter((p) => p.direction === "input");
const OUTPUTS = POINTS.filter((p) => p.direction === "output");

const CELL = `
interlocks:
  door:                       # unlatched
    permit: "io1.door_closed and curtain.clear"
    force: { robot.ext_hold: true, io1.conveyor_run: false }
  air:                        # latched, operators may reset
    permit: "io1.pressure > 3 or quality_ok(io1.ack)"
    force: [io1.conveyor_run, io1.light_red]
    latch: true
  ack:                        # latched, engineers only
    permit: "not io1.ack"
    force: { io1.speed: 0 }
    latch: true
    reset_roles: [engineer]
  settle:                     # latched, stateful permit: checked by the generic properties only
    permit: "ton(curtain.clear, 20ms) and rising(io1.door_closed) or io1.pressure > 8"
    force: { io1.light_red: false, robot.ext_hold: true }
    latch: true
`;

function compiled(): InterlockDef[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(CELL, { lineCounter });
  const issues: ConfigIssue[] = [];
  const section = interlocksSectionSchema.parse((doc.toJS() as { interlocks: unknown }).interlocks);
  const defs = compileInterlocks(section, ENV, POINTS, new SourceMap(doc, lineCounter), issues);
  if (issues.length > 0) throw new Error(JSON.stringify(issues));
  return defs;
}

type Raw = { value: Value | null; status: Status };
const rawFor = (p: PointDef): fc.Arbitrary<Raw> =>
  fc.record({
    value: p.kind === "bool" ? fc.option(fc.boolean()) : fc.option(fc.double({ min: -10, max: 20, noNaN: true })),
    // Weighted towards good so that permits are often true and resets are often accepted.
    status: fc.oneof({ arbitrary: fc.constant<Status>("good"), weight: 4 }, { arbitrary: fc.constantFrom(...STATUSES), weight: 1 }),
  });
const imageArb = fc.tuple(...INPUTS.map(rawFor));
const resetArb = fc.record({ id: fc.constantFrom("door", "air", "ack", "settle", "nope"), role: fc.constantFrom<Role>("viewer", "operator", "engineer") });
const stepArb = fc.record({
  image: imageArb,
  resets: fc.array(resetArb, { maxLength: 3 }),
  logic: fc.tuple(fc.boolean(), fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: 99 })),
});

function toImage(raws: readonly Raw[]): Sample[] {
  const img: Sample[] = POINTS.map(() => INITIAL_SAMPLE);
  INPUTS.forEach((p, k) => {
    const r = raws[k]!;
    img[p.index] = r.value === null && r.status === "bad_waiting_for_initial_data" ? INITIAL_SAMPLE : sample(r.value, r.status, 1);
  });
  return img;
}

/** The reference model's permit for the stateless interlocks (expression semantics: a null value reads as false / 0). */
function modelPermitted(id: string, img: readonly Sample[]): boolean {
  const good = (n: string): boolean => img[IDX.get(n)!]!.quality === "good";
  const b = (n: string): boolean => img[IDX.get(n)!]!.value === true;
  const num = (n: string): number => {
    const v = img[IDX.get(n)!]!.value;
    return typeof v === "number" ? v : 0;
  };
  switch (id) {
    case "door":
      return good("io1.door_closed") && good("curtain.clear") && b("io1.door_closed") && b("curtain.clear");
    case "air":
      return good("io1.pressure") && good("io1.ack") && (num("io1.pressure") > 3 || good("io1.ack"));
    case "ack":
      return good("io1.ack") && !b("io1.ack");
    default:
      throw new Error(id);
  }
}

const MODELLED = ["door", "air", "ack"] as const;

describe("interlock properties", () => {
  it("forced outputs, quality trips, latching and resets hold for any images and commands", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), (steps) => {
        const defs = compiled();
        const e = new InterlockEngine(defs, POINTS);
        const model = new Map<string, boolean>(MODELLED.map((id) => [id, false]));
        let prevImage: Sample[] | undefined;
        steps.forEach((step, cycle) => {
          // Commands at the start of the cycle, judged on the previous cycle.
          for (const r of step.resets) {
            const before = e.state(r.id);
            const res = e.reset(r.id, r.role);
            if (res.accepted) {
              expect(before!.permitted, `${r.id} reset accepted while not permitted`).toBe(true);
              expect(before!.latched || !before!.tripped).toBe(true);
            }
            if (model.has(r.id)) {
              const def = defs.find((d) => d.id === r.id)!;
              const roleOk = r.role === "engineer" || (r.role !== "viewer" && def.resetRoles.includes(r.role));
              const expectAccept = roleOk && model.get(r.id)! && prevImage !== undefined && modelPermitted(r.id, prevImage);
              expect(res.accepted, `reset ${r.id} by ${r.role}`).toBe(expectAccept);
              if (expectAccept) model.set(r.id, false);
            }
          }
          const trippedBefore = new Map(defs.map((d) => [d.id, e.state(d.id)!.tripped]));
          const img = toImage(step.image);
          const [hold, run, red, speed] = step.logic;
          const desired: (Value | null)[] = POINTS.map((p) => (p.direction === "input" ? null : ({ "robot.ext_hold": hold, "io1.conveyor_run": run, "io1.light_red": red, "io1.speed": speed })[p.id]!));
          e.apply({ image: img, nowMs: cycle * 10, wallMs: 1000 + cycle * 10 }, desired, cycle);

          for (const d of defs) {
            const s = e.state(d.id)!;
            // Refs not all good => tripped.
            if (d.permit.refs.some((r) => img[r]!.quality !== "good")) expect(s.tripped, `${d.id} with a bad ref`).toBe(true);
            // Tripped => every forced output at its forced value.
            if (s.tripped) for (const f of d.force) expect(desired[f.index], `${d.id} forces ${POINTS[f.index]!.id}`).toBe(f.value);
            // A latched interlock still tripped after this cycle's commands stays tripped through apply().
            if (d.latch && trippedBefore.get(d.id) === true) expect(s.tripped).toBe(true);
          }
          // Outputs no tripped interlock names keep the logic's value.
          for (const p of OUTPUTS) if (e.forcedBy(p.index) === undefined) expect(desired[p.index]).toBe(({ "robot.ext_hold": hold, "io1.conveyor_run": run, "io1.light_red": red, "io1.speed": speed })[p.id]);

          for (const id of MODELLED) {
            const def = defs.find((d) => d.id === id)!;
            const permitted = modelPermitted(id, img);
            if (!permitted) model.set(id, true);
            else if (!def.latch) model.set(id, false);
            expect(e.state(id), `cycle ${cycle}`).toMatchObject({ permitted, tripped: model.get(id) });
          }
          prevImage = img;
        });
      }),
      { numRuns: 300 },
    );
  });

  it("a latched interlock never clears without an accepted reset, whatever the permit does", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ image: imageArb, reset: fc.boolean() }), { minLength: 2, maxLength: 60 }), (steps) => {
        const e = new InterlockEngine(compiled(), POINTS);
        let wasTripped = false;
        steps.forEach((step, cycle) => {
          const permittedBefore = e.state("settle")!.permitted;
          const accepted = step.reset && e.reset("settle", "operator").accepted;
          if (accepted) expect(permittedBefore).toBe(true);
          e.apply({ image: toImage(step.image), nowMs: cycle * 10, wallMs: 0 }, POINTS.map(() => null), cycle);
          const s = e.state("settle")!;
          // It can only go from tripped to clear in a cycle whose reset was accepted.
          if (wasTripped && !s.tripped) expect(accepted).toBe(true);
          wasTripped = s.tripped;
        });
      }),
      { numRuns: 300 },
    );
  });
});
