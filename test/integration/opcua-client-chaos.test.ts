/**
 * 200+ injected faults in a row against the OPC UA client driver, at random
 * moments (some while it is still reconnecting from the previous one):
 * connections reset (TCP RST), the subscription deleted by the server, short
 * black holes. At the end data must flow again, with one session and one
 * connection left on the server, no unhandled rejection, and a heap that
 * did not grow with the number of reconnects (node-opcua #446).
 *
 * Driven through the driver itself with a read every 20 ms (the loop's
 * behaviour is covered elsewhere), so the run stays fast.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/load.js";
import { OpcuaDriver } from "../../src/drivers/opcua/driver.js";
import type { OpcuaDeviceConfig } from "../../src/drivers/opcua/config.js";
import { systemClock } from "../../src/infra/clock.js";
import type { Value } from "../../src/core/sample.js";
import { firstValueFrom } from "rxjs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { TEST_NS, TestOpcuaServer } from "../drivers/opcua/server.js";
import { FaultProxy } from "../drivers/opcua/proxy.js";
import { Teardown, sleep, testLogger, trapUnhandled, waitFor } from "./helpers.js";

const FAULTS = Number(process.env.CHAOS_FAULTS ?? 200);

/** A full GC, to compare heaps (the flag can be set at run time; `gc` then exists in a new context). */
function gc(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}
const t = new Teardown();
const unhandled = trapUnhandled(t);
let server: TestOpcuaServer;
let proxy: FaultProxy;

beforeAll(async () => {
  server = await new TestOpcuaServer().start();
  t.add(() => server.stop());
  proxy = await new FaultProxy(() => server.port).start();
  t.add(() => proxy.stop());
}, 30_000);

afterAll(async () => {
  await t.run();
  expect(unhandled).toEqual([]);
});

it(`recovers from ${FAULTS} injected faults and ends with data flowing`, async () => {
  const ns = server.raw!.engine.addressSpace!.getNamespaceIndex(TEST_NS);
  const pki = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-pki-"));
  const { model } = loadConfigText(`
version: 1
cell: { id: itest-opcua-chaos }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  srv:
    protocol: opcua
    endpoint: "${proxy.endpoint}"
    security: { mode: None, pki_dir: "${pki}" }
    timeout_ms: 300
    connect_timeout_ms: 600
    session_timeout_ms: 3000
    liveness_ms: 400
    subscription: { publishing_interval_ms: 50, keepalive_count: 2 }
    reconnect: { min_ms: 10, max_ms: 80 }
    points:
      counter: { address: "ns=${ns};s=Test.Counter", type: int }
`);
  const dev = model.devices[0]!;
  const driver = new OpcuaDriver("srv", dev.config as OpcuaDeviceConfig, dev.points.map((i) => model.points[i]!), systemClock, testLogger(), {
    baseDir: os.tmpdir(),
  });
  await driver.start();
  t.add(() => driver.stop());
  let latest: Value | undefined;
  const sink = { put: (_i: number, v: Value) => void (latest = v) };
  let reading = true;
  const reader = (async () => {
    while (reading) {
      await firstValueFrom(driver.read(sink));
      await sleep(20);
    }
  })();
  let n = 0;
  const flows = async (ms: number): Promise<void> => {
    const want = ++n;
    server.set("Counter", want);
    await waitFor(() => latest === want, ms, () => `counter ${want} to arrive (have ${String(latest)}, link ${driver.current?.state})`);
  };
  await flows(15_000);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;

  const kinds = { reset: 0, deleteSubscription: 0, blackhole: 0 };
  let hitLive = 0;
  let liveResets = 0;
  for (let i = 0; i < FAULTS; i++) {
    // Some faults hit a link that is up; the others hit one still reconnecting from the last.
    if (Math.random() < 0.4) await waitFor(() => driver.current?.state === "live", 10_000, `link live before fault ${i}`);
    const link = driver.current!;
    const live = link.state === "live";
    if (live) hitLive++;
    const r = Math.random();
    if (r < 0.6) {
      proxy.reset();
      kinds.reset++;
      if (live) liveResets++;
    } else if (r < 0.85) {
      server.deleteSubscriptions();
      kinds.deleteSubscription++;
    } else {
      proxy.blackhole();
      await sleep(50 + Math.random() * 150);
      proxy.forward();
      kinds.blackhole++;
    }
    // Let the driver notice (a dead subscription shows as silence: up to liveness_ms), mostly.
    await sleep(Math.random() * 40);
  }
  await flows(20_000);
  const stats = driver.current!.stats;
  reading = false;
  await reader;
  // Orphaned sessions (connection cut before they could be closed) expire after session_timeout_ms.
  await waitFor(() => server.sessionCount === 1 && proxy.open === 1, 15_000, () => `one session (${server.sessionCount}) and one connection (${proxy.open})`);
  gc();
  const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  console.log(`chaos: ${JSON.stringify(kinds)}, ${hitLive} on a live link (${liveResets} resets); link ${JSON.stringify(stats)}; heap growth ${heapGrowthMb.toFixed(1)} MiB`);
  // A reset of a live link's connection breaks it at once, and the link says so. The other kinds may
  // not be seen as a fault (a short black hole may end before the liveness check; a deleted
  // subscription shows as silence, and the next fault may come first), so they are not counted on:
  // a bound over all faults on a live link (it was half of them) failed by chance (53 of 110).
  expect(stats.faults).toBeGreaterThanOrEqual(liveResets * 0.8);
  expect(hitLive).toBeGreaterThan(FAULTS * 0.3);
  expect(stats.connects).toBeGreaterThan(stats.faults);
  expect(heapGrowthMb).toBeLessThan(100); // a leak of a client per reconnect would show as hundreds of MiB
}, 120_000);
