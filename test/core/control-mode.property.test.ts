/**
 * Manual mode never gets past a tripped interlock (fast-check): for ANY run
 * of process images (random values and qualities, the key switch included)
 * and ANY commands in between (set_mode either way, set_point on any output
 * with any value, interlock resets, any role), after every cycle each output
 * named by a tripped interlock is at its forced value, in auto and in manual.
 * And in manual no sequence moves, and an output is only ever its manual
 * value or its safe value (never a logic, latch or sequence value).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/load.js";
import { CellLogic } from "../../src/core/cell-logic.js";
import type { Command, Role } from "../../src/core/commands.js";
import { sample, STATUSES, type Sample, type Status, type Value } from "../../src/core/sample.js";
import { MANUAL_CELL } from "./manual-cell.js";

const YAML = MANUAL_CELL.replace(
  "manual_mode:",
  `  lamp_test:                  # unlatched, forces an output logic drives
    permit: "not io1.start"
    force: { io1.lamp: true, io1.horn: false }
manual_mode:
  roles: [operator]`,
);
const { model } = loadConfigText(YAML);
const INPUTS = model.points.filter((p) => p.direction === "input");
const OUTPUTS = model.points.filter((p) => p.direction === "output");

const rawArb = fc.record({
  value: fc.boolean(),
  status: fc.oneof({ arbitrary: fc.constant<Status>("good"), weight: 6 }, { arbitrary: fc.constantFrom(...STATUSES), weight: 1 }),
});
const valueArb = fc.oneof(fc.boolean(), fc.integer({ min: -5, max: 100 }), fc.constant("x"));
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.constantFrom<Command>({ kind: "set_mode", mode: "manual" }, { kind: "set_mode", mode: "auto" }), weight: 2 },
  { arbitrary: fc.record({ point: fc.constantFrom(...OUTPUTS.map((p) => p.id)), value: valueArb }).map((x): Command => ({ kind: "set_point", ...x })), weight: 4 },
  { arbitrary: fc.constantFrom<Command>({ kind: "reset_interlock", id: "door" }), weight: 1 },
);
const stepArb = fc.record({
  image: fc.tuple(...INPUTS.map(() => rawArb)),
  commands: fc.array(fc.record({ command: commandArb, role: fc.constantFrom<Role>("viewer", "operator", "engineer") }), { maxLength: 4 }),
});

describe("manual mode under the interlocks (property)", () => {
  it("every output a tripped interlock names is at its forced value after every cycle, in either mode", () => {
    let runsWithManual = 0;
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), (steps) => {
        const logic = new CellLogic(model, { resetFault: () => true });
        const manualSet = new Map<number, Value>();
        let sawManual = false;
        steps.forEach((st, k) => {
          const image: Sample[] = model.points.map(() => sample(null, "bad_waiting_for_initial_data", 0));
          INPUTS.forEach((p, i) => (image[p.index] = sample(st.image[i]!.value, st.image[i]!.status, k)));
          const desired = new Array<Value | null>(model.points.length).fill(null);
          const r = logic.run(k, image, k * 10, k * 10, desired, () => undefined);
          for (const { command, role } of st.commands) logic.commands.submit(command, { role, caller: "prop", nowMs: k * 1000 });
          for (const c of r.commands) {
            if (c.command.kind === "set_mode" && c.result.accepted) manualSet.clear();
            if (c.command.kind === "set_point" && c.result.accepted) manualSet.set(c.pointIndex!, c.command.value as Value);
          }
          for (const e of r.modeEvents) if (e.kind === "permit_lost") manualSet.clear();
          for (const e of r.interlockEvents) if (e.kind === "trip") for (const i of logic.interlocks.forcedPoints(e.id)) manualSet.delete(i);
          for (const d of model.interlocks) {
            if (!logic.interlocks.state(d.id)!.tripped) continue;
            for (const f of d.force) expect(desired[f.index], `${d.id} forces ${model.points[f.index]!.id}`).toBe(f.value);
          }
          if (r.control === "manual") {
            sawManual = true;
            expect(r.sequenceEvents.every((e) => e.kind === "reset" && e.cause === "manual mode")).toBe(true);
            for (const p of OUTPUTS) {
              if (logic.interlocks.forcedBy(p.index) !== undefined) continue;
              expect([manualSet.get(p.index) ?? p.safe]).toContain(desired[p.index]);
            }
          }
        });
        if (sawManual) runsWithManual++;
      }),
      { numRuns: 300 },
    );
    expect(runsWithManual).toBeGreaterThan(50); // the generator does reach manual mode
  });
});
