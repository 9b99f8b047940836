/**
 * `cellio run` (the built CLI) with an `mqtt:` block, against a real
 * mosquitto: kill -9 → the broker publishes the retained Will within 1.5 ×
 * keepalive; a frozen process (SIGSTOP) → the Will after the broker's
 * keepalive check; SIGTERM → cellio publishes `offline` (shutdown) itself
 * and exits 0, and no Will follows.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { builtCli } from "../../integration/helpers.js";
import { Mosquitto, mosquittoInstalled } from "../../helpers/mosquitto.js";
import { ROOT, Tech, parse } from "./helpers.js";

const P = "cellio/demo-cell";
const USERS = { "cellio-demo-cell": "cellio-secret", bob: "bob-pw" };
const KEEPALIVE_S = 2;
/** Start of the built CLI up to the birth (worker thread, on a loaded 2-core machine: generous). */
const BIRTH_MS = 40_000;
/** Per test: the birth plus the check after it. */
const TEST_MS = BIRTH_MS + 20_000;

let broker: Mosquitto;
let cli = "";
let dir = "";
const children: ChildProcess[] = [];
const techs: Tech[] = [];

beforeAll(async () => {
  if (!mosquittoInstalled()) throw new Error("mosquitto is not installed: apt-get install -y mosquitto (these tests need a real broker)");
  broker = await Mosquitto.start({ users: USERS, acl: readFileSync(path.join(ROOT, "config", "mosquitto", "cellio.acl"), "utf8") });
  dir = mkdtempSync(path.join(os.tmpdir(), "cellio-mqtt-cli-"));
  cli = await builtCli();
}, 180_000);
afterAll(async () => {
  await broker?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGKILL");
      await exited;
    }
  }
  for (const t of techs.splice(0)) await t.end();
});

function run(): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const file = path.join(dir, "cell.yaml");
  writeFileSync(
    file,
    `version: 1
cell: { id: demo-cell }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices: {}
mqtt:
  url: ${broker.url}
  username: cellio-demo-cell
  password_env: CELLIO_MQTT_PASSWORD
  keepalive_s: ${KEEPALIVE_S}
`,
  );
  const child = spawn(process.execPath, [cli, "run", "--config", file, "--summary-every", "0"], {
    cwd: ROOT,
    env: { ...process.env, CELLIO_LOG_PRETTY: "0", CELLIO_MQTT_PASSWORD: USERS["cellio-demo-cell"] },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, output: () => out, exited };
}

async function watcher(): Promise<Tech> {
  const t = await Tech.connect(broker.url, { username: "bob", password: USERS.bob });
  techs.push(t);
  await t.sub(`${P}/status`);
  return t;
}

const state = (j: unknown): string | undefined => (j as { state?: string }).state;
const reason = (j: unknown): string | undefined => (j as { reason?: string }).reason;

describe("cellio run with an mqtt: block", () => {
  it("kill -9: the retained Will (offline, connection lost) within 1.5 x keepalive", async () => {
    const w = await watcher();
    const from = w.messages.length;
    const p = run();
    await w.wait(`${P}/status`, (j) => state(j) === "online", BIRTH_MS, "the birth", from).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${p.output()}`);
    });
    const killedAt = w.messages.length;
    const t0 = Date.now();
    p.child.kill("SIGKILL");
    await w.wait(`${P}/status`, (j) => reason(j) === "connection lost", KEEPALIVE_S * 1500, "the Will", killedAt);
    expect(Date.now() - t0).toBeLessThanOrEqual(KEEPALIVE_S * 1500);
  }, TEST_MS);

  it("a frozen process (SIGSTOP: socket open, nothing sent) is declared offline by the broker's keepalive check", async () => {
    const w = await watcher();
    const from = w.messages.length;
    const p = run();
    await w.wait(`${P}/status`, (j) => state(j) === "online", BIRTH_MS, "the birth", from).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${p.output()}`);
    });
    const stoppedAt = w.messages.length;
    const t0 = Date.now();
    p.child.kill("SIGSTOP");
    try {
      // mosquitto 2.0.11 enforces 1.5 x keepalive on a coarse timer: measured 6-7 s for keepalives of 1-4 s.
      const slackMs = 7000;
      await w.wait(`${P}/status`, (j) => reason(j) === "connection lost", KEEPALIVE_S * 1500 + slackMs, "the Will after 1.5 x keepalive of silence", stoppedAt);
      // Not before the broker could know: the last packet went out at most one keepalive before the stop.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(KEEPALIVE_S * 500);
    } finally {
      p.child.kill("SIGCONT");
    }
  }, TEST_MS);

  it("SIGTERM: offline (shutdown) published by cellio, exit 0, no Will", async () => {
    const w = await watcher();
    const from = w.messages.length;
    const p = run();
    await w.wait(`${P}/status`, (j) => state(j) === "online", BIRTH_MS, "the birth", from).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${p.output()}`);
    });
    const stoppedAt = w.messages.length;
    p.child.kill("SIGTERM");
    expect(await p.exited, p.output()).toBe(0);
    const off = await w.wait(`${P}/status`, (j) => state(j) === "offline", 2000, "offline", stoppedAt);
    expect(parse(off)).toMatchObject({ reason: "shutdown" });
    await new Promise((r) => setTimeout(r, KEEPALIVE_S * 1500));
    expect(w.on(`${P}/status`, stoppedAt).filter((r) => reason(parse(r)) === "connection lost")).toEqual([]);
  }, TEST_MS);
});
