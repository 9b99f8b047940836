/**
 * End to end on real sockets: a real CellApp scanning a Modbus TCP simulator,
 * its MQTT side (through cellViewOf(app)) on the embedded broker and on a
 * real mosquitto with the shipped ACL, and a technician's client. When the
 * simulated device stops answering, its points go bad on MQTT within the
 * device's stale time.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { MqttConfigInput } from "../../../src/north/mqtt/config.js";
import { cellViewOf } from "../../../src/north/mqtt/ports.js";
import { Mosquitto, mosquittoInstalled } from "../../helpers/mosquitto.js";
import { SimDevice, Teardown, startCell, waitFor } from "../../integration/helpers.js";
import { FakePort, ROOT, Tech, mqttConfig, newService, parse } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

const USERS = { "cellio-demo-cell": "cellio-secret", bob: "bob-pw" };
let mosquitto: Mosquitto | undefined;
afterAll(async () => {
  await mosquitto?.stop();
});

/** The broker of a variant: cellio's mqtt: block, and how a technician logs in. */
async function broker(kind: "embedded" | "mosquitto"): Promise<{ config: MqttConfigInput; env: Record<string, string>; tech: (url: string) => Promise<Tech> }> {
  if (kind === "embedded") {
    return { config: { broker: "embedded", embedded: { port: 0 } }, env: {}, tech: (url) => Tech.connect(url, { protocolVersion: 4 }) };
  }
  if (!mosquittoInstalled()) throw new Error("mosquitto is not installed: apt-get install -y mosquitto");
  mosquitto ??= await Mosquitto.start({ users: USERS, acl: readFileSync(path.join(ROOT, "config", "mosquitto", "cellio.acl"), "utf8") });
  return {
    config: { url: mosquitto.url, username: "cellio-demo-cell", password_env: "CELLIO_MQTT_PASSWORD" },
    env: { CELLIO_MQTT_PASSWORD: USERS["cellio-demo-cell"] },
    tech: (url) => Tech.connect(url, { protocolVersion: 5, username: "bob", password: USERS.bob }),
  };
}

const STALE_MS = 400;

// demo-cell: the cell id the shipped mosquitto ACL names.
const P = "cellio/demo-cell";

describe.each(["embedded", "mosquitto"] as const)("CellApp + Modbus simulator + MQTT (%s broker)", (kind) => {
  it("publishes the simulator's values, then bad quality within stale_after_ms once the device stops answering, and good again after", async () => {
    const b = await broker(kind);
    const sim = await SimDevice.start(t);
    sim.bank.setRegister("hr", 0, 1234);
    sim.bank.setBit("di", 0, true);
    const cell = await startCell(
      `
version: 1
cell: { id: demo-cell }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8, overrun: { fault_after: 1000 } } # overruns of a loaded test machine must not fault the cell here
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    timeout_ms: 100
    stale_after_ms: ${STALE_MS}
    reconnect: { min_ms: 50, max_ms: 200 }
    points:
      count: { address: "hr:0" }
      door:  { address: "di:0" }
`,
      t,
    );
    const service = newService(mqttConfig({ ...b.config, publish_interval_ms: 50, diagnostics_interval_s: 1 }), cellViewOf(cell.app), new FakePort(), b.env);
    await service.start();
    t.add(() => service.stop(500));
    await waitFor(() => service.connected, 5000, "MQTT connected");

    const tech = await b.tech(service.url!);
    t.add(() => tech.end());
    await tech.sub([`${P}/points/#`, `${P}/events`, `${P}/diagnostics`]);
    const good = parse(await tech.wait(`${P}/points/io1/count`, (j) => (j as { v?: number }).v === 1234, 5000, "count 1234"));
    expect(good).toMatchObject({ q: "good", s: "good" });
    const door = await tech.wait(`${P}/points/io1/door`, (j) => (j as { q?: string }).q === "good", 2000);
    expect(parse(door)["v"]).toBe(true);

    const from = tech.messages.length;
    const lostAt = Date.now();
    sim.server.faults.set({ kind: "noAnswer" });
    const bad = parse(
      await tech.wait(`${P}/points/io1/count`, (j) => (j as { q?: string }).q !== "good", STALE_MS + 1000, "count not good", from),
    );
    const ms = Date.now() - lostAt;
    expect(bad).toMatchObject({ v: 1234, q: "bad" });
    // The source time stays that of the last good read: not refreshed by the failed ones.
    expect(Date.parse(bad["ts"] as string)).toBeGreaterThanOrEqual(Date.parse(good["ts"] as string));
    expect(Date.parse(bad["ts"] as string)).toBeLessThanOrEqual(lostAt + 50);
    expect(ms).toBeLessThanOrEqual(STALE_MS + 1000);
    await tech.wait(`${P}/events`, (j) => (j as { event?: string }).event === "lost", 2000, "device lost event", from);

    sim.server.faults.clear();
    await tech.wait(`${P}/points/io1/count`, (j) => (j as { q?: string }).q === "good", 5000, "count good again", from);
    await tech.wait(`${P}/events`, (j) => (j as { event?: string }).event === "recovered", 2000, "device recovered event", from);
    const recovered = tech.messages.length;
    const diag = parse(await tech.wait(`${P}/diagnostics`, () => true, 3000, "diagnostics", recovered));
    expect(diag).toMatchObject({ mode: "running", period_ms: 20, devices: { io1: { state: "good" } } });
    expect((diag["loop"] as { cycles: number }).cycles).toBeGreaterThan(0);
  });
});
