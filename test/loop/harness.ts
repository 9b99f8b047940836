/**
 * Builds a ControlLoop over fake devices in RxJS virtual time.
 */
import { TestScheduler } from "rxjs/testing";
import { loadConfigText } from "../../src/config/load.js";
import { InputTable } from "../../src/core/input-table.js";
import { ControlLoop, type CycleResult } from "../../src/loop/control-loop.js";
import { DeviceRunner } from "../../src/loop/device-runner.js";
import { silentLogger, type Logger } from "../../src/infra/logger.js";
import { FakeDevice, SkewClock } from "../helpers/fake-device.js";
import type { CellModel } from "../../src/config/compile.js";

export const CELL = `
version: 1
cell: { id: t }
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4, overrun: { warn_pct: 80, fault_after: 3 } }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    stale_after_ms: 50
    points:
      door_closed:  { address: "di:0" }
      part_present: { address: "di:1" }
      conveyor_run: { address: "coil:0", direction: output, safe: false }
      lamp:         { address: "coil:1", direction: output, safe: true }
logic:
  io1.conveyor_run: "io1.door_closed and not io1.part_present"
`;

export interface Harness {
  scheduler: TestScheduler;
  clock: SkewClock;
  model: CellModel;
  loop: ControlLoop;
  dev: FakeDevice;
  runner: DeviceRunner;
  results: CycleResult[];
  idx(id: string): number;
}

/** `clockOffsetMs`: the monotonic clock's reading at virtual time 0. */
export function makeHarness(yaml = CELL, clockOffsetMs = 0, log: Logger = silentLogger()): Harness {
  const scheduler = new TestScheduler((a, b) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error("mismatch");
  });
  const clock = new SkewClock(scheduler, clockOffsetMs);
  const { model } = loadConfigText(yaml);
  const table = new InputTable(model.points.length);
  const dev = new FakeDevice("io1", scheduler, clock);
  const d = model.devices[0]!;
  const runner = new DeviceRunner(
    dev,
    {
      pollEvery: 1,
      staleAfterMs: d.staleAfterMs,
      failAfter: 1,
      points: d.points,
      outputs: d.points.filter((i) => model.points[i]!.direction === "output"),
      heartbeatWrites: false,
    },
    table,
    clock,
    silentLogger(),
  );
  const loop = new ControlLoop({ model, runners: [runner], table, clock, tickScheduler: scheduler, scheduler, log });
  const results: CycleResult[] = [];
  loop.cycles$.subscribe((r) => results.push(r));
  const idx = (id: string): number => model.pointIndex.get(id)!;
  dev.values.set(idx("io1.door_closed"), true);
  dev.values.set(idx("io1.part_present"), false);
  return { scheduler, clock, model, loop, dev, runner, results, idx };
}

/** Run the loop in virtual time until `untilMs`, calling `at[t]` hooks at those times. */
export function runFor(h: Harness, untilMs: number, at: Record<number, () => void> = {}): void {
  h.scheduler.run(() => {
    h.loop.start();
    for (const [t, fn] of Object.entries(at)) h.scheduler.schedule(fn, Number(t));
    h.scheduler.schedule(() => h.loop.stop(), untilMs);
  });
}
