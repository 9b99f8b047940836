/**
 * A latched trip survives kill -9 of cellio (the built CLI, a real process,
 * against a Modbus simulator on a real socket): the restarted process has
 * the interlock tripped from its first cycle, writes the output safe, keeps
 * it safe after the first good scan although the permit is true again, shows
 * the restored trip on MQTT, and lets the output follow the logic only after
 * a reset over MQTT; the reset is saved too.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ROOT, SimDevice, Teardown, builtCli, sleep, waitFor } from "../integration/helpers.js";
import { freePorts } from "../e2e/helpers.js";
import { Tech, sendCommand } from "../north/mqtt/helpers.js";
import { STATE_VERSION, parseStateBody, type RetainedState } from "../../src/persist/state.js";
import { readStateFile } from "../../src/persist/store.js";

const t = new Teardown();
afterEach(() => t.run());
let cli = "";
beforeAll(async () => {
  cli = await builtCli();
}, 180_000);

const CELL = "persist-itest";
const ALICE_PW = "alice-secret";

function cellYaml(dev: SimDevice, mqttPort: number): string {
  return `
version: 1
cell: { id: ${CELL} }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${dev.port}
    timeout_ms: 200
    points:
      guard_ok: { address: "di:0" }
      motor:    { address: "coil:0", direction: output, safe: false }
logic:
  a.motor: "true"
interlocks:
  guard:
    permit: "a.guard_ok"
    force: [a.motor]
    latch: true
    reset_roles: [operator]
mqtt:
  broker: embedded
  embedded:
    port: ${mqttPort}
    users: { alice: { password_env: CELLIO_TEST_ALICE } }
  roles: { alice: operator }
  publish_interval_ms: 50
state:
  min_write_interval: 200ms
`;
}

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

function runCellio(config: string, stateDir: string): Proc {
  const child = spawn(process.execPath, [cli, "run", "--config", config, "--summary-every", "0", "--state-dir", stateDir], {
    cwd: ROOT,
    env: { ...process.env, CELLIO_LOG_PRETTY: "0", CELLIO_TEST_ALICE: ALICE_PW },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  t.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  return { child, exited, output: () => out };
}

/** Connect as alice to the embedded broker, which listens once the cell has run its first cycle. */
async function connect(port: number, p: Proc): Promise<Tech> {
  const t0 = performance.now();
  for (;;) {
    try {
      const tech = await Tech.connect(`mqtt://127.0.0.1:${port}`, { username: "alice", password: ALICE_PW, protocolVersion: 4, reconnectPeriod: 0 });
      t.add(() => tech.end());
      return tech;
    } catch (e) {
      if (performance.now() - t0 > 15_000) throw new Error(`no MQTT broker on ${port}; output:\n${p.output()}`, { cause: e });
      await sleep(200);
    }
  }
}

/** Poll `file` until its saved state satisfies `pred`. */
async function waitSaved(file: string, pred: (s: RetainedState) => boolean, what: string): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const s = await saved(file);
    if (s && pred(s)) return;
    if (performance.now() - t0 > 10_000) throw new Error(`timed out waiting for ${what}; the file has ${JSON.stringify(s)}`);
    await sleep(20);
  }
}

async function saved(file: string): Promise<RetainedState | undefined> {
  const r = await readStateFile(file, [STATE_VERSION]);
  if (r.kind !== "ok") return undefined;
  const p = parseStateBody(r.body, CELL);
  return p.ok ? p.state : undefined;
}

describe("cellio run: a latched trip over kill -9", () => {
  it("is still tripped after the restart, its output safe until a reset over MQTT", async () => {
    const dev = await SimDevice.start(t);
    const [mqttPort] = await freePorts(1);
    const dir = mkdtempSync(path.join(os.tmpdir(), "cellio-restart-"));
    t.add(() => rmSync(dir, { recursive: true, force: true }));
    const config = path.join(dir, "cell.yaml");
    writeFileSync(config, cellYaml(dev, mqttPort!));
    const stateDir = path.join(dir, "state");
    const file = path.join(stateDir, `${CELL}.state`);
    const motor = (): boolean => dev.bank.getBit("coil", 0);

    // Run 1: running, then the guard opens (trip) and closes again (latched: stays tripped).
    dev.bank.setBit("di", 0, true);
    const p1 = runCellio(config, stateDir);
    await waitFor(() => motor(), 20_000, () => `run 1 to drive the motor; output:\n${p1.output()}`);
    dev.bank.setBit("di", 0, false);
    await waitFor(() => !motor(), 10_000, () => `the trip to stop the motor; output:\n${p1.output()}`);
    dev.bank.setBit("di", 0, true);
    await waitSaved(file, (s) => s.interlocks[0]?.tripped === true, "the trip in the state file");
    await sleep(200);
    expect(motor()).toBe(false);

    p1.child.kill("SIGKILL");
    expect((await p1.exited).signal).toBe("SIGKILL");
    dev.bank.setBit("coil", 0, true); // the output is on when cellio comes back: it must write it safe

    // Run 2: the motor goes safe and stays safe after the first good scan, though the permit is true.
    const p2 = runCellio(config, stateDir);
    await waitFor(() => !motor(), 20_000, () => `run 2 to write the motor safe; output:\n${p2.output()}`);
    let drove = false;
    const watch = setInterval(() => (drove ||= motor()), 5);
    t.add(() => clearInterval(watch));
    await waitFor(() => p2.output().includes("first complete good scan"), 10_000, () => `run 2's first good scan; output:\n${p2.output()}`);
    expect(p2.output()).toContain("restored from state file (tripped at");
    const tech = await connect(mqttPort!, p2);
    await tech.sub(`cellio/${CELL}/interlocks/guard`);
    const st = await tech.wait(`cellio/${CELL}/interlocks/guard`, (j) => (j as { permitted?: boolean }).permitted === true, 10_000, "guard permitted again");
    const shown = JSON.parse(st.text) as { tripped: boolean; trip_count: number; last_cause: string };
    expect(shown).toMatchObject({ tripped: true, trip_count: 1 });
    expect(shown.last_cause).toMatch(/^restored from state file \(tripped at \S+Z, cause permit false: a\.guard_ok\)$/);
    await sleep(500); // 25 cycles with a true permit and good inputs
    clearInterval(watch);
    expect(drove, "the motor was driven on before a reset").toBe(false);

    // A reset over MQTT: the logic drives the motor again, and the state file says not tripped.
    const reply = await sendCommand(tech, `cellio/${CELL}`, "alice", "reset_interlock", { id: "guard" }, 4);
    expect(reply).toMatchObject({ accepted: true });
    await waitFor(() => motor(), 10_000, () => `the motor after the reset; output:\n${p2.output()}`);
    await waitSaved(file, (s) => s.interlocks[0]?.tripped === false, "the reset in the state file");

    p2.child.kill("SIGTERM");
    expect(await p2.exited).toEqual({ code: 0, signal: null });
    expect(motor()).toBe(false); // safe at stop, as always
    expect((await saved(file))?.interlocks[0]).toMatchObject({ id: "guard", tripped: false, tripCount: 1 });
  }, 120_000);
});
