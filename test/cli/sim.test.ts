/**
 * `cellio sim` (the built CLI, a child process) on a cell config whose robot
 * is an `opcua` device with `profile: motoman-yrc1000`, then cellio itself
 * (CellApp, the OPC UA client driver) on the SAME config: the simulator's
 * OPC UA face listens on the endpoint the config names (port and path, the
 * profile's namespace and folder), the sim-ready line lists it, cellio's
 * points of the robot turn good, the cell's logic reaches the robot's
 * commands, and an e-stop pressed on the robot control interface shows in
 * cellio's process image.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts, stopChild, tempConfig } from "../e2e/helpers.js";
import { Teardown, builtCli, startCell, trapUnhandled, type RunningCell } from "../integration/helpers.js";

const t = new Teardown();
const unhandled = trapUnhandled(t);
let opcuaPort: number;
let robotControlPort: number;
let ready: { devices: unknown[]; opcua: { device: string; endpoint: string }[]; robotControl: number };
let cell: RunningCell;

function cellYaml(pki: string): string {
  return `
version: 1
cell: { id: sim-cli-opcua-robot }
cycle: { period_ms: 50, input_budget_ms: 25, output_budget_ms: 20, overrun: { fault_after: 1000 } }
devices:
  robot:
    protocol: opcua
    endpoint: "opc.tcp://127.0.0.1:${opcuaPort}/yrc"
    security: { mode: None, pki_dir: ${JSON.stringify(pki)} }
    mode: polled
    timeout_ms: 300
    reconnect: { min_ms: 100, max_ms: 1000 }
    profile: motoman-yrc1000
    profile_options: { namespace_uri: "urn:test:cell:robot", folder: Yrc, axes: 6 }
logic:
  robot.ext_hold: "false"
  robot.watchdog_ms: "0"
`;
}

/** `cellio sim` from the built CLI; resolves with its sim-ready line. Stopped by the teardown. */
async function startSim(config: string, controlPort: number): Promise<typeof ready> {
  const cli = await builtCli();
  const args = [cli, "sim", "--config", config, "--control-port", String(controlPort), "--robot-control-port", String(robotControlPort), "--exit-with-parent"];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on("line", (l) => stderr.push(l));
  t.add(() => stopChild(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cellio sim not ready after 60 s: ${stderr.join("\n")}`)), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`cellio sim exited (${String(code)}) before it was ready: ${stderr.join("\n")}`));
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!line.includes('"sim-ready"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as typeof ready);
    });
  });
}

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cellio-sim-cli-"));
  t.add(() => rmSync(dir, { recursive: true, force: true }));
  let controlPort: number;
  [opcuaPort, robotControlPort, controlPort] = (await freePorts(3)) as [number, number, number];
  const yaml = cellYaml(path.join(dir, "pki"));
  ready = await startSim(tempConfig(yaml, t), controlPort);
  cell = await startCell(yaml, t);
}, 150_000);

afterAll(async () => {
  await t.run();
  expect(unhandled).toEqual([]);
}, 30_000);

const good = (id: string, value: unknown) => (c: Parameters<Parameters<RunningCell["waitCycle"]>[0]>[0]) => {
  const s = cell.sample(c, id);
  return s.status === "good" && s.value === value;
};

describe("cellio sim: the robot of an opcua device", () => {
  it("lists the robot's OPC UA face, on the config's endpoint, in its sim-ready line (and no Modbus device)", () => {
    expect(ready.opcua).toEqual([{ device: "robot", endpoint: `opc.tcp://127.0.0.1:${opcuaPort}/yrc` }]);
    expect(ready.devices).toEqual([]);
    expect(ready.robotControl).toBe(robotControlPort);
  });

  it("is what cellio's OPC UA driver reads on the same config: the robot's points turn good", async () => {
    await cell.waitCycle(good("robot.play", true), 30_000, "robot.play good and true over OPC UA");
    const c = await cell.waitCycle(good("robot.estop_ok", true), 5_000, "robot.estop_ok good and true");
    expect(cell.sample(c, "robot.remote")).toMatchObject({ status: "good", value: true });
    expect(cell.sample(c, "robot.joint_6").status).toBe("good");
  }, 40_000);

  it("takes the cell's commands (logic drops ext_hold) and shows the robot control interface's e-stop", async () => {
    const robots = async () =>
      ((await (await fetch(`http://127.0.0.1:${robotControlPort}/robots`)).json()) as { robots: Record<string, { commands: { extHold: boolean; watchdogMs: number } }> }).robots;
    const t0 = Date.now();
    while ((await robots()).robot?.commands.extHold !== false) {
      if (Date.now() - t0 > 10_000) throw new Error(`ext_hold still ${JSON.stringify((await robots()).robot?.commands)} at the robot`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await robots()).robot?.commands.watchdogMs).toBe(0);

    const post = (body: object) => fetch(`http://127.0.0.1:${robotControlPort}/robot`, { method: "POST", body: JSON.stringify(body) });
    expect((await post({ action: "estop", pressed: true })).status).toBe(200);
    await cell.waitCycle(good("robot.estop_ok", false), 5_000, "robot.estop_ok false in cellio");
    expect((await post({ action: "estop", pressed: false })).status).toBe(200);
    await cell.waitCycle(good("robot.estop_ok", true), 5_000, "robot.estop_ok true again in cellio");
  }, 30_000);
});
