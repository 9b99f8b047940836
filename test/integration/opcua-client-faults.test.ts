/**
 * Liveness faults of the OPC UA client, each with recovery checked through a
 * real CellApp: server restart, a long outage (short here: configurable),
 * a black-holed TCP link (accepts, never answers), and a subscription the
 * server deleted. After each, points are bad until fresh data arrives, then
 * a value changed on the server reaches the process image again. No
 * unhandled rejection, no leaked connection.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpcuaDriver } from "../../src/drivers/opcua/driver.js";
import { TestOpcuaServer } from "../drivers/opcua/server.js";
import { FaultProxy } from "../drivers/opcua/proxy.js";
import { Teardown, sleep, startCell, trapUnhandled, waitFor, type RunningCell } from "./helpers.js";

const t = new Teardown();
const unhandled = trapUnhandled(t);
const pki = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-pki-"));
let server: TestOpcuaServer;
let proxy: FaultProxy;
let cell: RunningCell;
let counter = 0;

const LIVENESS_MS = 800;

function cellYaml(mode: "subscription" | "polled"): string {
  const ns = server.raw!.engine.addressSpace!.getNamespaceIndex("urn:cellio:test:opcua-client");
  return `
version: 1
cell: { id: itest-opcua-faults }
cycle: { period_ms: 50, input_budget_ms: 25, output_budget_ms: 20, overrun: { fault_after: 1000 } }  # roomy: a loaded CI box must not fault the cell
devices:
  srv:
    protocol: opcua
    endpoint: "${proxy.endpoint}"
    security: { mode: None, pki_dir: "${pki}" }
    mode: ${mode}
    timeout_ms: 300
    connect_timeout_ms: 1000
    session_timeout_ms: 5000
    liveness_ms: ${LIVENESS_MS}
    subscription: { publishing_interval_ms: 50, keepalive_count: 4 }
    reconnect: { min_ms: 50, max_ms: 400 }
    points:
      counter: { address: "ns=${ns};s=Test.Counter", type: int }
      out:     { address: "ns=${ns};s=Test.OutUInt16", type: int, direction: output }
logic:
  srv.out: "srv.counter"
`;
}

const link = () => (cell.app.drivers[0] as OpcuaDriver).current!;

/** Change the counter on the server and wait until the image (and the written output) has it. */
async function flows(what: string, ms = 8000): Promise<void> {
  const want = ++counter;
  const deadline = Date.now() + ms;
  // Keep setting it: a value set while the link was down must still arrive once it is up.
  while (Date.now() < deadline) {
    server.set("Counter", want);
    const c = cell.cycles.at(-1);
    if (c && cell.sample(c, "srv.counter").value === want && cell.sample(c, "srv.counter").quality === "good" && server.value("OutUInt16") === want) return;
    await sleep(50);
  }
  throw new Error(`data did not flow again after ${what}: counter ${String(cell.latest("srv.counter")?.value)}/${cell.latest("srv.counter")?.status}, link ${link().state}`);
}

/** Bad_NoCommunication (link lost) or Bad_Timeout (requests or connects timing out, polled mode in a black hole). */
async function pointsBad(what: string, ms = 8000): Promise<void> {
  const bad = new Set(["bad_no_communication", "bad_timeout"]);
  await cell.waitCycle((c) => bad.has(cell.sample(c, "srv.counter").status), ms, `srv.counter bad during ${what}`);
}

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

for (const mode of ["subscription", "polled"] as const) {
  describe(`liveness faults, ${mode} mode`, () => {
    const t2 = new Teardown();
    beforeAll(async () => {
      cell = await startCell(cellYaml(mode), t2);
      await flows("start", 15_000);
    }, 30_000);
    afterAll(() => t2.run());

    it("survives a server restart", async () => {
      const faults = link().stats.faults;
      await server.restart();
      await flows("server restart");
      expect(link().stats.faults).toBeGreaterThan(faults);
    });

    it("survives a long outage: bad meanwhile, retrying with backoff, back when the server is", async () => {
      await server.stop();
      await pointsBad("outage");
      const attempts = link().stats.attempts;
      await sleep(3000); // "minutes" in the field; the backoff is capped at reconnect.max_ms (400 ms here)
      const tried = link().stats.attempts - attempts;
      expect(tried).toBeGreaterThanOrEqual(3);
      expect(tried).toBeLessThan(3000 / 50); // backing off, not hammering
      expect(cell.latest("srv.counter")?.quality).toBe("bad");
      await server.start();
      await flows("long outage");
    });

    it("survives a black-holed link (TCP open, nothing answered) and leaks no connection", async () => {
      proxy.blackhole();
      try {
        await pointsBad("black hole", LIVENESS_MS + 8000);
        await sleep(1500); // connection attempts into the black hole time out and are retried
      } finally {
        proxy.forward();
      }
      await flows("black hole");
      await waitFor(() => proxy.open <= 1, 5000, () => `proxy connections to close, ${proxy.open} open`);
    });

    it("survives a deleted subscription / a killed session", async () => {
      const faults = link().stats.faults;
      if (mode === "subscription") {
        expect(server.deleteSubscriptions()).toBeGreaterThan(0);
      } else {
        for (const s of server.raw!.engine.getSessions()) s.close(true, "Terminated");
      }
      await waitFor(() => link().stats.faults > faults, LIVENESS_MS + 5000, "the fault to be seen");
      await flows("deleted subscription");
    });

    it("leaves one session and one connection on the server", async () => {
      await waitFor(() => server.sessionCount === 1 && proxy.open === 1, 10_000, () => `sessions ${server.sessionCount} (${server.raw!.engine.getSessions().map((x) => `${x.status}@${x.creationDate.toISOString()}/${String(x.channel?.channelId)}`).join(", ")}), connections ${proxy.open}, link ${JSON.stringify(link().stats)} at ${new Date().toISOString()}`);
    });
  });
}
