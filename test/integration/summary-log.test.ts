/**
 * The periodic cycle summary (`cellio run --summary-every`): one line with the
 * window's lateness, the input phase's p99 (how much of its budget the reads
 * take), the loop thread's GC pauses and the input deadline misses, here with
 * a device that answers later than the input budget on every read; a window
 * starts afresh after each line.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CellApp } from "../../src/app.js";
import { loadConfigText } from "../../src/config/load.js";
import { memoryLog } from "../helpers/memory-log.js";
import { SimDevice, Teardown, waitFor } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

describe("cycle summary log", () => {
  it("reports the input phase p99 and the reads that missed the input deadline", async () => {
    const fast = await SimDevice.start(t);
    const slow = await SimDevice.start(t);
    slow.server.faults.set({ kind: "latency", ms: 15 });
    const yaml = `
version: 1
cell: { id: summary }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  fast:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${fast.port}
    timeout_ms: 200
    points:
      a: { address: "di:0" }
  slow:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${slow.port}
    timeout_ms: 200
    points:
      b: { address: "di:0" }
`;
    const { log, lines } = memoryLog("info");
    const app = new CellApp(loadConfigText(yaml), { log });
    t.add(() => app.stop(1000));
    await app.start();
    await waitFor(() => app.loop.stats.cycles >= 20 && app.loop.stats.inputMisses >= 5, 10_000, "20 cycles with input misses");
    // Garbage on this thread (the loop's): young-generation collections for certain.
    let keep: number[][] = [];
    for (let i = 0; i < 200_000; i++) {
      keep.push(new Array<number>(50).fill(i));
      if (keep.length > 1000) keep = [];
    }
    await new Promise((r) => setTimeout(r, 100)); // perf_hooks delivers gc entries a little later
    app.logSummary();
    const line = lines.find((l) => l.msg.startsWith("cycle summary"));
    expect(line, "a cycle summary line").toBeDefined();
    // The slow device answers after 15 ms: every input phase runs to its 8 ms budget.
    expect(line!["inputP99Ms"]).toBeGreaterThanOrEqual(7);
    expect(line!["inputMisses"]).toBeGreaterThanOrEqual(5);
    expect(typeof line!["outputP99Ms"]).toBe("number");
    expect(line!["gcPauses"]).toBeGreaterThan(0);
    expect(line!["gcPauseMaxMs"]).toBeGreaterThan(0);
    expect(line!.msg).toMatch(/input phase p99 \d+(\.\d+)? ms, GC pause max \d+(\.\d+)? ms, skipped \d+, misses \d+, mode running/);
    // The next window starts empty: no GC counted without one.
    app.logSummary();
    const next = lines.filter((l) => l.msg.startsWith("cycle summary"))[1]!;
    expect(next["gcPauses"]).toBeLessThan(line!["gcPauses"] as number);
  });
});
