/**
 * A cell for CellMetrics without devices or a loop: `n` device runners whose
 * counters and read-latency histograms the test fills, and a cycle stream the
 * test drives (a scrape renders after each published cycle).
 */
import { Subject } from "rxjs";
import type { CellModel } from "../../../src/config/compile.js";
import type { CycleResult } from "../../../src/loop/control-loop.js";
import { DeviceCounters, type DeviceRunner } from "../../../src/loop/device-runner.js";
import { LoopStats } from "../../../src/loop/stats.js";
import type { CellMetrics, MetricsCell } from "../../../src/north/http/metrics.js";

export interface FakeRunner {
  readonly name: string;
  state: DeviceRunner["state"];
  readonly lastError: string;
  readonly counters: DeviceCounters;
}

export interface FakeCell {
  readonly cell: MetricsCell;
  readonly runners: FakeRunner[];
  readonly cycles$: Subject<CycleResult>;
  /** A cycle as the loop publishes it (what CellMetrics records of it). */
  readonly cycle: CycleResult;
  /** One poll of every device: a read counted, its latency recorded (values vary with `k`). */
  poll(k: number): void;
  /** A scrape, with a cycle published at every turn of the event loop until it is done. */
  scrape(m: CellMetrics): Promise<string>;
}

export function fakeCell(n: number): FakeCell {
  const runners: FakeRunner[] = Array.from({ length: n }, (_, i) => ({ name: `d${i}`, state: "good", lastError: "", counters: new DeviceCounters() }));
  const cycles$ = new Subject<CycleResult>();
  const stats = new LoopStats();
  const cell: MetricsCell = {
    model: { interlocks: [] } as unknown as CellModel,
    loop: { cycles$, stats, mode: "running" },
    runners: runners as unknown as DeviceRunner[],
    drivers: runners.map((r, i) => ({ name: r.name, reconnects: i, connected: true })) as unknown as MetricsCell["drivers"],
  };
  const cycle = { latenessMs: 0.2, durationMs: 3.1, inputMs: 2, logicMs: 0.1, outputMs: 1, interlockEvents: [], commands: [] } as unknown as CycleResult;
  return {
    cell,
    runners,
    cycles$,
    cycle,
    poll(k) {
      stats.cycles++;
      runners.forEach((r, i) => {
        r.counters.reads++;
        r.counters.readLatency.recordMs(0.3 + ((k * 7 + i * 13) % 400) / 100); // 0.3–4.3 ms
      });
    },
    async scrape(m) {
      let done = false;
      const publish = (): void => {
        if (done) return;
        cycles$.next(cycle);
        setImmediate(publish);
      };
      setImmediate(publish);
      try {
        return (await m.scrape()).body;
      } finally {
        done = true;
      }
    },
  };
}
