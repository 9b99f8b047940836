/**
 * A stall of cellio's own thread past `liveness_ms` must not fault an OPC UA
 * link whose server kept answering. The server (node-opcua, on another
 * thread) answers the client's pipelined publish requests while this thread
 * busy-waits; when the thread is free again, libuv runs the liveness check's
 * late interval before it reads those answers, so the check has to wait for
 * that turn's I/O (src/infra/late-timer.ts). Without that, every stall here
 * is a fault ("no publish response ... for 4xx ms") and a reconnect. A server
 * that really falls silent still faults the link, stall or not. A polled
 * Read's deadline follows the same rule.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { lastValueFrom } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";
import type { OpcuaDeviceConfig } from "../../../src/drivers/opcua/config.js";
import { OpcuaDriver } from "../../../src/drivers/opcua/driver.js";
import { systemClock } from "../../../src/infra/clock.js";
import { silentLogger } from "../../../src/infra/logger.js";
import { freePort } from "../../../simulators/motoman/free-port.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * An OPC UA server on another thread: ns "urn:cellio:test:stall", a UInt32 `s=Counter` that
 * counts every 10 ms. "freeze" blocks its thread for 1.5 s (a server that falls silent).
 * Plain JS: an eval worker cannot load TypeScript.
 */
const SERVER = `
const { parentPort, workerData } = require("node:worker_threads");
const ua = require("node-opcua");
parentPort.on("message", (m) => {
  if (m !== "freeze") return;
  parentPort.postMessage("frozen");
  const end = Date.now() + 1500;
  while (Date.now() < end) {} // busy: no publish response meanwhile
});
(async () => {
  const server = new ua.OPCUAServer({
    port: workerData.port, hostname: "127.0.0.1",
    securityModes: [ua.MessageSecurityMode.None], securityPolicies: [ua.SecurityPolicy.None], allowAnonymous: true,
    serverCertificateManager: new ua.OPCUACertificateManager({ rootFolder: workerData.pki, automaticallyAcceptUnknownCertificate: true }),
  });
  await server.initialize();
  const as = server.engine.addressSpace;
  const ns = as.registerNamespace("urn:cellio:test:stall");
  const v = ns.addVariable({ organizedBy: as.rootFolder.objects, browseName: "Counter", nodeId: "s=Counter", dataType: "UInt32", minimumSamplingInterval: 0 });
  let n = 0;
  const set = () => v.setValueFromSource(new ua.Variant({ dataType: ua.DataType.UInt32, value: n++ }), ua.StatusCodes.Good, new Date());
  set();
  setInterval(set, 10);
  await server.start();
  parentPort.postMessage("ready");
})().catch((e) => { console.error(e); process.exit(1); });`;

/** This thread does nothing else for `ms`: no timer, no socket is served meanwhile. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

/** PKI folders shared by the tests of this file (a new one costs a certificate). */
const serverPki = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-stall-srv-"));
const clientPki = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-stall-pki-"));

const message = (w: Worker): Promise<unknown> => new Promise((resolve) => w.once("message", resolve));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function serverThread(): Promise<{ worker: Worker; endpoint: string }> {
  const port = await freePort();
  const worker = new Worker(SERVER, { eval: true, workerData: { port, pki: serverPki } });
  cleanups.push(() => worker.terminate());
  await new Promise<unknown>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the OPC UA server thread exited (${code})`)));
  });
  return { worker, endpoint: `opc.tcp://127.0.0.1:${port}` };
}

/** Liveness 250 ms, checked every 62 ms; five publish requests in the pipeline (node-opcua), one answer per 50 ms. */
const SUBSCRIBED = `
    liveness_ms: 250
    subscription: { publishing_interval_ms: 50, keepalive_count: 2, sampling_interval_ms: 0 }
    reconnect: { min_ms: 50, max_ms: 400 }`;

/** The device `srv` on `endpoint` with `settings` (YAML lines of the device), started and live. */
async function driver(endpoint: string, settings = SUBSCRIBED): Promise<OpcuaDriver> {
  const { model } = loadConfigText(`
version: 1
cell: { id: test-opcua-liveness-stall }
cycle: { period_ms: 50, input_budget_ms: 25, output_budget_ms: 20 }
devices:
  srv:
    protocol: opcua
    endpoint: "${endpoint}"
    security: { mode: None, pki_dir: "${clientPki}" }${settings}
    points:
      counter: { address: "nsu=urn:cellio:test:stall;s=Counter", type: int }
`);
  const dev = model.devices[0]!;
  const d = new OpcuaDriver("srv", dev.config as OpcuaDeviceConfig, dev.points.map((i) => model.points[i]!), systemClock, silentLogger(), { baseDir: os.tmpdir() });
  cleanups.push(() => d.stop());
  await d.start();
  await until(() => d.current?.state === "live", "the link to go live");
  return d;
}

describe("a stall of cellio's thread past the OPC UA liveness timeout", () => {
  it("the publish responses that came during the stall keep the link alive", async () => {
    const { endpoint } = await serverThread();
    const d = await driver(endpoint);
    const link = d.current!;
    for (let i = 0; i < 5; i++) {
      const seen = link.stats.notifications;
      await until(() => link.stats.notifications >= seen + 3, "data flowing");
      stall(400); // the server answers the pipelined publish requests meanwhile; the check is long due
      const after = link.stats.notifications;
      await until(() => link.stats.notifications >= after + 3, "data flowing after the stall");
      expect(link.stats.faults, `faults after stall ${i + 1}: ${link.lastFailure.error}`).toBe(0);
    }
    expect(link.stats.connects).toBe(1);
    expect(link.state).toBe("live");
  });

  it("a server that falls silent still faults the link, stall or not", async () => {
    const { worker, endpoint } = await serverThread();
    const d = await driver(endpoint);
    const link = d.current!;
    const seen = link.stats.notifications;
    await until(() => link.stats.notifications >= seen + 3, "data flowing");
    const frozen = message(worker);
    worker.postMessage("freeze");
    await frozen; // from now on, 1.5 s without a publish response
    stall(400);
    await until(() => link.stats.faults > 0, "a liveness fault");
    expect(link.lastFailure.error).toMatch(/no publish response \(data or keep-alive\) for \d+ ms/);
    await until(() => link.state === "live" && link.stats.connects === 2, "the reconnect after the server's freeze");
  });

  it("a polled Read answered during a stall past its timeout is taken, not timed out", async () => {
    const { endpoint } = await serverThread();
    const d = await driver(endpoint, `
    mode: polled
    timeout_ms: 100`);
    const sink = { put: (): void => undefined };
    for (let i = 0; i < 5; i++) {
      const outcome = lastValueFrom(d.read(sink));
      // the request is on the wire after this turn; the server answers while this thread is stalled
      await new Promise((r) => setImmediate(r));
      stall(300);
      expect(await outcome, `read ${i + 1}`).toEqual({ ok: true });
    }
  });
});
