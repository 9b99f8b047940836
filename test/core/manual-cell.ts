/** A small cell with manual mode (key-switch permit), a sequence, a latch and a latched interlock, and a CellLogic runner for it. */
import { loadConfigText } from "../../src/config/load.js";
import { CellLogic } from "../../src/core/cell-logic.js";
import type { Caller, Command, Role } from "../../src/core/commands.js";
import { goodSample, INITIAL_SAMPLE, sample, type Sample, type Value } from "../../src/core/sample.js";

export const MANUAL_CELL = `
version: 1
cell: { id: t }
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4 }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    points:
      door_closed:  { address: "di:0" }
      part_present: { address: "di:1" }
      key_manual:   { address: "di:2", description: "Key switch on the panel: manual allowed" }
      start:        { address: "di:3" }
      conveyor_run: { address: "coil:0", direction: output, safe: false }
      lamp:         { address: "coil:1", direction: output, safe: false }
      horn:         { address: "coil:2", direction: output, safe: false }
      spare:        { address: "coil:3", direction: output, safe: false }
      speed:        { address: "hr:0:int16", direction: output, safe: 0 }
logic:
  io1.lamp: "io1.part_present"
latches:
  io1.horn: { set: "io1.start", reset: "not io1.door_closed" }
sequences:
  feed:
    initial: idle
    steps:
      idle: {}
      run:  { actions: { io1.conveyor_run: true, io1.speed: 50 } }
    transitions:
      - { from: idle, to: run, when: "io1.door_closed and not io1.part_present" }
      - { from: run, to: idle, when: "io1.part_present" }
interlocks:
  door:
    permit: "io1.door_closed"
    force: [io1.conveyor_run, io1.speed]
    latch: true
manual_mode:
  permit: "io1.key_manual"
`;

export interface In {
  door?: boolean;
  part?: boolean;
  key?: boolean;
  start?: boolean;
  /** Make io1.key_manual bad (device lost). */
  keyBad?: boolean;
}

/** A CellLogic on `yaml` with a cycle runner that feeds the four inputs. */
export function manualCell(yaml = MANUAL_CELL) {
  const { model } = loadConfigText(yaml);
  const logic = new CellLogic(model, { resetFault: () => true });
  const at = (id: string): number => model.pointIndex.get(id)!;
  let k = 0;
  const memory: Sample[] = model.points.map(() => INITIAL_SAMPLE);
  const cycle = (i: In = {}) => {
    const image = memory.slice();
    image[at("io1.door_closed")] = goodSample(i.door ?? true, k);
    image[at("io1.part_present")] = goodSample(i.part ?? false, k);
    image[at("io1.key_manual")] = i.keyBad ? sample(i.key ?? true, "bad_timeout", 0) : goodSample(i.key ?? true, k);
    image[at("io1.start")] = goodSample(i.start ?? false, k);
    const desired = new Array<Value | null>(model.points.length).fill(null);
    const r = logic.run(k, image, k * 10, 1_000_000 + k * 10, desired, (idx, v) => (memory[idx] = goodSample(v, k)));
    k++;
    return { ...r, desired, out: (id: string) => desired[at(id)] };
  };
  const send = (command: Command, role: Role = "engineer") => logic.commands.submit(command, { role, caller: "test", nowMs: k * 10 } satisfies Caller);
  return { model, logic, at, cycle, send };
}
