/**
 * cellio's MQTT client in its own process (test/north/mqtt/fixtures/cell-process.ts)
 * against a real mosquitto: kill -9 and a frozen process make the broker
 * publish the retained Will; SIGTERM makes cellio publish `offline` itself.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Mosquitto, mosquittoInstalled } from "../../helpers/mosquitto.js";
import { ROOT, Tech, parse, runTs, type Child } from "./helpers.js";

const P = "cellio/demo-cell";
const USERS = { "cellio-demo-cell": "cellio-secret", bob: "bob-pw" };
const KEEPALIVE_S = 2;
const SCRIPT = path.join(ROOT, "test", "north", "mqtt", "fixtures", "cell-process.ts");

let broker: Mosquitto;
const children: Child[] = [];
const techs: Tech[] = [];

beforeAll(async () => {
  if (!mosquittoInstalled()) throw new Error("mosquitto is not installed: apt-get install -y mosquitto (these tests need a real broker)");
  broker = await Mosquitto.start({ users: USERS, acl: readFileSync(path.join(ROOT, "config", "mosquitto", "cellio.acl"), "utf8") });
});
afterAll(async () => {
  await broker?.stop();
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) {
      c.proc.kill("SIGKILL");
      await c.exited();
    }
  }
  for (const t of techs.splice(0)) await t.end();
});

async function startProcess(): Promise<{ child: Child; watcher: Tech }> {
  const watcher = await Tech.connect(broker.url, { username: "bob", password: USERS.bob });
  techs.push(watcher);
  await watcher.sub(`${P}/status`);
  const from = watcher.messages.length;
  const config = {
    url: broker.url,
    username: "cellio-demo-cell",
    password_env: "CELLIO_MQTT_PASSWORD",
    keepalive_s: KEEPALIVE_S,
    publish_interval_ms: 50,
    reconnect_ms: 200,
  };
  const child = runTs(SCRIPT, [JSON.stringify(config)], { CELLIO_MQTT_PASSWORD: USERS["cellio-demo-cell"], CELL_ID: "demo-cell" });
  children.push(child);
  await child.waitLine((l) => l.startsWith("connected"), 15_000);
  await watcher.wait(`${P}/status`, (j) => (j as { state?: string }).state === "online", 3000, "the child's birth", from);
  return { child, watcher };
}

const isWill = (j: unknown): boolean => (j as { state?: string; reason?: string }).state === "offline" && (j as { reason?: string }).reason === "connection lost";

describe("cellio's MQTT client in its own process", () => {
  it("kill -9: the broker publishes the retained Will (offline, connection lost) within 1.5 x keepalive", async () => {
    const { child, watcher } = await startProcess();
    const from = watcher.messages.length;
    const t0 = Date.now();
    child.proc.kill("SIGKILL");
    await watcher.wait(`${P}/status`, isWill, KEEPALIVE_S * 1500, "the Will within 1.5 x keepalive", from);
    const ms = Date.now() - t0;
    expect(ms).toBeLessThanOrEqual(KEEPALIVE_S * 1500);
    // Retained: a dashboard opened later sees offline too.
    const late = await Tech.connect(broker.url, { username: "bob", password: USERS.bob });
    techs.push(late);
    await late.sub(`${P}/status`);
    await late.wait(`${P}/status`, (j, r) => r.packet.retain && isWill(j), 2000, "the retained Will");
  });

  it("a frozen process (SIGSTOP: socket open, nothing sent) is declared offline by the broker's keepalive check", async () => {
    const { child, watcher } = await startProcess();
    const from = watcher.messages.length;
    const t0 = Date.now();
    child.proc.kill("SIGSTOP");
    try {
      // mosquitto 2.0.11 enforces 1.5 x keepalive on a coarse timer: measured 6-7 s for keepalive 1-4 s.
      const slackMs = 7000;
      await watcher.wait(`${P}/status`, isWill, KEEPALIVE_S * 1500 + slackMs, "the Will after 1.5 x keepalive of silence", from);
      // Not before the broker could know: the last packet was at most one keepalive before the stop.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(KEEPALIVE_S * 500);
    } finally {
      child.proc.kill("SIGCONT");
    }
  });

  it("SIGTERM: cellio publishes a retained offline (reason shutdown) itself before it disconnects, and exits 0", async () => {
    const { child, watcher } = await startProcess();
    const from = watcher.messages.length;
    child.proc.kill("SIGTERM");
    await child.waitLine((l) => l === "stopped", 5000);
    expect(await child.exited()).toBe(0);
    const off = await watcher.wait(`${P}/status`, (j) => (j as { state?: string }).state === "offline", 2000, "offline", from);
    expect(parse(off)).toMatchObject({ state: "offline", reason: "shutdown" });
    await new Promise((r) => setTimeout(r, KEEPALIVE_S * 1500));
    // A clean DISCONNECT: no Will after the explicit offline.
    expect(watcher.on(`${P}/status`, from).filter((r) => isWill(parse(r)))).toEqual([]);
  });
});
