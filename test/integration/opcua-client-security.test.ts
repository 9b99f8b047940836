/**
 * OPC UA client security against a node-opcua server that offers only
 * Basic256Sha256 Sign/SignAndEncrypt and user/password: an unknown server
 * certificate is rejected with a log line naming the file to move; moving it
 * to trusted/ lets the driver in; a server certificate change is rejected
 * again (and survived once trusted); `trust_unknown_server: true` accepts a
 * changed certificate by itself. Also a wrong password keeps the device bad.
 */
import { mkdtempSync, readdirSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { firstValueFrom } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/load.js";
import { OpcuaDriver } from "../../src/drivers/opcua/driver.js";
import type { OpcuaDeviceConfig } from "../../src/drivers/opcua/config.js";
import type { Value } from "../../src/core/sample.js";
import { systemClock } from "../../src/infra/clock.js";
import { TEST_NS, TestOpcuaServer } from "../drivers/opcua/server.js";
import { memoryLog, type LogLine } from "../helpers/memory-log.js";
import { Teardown, trapUnhandled, waitFor } from "./helpers.js";

const t = new Teardown();
const unhandled = trapUnhandled(t);
let server: TestOpcuaServer;

beforeAll(async () => {
  server = await new TestOpcuaServer({ secure: true }).start();
  t.add(() => server.stop());
}, 60_000);

afterAll(async () => {
  await t.run();
  expect(unhandled).toEqual([]);
});

interface Harness {
  driver: OpcuaDriver;
  logs: LogLine[];
  latest: () => Value | undefined;
  pki: string;
}

async function startDriver(opts: { trust: boolean; password: string }): Promise<Harness> {
  const ns = server.raw!.engine.addressSpace!.getNamespaceIndex(TEST_NS);
  const pki = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-pki-"));
  const { model } = loadConfigText(`
version: 1
cell: { id: itest-opcua-security }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  srv:
    protocol: opcua
    endpoint: "${server.endpoint}"
    security: { mode: SignAndEncrypt, policy: Basic256Sha256, user: cell, password_env: TEST_OPCUA_PASSWORD, pki_dir: "${pki}", trust_unknown_server: ${opts.trust} }
    connect_timeout_ms: 10000
    reconnect: { min_ms: 100, max_ms: 300 }
    points:
      counter: { address: "ns=${ns};s=Test.Counter", type: int }
`);
  const { log, lines: logs } = memoryLog("info");
  const dev = model.devices[0]!;
  const driver = new OpcuaDriver("srv", dev.config as OpcuaDeviceConfig, dev.points.map((i) => model.points[i]!), systemClock, log, {
    baseDir: os.tmpdir(),
    env: { TEST_OPCUA_PASSWORD: opts.password },
  });
  await driver.start();
  t.add(() => driver.stop());
  let latest: Value | undefined;
  const timer = setInterval(() => void firstValueFrom(driver.read({ put: (_i, v) => void (latest = v) })), 20);
  t.add(() => clearInterval(timer));
  return { driver, logs, latest: () => latest, pki };
}

async function flows(h: Harness, want: number, ms = 20_000): Promise<void> {
  server.set("Counter", want);
  await waitFor(() => h.latest() === want, ms, () => `counter ${want} (have ${String(h.latest())}; ${h.driver.current?.lastFailure.error})`);
}

/** Wait for the "not trusted" log line and move the file it names to trusted/certs, as its text says. */
async function trustAsTold(h: Harness, seen: number): Promise<string> {
  await waitFor(() => h.logs.filter((l) => l.msg.includes("is not trusted")).length > seen, 20_000, "the 'not trusted' log line");
  const line = h.logs.filter((l) => l.msg.includes("is not trusted")).at(-1)!;
  expect(line.msg).toMatch(/to trust it, move .*rejected.* to .*trusted\/certs\//);
  const file = line["rejected"] as string;
  expect(path.dirname(file)).toBe(path.join(h.pki, "rejected"));
  renameSync(file, path.join(h.pki, "trusted", "certs", path.basename(file)));
  return file;
}

describe("OPC UA client security (Basic256Sha256, SignAndEncrypt, user/password)", () => {
  it("rejects an unknown server certificate, saying which file to move where; trusted, it connects; a changed certificate is rejected again", async () => {
    const h = await startDriver({ trust: false, password: "secret" });
    await trustAsTold(h, 0);
    expect(h.latest()).toBeUndefined(); // nothing read from an untrusted server
    await flows(h, 1);
    expect(readdirSync(path.join(h.pki, "own", "certs")).length).toBeGreaterThan(0); // cellio's application certificate, made once

    await server.restart({ newCertificate: true });
    await trustAsTold(h, 1);
    await flows(h, 2);
  }, 90_000);

  it("with trust_unknown_server: true, a server certificate change is survived unattended", async () => {
    const h = await startDriver({ trust: true, password: "secret" });
    await flows(h, 3);
    await server.restart({ newCertificate: true });
    await flows(h, 4);
    expect(h.logs.some((l) => l.msg.includes("is not trusted"))).toBe(false);
  }, 90_000);

  it("a wrong password keeps the device bad and says why", async () => {
    const h = await startDriver({ trust: true, password: "wrong" });
    await waitFor(() => /BadUserAccessDenied|BadIdentityToken|denied|rejected/i.test(h.driver.current?.lastFailure.error ?? ""), 20_000, () => `an access-denied failure, have ${h.driver.current?.lastFailure.error}`);
    expect(h.latest()).toBeUndefined();
  }, 60_000);
});
