/**
 * OPC UA client benchmark: latency from a value change on the server to its
 * arrival in the process image, p50/p99, for 1 and 1,000 points, in
 * subscription mode (publishing interval 50 ms, node-opcua's floor) and in
 * polled mode (one Read of every point per cycle). The server is an
 * in-process node-opcua server on loopback (so its CPU is in this process);
 * the "cycle" reads the driver every 10 ms as the loop would. Prints
 * figures; asserts nothing.
 *
 *   npm run build && node dist/test/bench/opcua-client.bench.js [seconds]
 *   BENCH_ONLY=opcua-client npm run bench
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { firstValueFrom } from "rxjs";
import { loadConfigText } from "../../src/config/load.js";
import { OpcuaDriver } from "../../src/drivers/opcua/driver.js";
import type { OpcuaDeviceConfig } from "../../src/drivers/opcua/config.js";
import type { Value } from "../../src/core/sample.js";
import { systemClock } from "../../src/infra/clock.js";
import { silentLogger } from "../../src/infra/logger.js";
import { TEST_NS, TestOpcuaServer } from "../drivers/opcua/server.js";
import { sleep, type Figure } from "./util.js";

const CYCLE_MS = 10;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function runCase(server: TestOpcuaServer, mode: "subscription" | "polled", items: number, ms: number): Promise<Figure[]> {
  const ns = server.raw!.engine.addressSpace!.getNamespaceIndex(TEST_NS);
  const points = Array.from({ length: items }, (_, i) => `      b${i}: { address: "ns=${ns};s=Test.Bulk.${i}", type: float }`).join("\n");
  const { model } = loadConfigText(`
version: 1
cell: { id: bench-opcua-client }
cycle: { period_ms: ${CYCLE_MS}, input_budget_ms: 5, output_budget_ms: 4 }
devices:
  srv:
    protocol: opcua
    endpoint: "${server.endpoint}"
    security: { mode: None, pki_dir: "${mkdtempSync(path.join(os.tmpdir(), "cellio-bench-pki-"))}" }
    mode: ${mode}
    timeout_ms: 1000
    subscription: { publishing_interval_ms: 50, sampling_interval_ms: 0, queue_size: 1 }
    points:
${points}
`);
  const dev = model.devices[0]!;
  const driver = new OpcuaDriver("srv", dev.config as OpcuaDeviceConfig, dev.points.map((i) => model.points[i]!), systemClock, silentLogger(), {
    baseDir: os.tmpdir(),
  });
  await driver.start();
  const expected = new Array<number>(items).fill(Number.NaN);
  const setAt = new Array<number>(items).fill(0);
  const latencies: number[] = [];
  const sink = {
    put(index: number, value: Value): void {
      if (value === expected[index]) {
        latencies.push(performance.now() - setAt[index]!);
        expected[index] = Number.NaN;
      }
    },
  };
  let running = true;
  const cycle = (async () => {
    let next = performance.now();
    while (running) {
      await firstValueFrom(driver.read(sink));
      next += CYCLE_MS;
      await sleep(Math.max(0, next - performance.now()));
    }
  })();
  while (driver.current?.state !== "live") await sleep(20);
  await sleep(500);
  let round = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    round++;
    const now = performance.now();
    for (let i = 0; i < items; i++) {
      expected[i] = round;
      setAt[i] = now;
      server.set(`Bulk.${i}`, round);
    }
    await sleep(150 + Math.random() * 100); // changes out of phase with publishing and cycles
  }
  running = false;
  await cycle;
  await driver.stop();
  const sorted = latencies.sort((a, b) => a - b);
  const c = `${mode}, ${items} item${items === 1 ? "" : "s"}`;
  const lost = round * items - latencies.length;
  return [
    { bench: "opcua-client", case: c, metric: "change→image p50", value: percentile(sorted, 50), unit: "ms" },
    { bench: "opcua-client", case: c, metric: "change→image p99", value: percentile(sorted, 99), unit: "ms" },
    { bench: "opcua-client", case: c, metric: "changes not seen (overwritten before a cycle took them)", value: lost, unit: "count" },
  ];
}

export async function runOpcuaClientBench(seconds: number): Promise<Figure[]> {
  const server = await new TestOpcuaServer({ bulk: 1000 }).start();
  const figures: Figure[] = [];
  try {
    const per = Math.max(2000, (seconds * 1000) / 4);
    for (const mode of ["subscription", "polled"] as const) {
      for (const items of [1, 1000]) figures.push(...(await runCase(server, mode, items, per)));
    }
  } finally {
    await server.stop();
  }
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const seconds = Number(process.argv[2] ?? 20);
  runOpcuaClientBench(seconds).then(
    (figs) => {
      for (const f of figs) process.stdout.write(`${f.case.padEnd(26)} ${f.metric.padEnd(58)} ${f.value.toFixed(2)} ${f.unit}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    },
  );
}
