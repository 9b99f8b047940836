/**
 * The demo cell end to end, over processes and sockets: `cellio sim
 * --scenario demo` (the built CLI) plays the process on a temp copy of
 * config/demo-cell.yaml with free ports; cellio runs in this process as a
 * CellApp on the same config, so the test submits resets through the one
 * command path (the one OPC UA and MQTT call). The test reaches the devices
 * only through the simulators' HTTP control interface, like a technician with
 * curl would.
 *
 * One cell for the file; the tests run in order and each leaves the cell in
 * the state the next one starts from (running, no interlock tripped).
 */
import path from "node:path";
import { parseDocument } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CommandResult } from "../../src/core/commands.js";
import type { CycleResult } from "../../src/loop/control-loop.js";
import { MOTOMAN_YRC1000_MAP } from "../../src/profiles/motoman-yrc1000-map.js";
import { ROOT, Teardown, sleep, startCell, waitFor, type RunningCell } from "../integration/helpers.js";
import { SimControl, editText, freePorts, readText, startSimCli, tempConfig, waitForAsync, withPorts } from "./helpers.js";

const t = new Teardown();
let cell: RunningCell;
let ctl: SimControl;

/** Where the robot's ext_hold bit sits in its command window (base 0 in the demo config). */
const EXT_HOLD = MOTOMAN_YRC1000_MAP.find((f) => f.name === "ext_hold")!;
/** One pick: 1.5 s of conveyor travel, the handshake, a 4 s PICK_A job; with margin for two busy cores. */
const PICK_MS = 15_000;

const num = (c: CycleResult, id: string): number => Number(cell.sample(c, id).value);
const latestNum = (id: string): number => Number(cell.latest(id)?.value);
const commanded = (c: CycleResult, id: string): unknown => c.commanded[cell.idx(id)];
const interlock = (id: string) => cell.app.loop.logic.interlocks.state(id)!;
const step = (): string | undefined => cell.app.loop.logic.sequences.state("pick")?.step;

function reset(id: string): CommandResult {
  return cell.app.loop.logic.commands.submit({ kind: "reset_interlock", id }, { role: "operator", caller: "e2e", nowMs: performance.now() });
}

async function robotHoldCommandAtSim(): Promise<boolean> {
  const word = Number(await ctl.get("robot", "hr", EXT_HOLD.offset));
  return ((word >> EXT_HOLD.bit!) & 1) === 1;
}

/** The sequence's step transitions seen since `from` (an index into cell.cycles). */
function stepsSince(from: number): string[] {
  return cell.cycles
    .slice(from)
    .flatMap((c) => c.sequenceEvents)
    .filter((e) => e.id === "pick" && e.kind === "step")
    .map((e) => `${e.from}->${e.to}`);
}

/** What the cell is doing, for a timeout message. */
function diagnosis(): string {
  const trips = cell.app.loop.logic.interlocks.states().map((s) => `${s.id}: ${s.tripped ? `tripped (${s.lastCause})` : "clear"}, ${s.tripCount} trip(s)`);
  return `pick step ${step() ?? "?"} (last fault: ${cell.app.loop.logic.sequences.state("pick")?.lastFault ?? ""}); ${trips.join("; ")}`;
}

async function waitOperating(): Promise<void> {
  try {
    await cell.waitCycle((c) => cell.sample(c, "robot.operating").value === true, PICK_MS, "robot.operating");
  } catch (e) {
    throw new Error(`${String(e)}\n${diagnosis()}`, { cause: e });
  }
}

/** Wait until the robot's cycle_count in cellio's image is at least `n`. */
async function waitCycleCount(n: number, ms: number): Promise<void> {
  try {
    await cell.waitCycle((c) => cell.sample(c, "robot.cycle_count").quality === "good" && num(c, "robot.cycle_count") >= n, ms, `robot.cycle_count >= ${n}`);
  } catch (e) {
    throw new Error(`${String(e)}\n${diagnosis()}`, { cause: e });
  }
}

beforeAll(async () => {
  const [io1, robot, curtain, control] = await freePorts(4);
  const demo = withPorts(
    readText(path.join(ROOT, "config", "demo-cell.yaml")),
    new Map([
      [5020, io1!],
      [5021, robot!],
      [5022, curtain!],
    ]),
  );
  // The demo's 10 ms cycle with 4 ms budgets and 50 ms timeouts overruns
  // into an overrun fault on a loaded two-core CI machine (seen: load 9.5);
  // this test is about behaviour, so its copy gets 50 ms and wide margins.
  // One late answer must not trip a latched interlock on a loaded machine
  // (seen at load 20: a 250 ms timeout, the device bad, guard_door latched
  // and nobody to reset it): 500 ms timeouts and 3 failed polls before a
  // device is lost.
  const timed = editText(demo, [
    ["period_ms: 10 ", "period_ms: 50 "],
    ["input_budget_ms: 4 ", "input_budget_ms: 20 "],
    ["output_budget_ms: 4 ", "output_budget_ms: 20 "],
    ["fault_after: 5 ", "fault_after: 1000 "],
    [/timeout_ms: 50\b/g, "timeout_ms: 500"],
    [/stale_after_ms: 150\b/, "stale_after_ms: 3000"],
  ]);
  // The demo's embedded MQTT broker listens on 1883 and its OPC UA server on
  // 4840; the test's on any free port.
  const doc = parseDocument(timed);
  if (doc.has("mqtt")) doc.setIn(["mqtt", "embedded", "port"], 0);
  if (doc.has("opcua")) doc.setIn(["opcua", "port"], 0);
  for (const d of ["io1", "curtain", "robot"]) doc.setIn(["devices", d, "fail_after"], 3);
  // The robot holds itself when cellio's heartbeat stops for watchdog_ms (1 s
  // in the demo), and a held start needs a new start edge the pick sequence
  // does not give in its start step: a loaded machine stalling cellio for a
  // second left the robot held (seen at load 20). Not what this test is about.
  doc.setIn(["devices", "robot", "points", "watchdog_ms"], doc.createNode({ safe: 10_000 }));
  const yaml = doc.toString();
  const file = tempConfig(yaml, t, "demo-cell.yaml");
  await startSimCli(file, control!, t, { scenario: "demo" });
  ctl = new SimControl(control!);
  cell = await startCell(yaml, t);
  await cell.waitCycle((c) => c.mode === "running" && cell.sample(c, "robot.cycle_count").quality === "good", 10_000, "first good scan");
}, 400_000); // the first run of the suite may have to compile the CLI (minutes on a loaded two-core machine)

afterAll(async () => {
  await t.run();
});

describe("demo cell on `cellio sim --scenario demo`", () => {
  it("runs at least two complete pick cycles (run → wait_part each time)", async () => {
    const from = cell.cycles.length;
    const start = latestNum("robot.cycle_count");
    await waitCycleCount(start + 2, 2 * PICK_MS + 5_000);
    const steps = stepsSince(from);
    expect(steps.filter((s) => s === "run->wait_part").length).toBeGreaterThanOrEqual(2);
    for (const s of ["wait_part->servo", "servo->select", "select->start", "start->run"]) expect(steps).toContain(s);
    expect(interlock("guard_door").tripped).toBe(false);
    expect(interlock("light_curtain").tripped).toBe(false);
  }, 2 * PICK_MS + 10_000);

  it("an opened guard door holds the robot and stops the conveyor within a few cycles, with the door as the cause", async () => {
    // Wait until the robot is moving, so the hold has something to stop.
    await waitOperating();
    await ctl.set("io1", "di", 0, false);
    const opened = await cell.waitCycle((c) => cell.sample(c, "io1.door_closed").value === false, 2_000, "io1.door_closed false in the image");
    const tripped = await cell.waitCycle(
      (c) => c.cycle >= opened.cycle && commanded(c, "robot.ext_hold") === true && commanded(c, "io1.conveyor_run") === false,
      2_000,
      "ext_hold commanded true and conveyor_run false",
    );
    // Published cycles, not cycle numbers: a loaded machine skips cycle numbers.
    expect(cell.cycles.indexOf(tripped) - cell.cycles.indexOf(opened)).toBeLessThanOrEqual(3);
    expect(commanded(tripped, "robot.ext_start")).toBe(false);
    const trip = cell.cycles.flatMap((c) => c.interlockEvents).find((e) => e.id === "guard_door" && e.kind === "trip");
    expect(trip?.cause).toContain("io1.door_closed");

    // What arrives at the devices, read from the simulators.
    await waitForAsync(robotHoldCommandAtSim, 2_000, "ext_hold bit set in the robot's command register");
    await waitForAsync(async () => (await ctl.get("io1", "coil", 0)) === false, 2_000, "conveyor coil off at io1");
    await cell.waitCycle((c) => cell.sample(c, "robot.hold").value === true && cell.sample(c, "robot.operating").value === false, 2_000, "robot holding");

    const s = interlock("guard_door");
    expect(s.tripped).toBe(true);
    expect(s.latched).toBe(true);
    expect(s.lastCause).toContain("io1.door_closed");
  });

  it("a reset while the door is open is refused; closing the door restarts nothing", async () => {
    const refused = reset("guard_door");
    expect(refused).toMatchObject({ accepted: false, code: "interlocked" });
    expect(interlock("guard_door").permitted).toBe(false);

    await ctl.set("io1", "di", 0, true);
    const closed = await cell.waitCycle((c) => cell.sample(c, "io1.door_closed").value === true, 2_000, "io1.door_closed true again");
    const from = cell.cycles.findIndex((c) => c.cycle === closed.cycle);
    await sleep(1_000);
    const after = cell.cycles.slice(from);
    expect(after.length).toBeGreaterThan(10); // the loop ran meanwhile
    for (const c of after) {
      expect(commanded(c, "robot.ext_hold")).toBe(true);
      expect(commanded(c, "robot.ext_start")).toBe(false);
      expect(commanded(c, "io1.conveyor_run")).toBe(false);
      expect(cell.sample(c, "robot.operating").value).toBe(false);
    }
    expect(await robotHoldCommandAtSim()).toBe(true);
    expect(await ctl.get("io1", "coil", 0)).toBe(false);
    const s = interlock("guard_door");
    expect(s.tripped).toBe(true);
    expect(s.permitted).toBe(true);
  });

  it("after an accepted reset the cell resumes and completes another pick cycle", async () => {
    const from = cell.cycles.length;
    const count = latestNum("robot.cycle_count");
    expect(reset("guard_door")).toEqual({ accepted: true });
    await cell.waitCycle((c) => c.interlockEvents.some((e) => e.id === "guard_door" && e.kind === "reset"), 2_000, "guard_door reset event");
    expect(interlock("guard_door").tripped).toBe(false);
    await waitForAsync(async () => !(await robotHoldCommandAtSim()), 2_000, "ext_hold bit clear at the robot");
    await waitCycleCount(count + 1, 2 * PICK_MS);
    await waitFor(() => stepsSince(from).includes("run->wait_part"), 5_000, () => `run->wait_part (steps: ${stepsSince(from).join(", ")})`);
  }, 2 * PICK_MS + 5_000);

  it("a light curtain that stops answering trips light_curtain and holds the robot; only a reset clears the latch", async () => {
    await waitOperating();
    await ctl.fault("curtain", { kind: "noAnswer" });
    await cell.waitCycle((c) => c.interlockEvents.some((e) => e.id === "light_curtain" && e.kind === "trip"), 5_000, "light_curtain trip");
    // Not good either way: stale (no answer for stale_after_ms) or bad (fail_after failed polls), whichever comes first on a busy machine.
    expect(interlock("light_curtain").lastCause).toMatch(/input curtain\.clear is (bad_|uncertain_last_usable)/);
    expect(interlock("guard_door").tripped).toBe(false);
    await waitForAsync(robotHoldCommandAtSim, 2_000, "ext_hold bit set at the robot");
    await waitForAsync(async () => (await ctl.get("io1", "coil", 0)) === false, 2_000, "conveyor coil off at io1");
    await cell.waitCycle((c) => cell.sample(c, "robot.hold").value === true, 2_000, "robot holding");

    // While the curtain is silent its input is not good: no reset.
    expect(reset("light_curtain")).toMatchObject({ accepted: false, code: "interlocked" });

    await ctl.clear("curtain");
    await cell.waitCycle((c) => cell.sample(c, "curtain.clear").quality === "good" && cell.sample(c, "curtain.clear").value === true, 5_000, "curtain.clear good again");
    await sleep(500);
    expect(interlock("light_curtain").tripped).toBe(true);
    expect(commanded(cell.cycles.at(-1)!, "robot.ext_hold")).toBe(true);
    expect(await robotHoldCommandAtSim()).toBe(true);

    const count = latestNum("robot.cycle_count");
    expect(reset("light_curtain")).toEqual({ accepted: true });
    await waitFor(() => !interlock("light_curtain").tripped, 2_000, "light_curtain clear");
    await waitForAsync(async () => !(await robotHoldCommandAtSim()), 2_000, "ext_hold bit clear at the robot");
    await waitCycleCount(count + 1, 2 * PICK_MS);
  }, 3 * PICK_MS);

  it("a light curtain device that disconnects (and refuses to reconnect) trips light_curtain and raises its alarms; back online, only a reset restarts the cell", async () => {
    await waitOperating();
    const from = cell.cycles.at(-1)!.cycle;
    const since = () => cell.cycles.filter((c) => c.cycle > from);
    await ctl.fault("curtain", { kind: "refuseConnections" });
    await ctl.fault("curtain", { kind: "disconnect" });
    await cell.waitCycle((c) => interlock("light_curtain").tripped && cell.sample(c, "curtain.clear").quality === "bad", 5_000, "light_curtain tripped on a bad curtain.clear");
    expect(interlock("light_curtain").lastCause).toMatch(/input curtain\.clear is (bad_|uncertain_last_usable)/);
    await waitForAsync(robotHoldCommandAtSim, 2_000, "ext_hold bit set at the robot");
    await waitForAsync(async () => (await ctl.get("io1", "coil", 0)) === false, 2_000, "conveyor coil off at io1");
    await waitFor(() => since().some((c) => c.alarmEvents.some((e) => e.id === "device.curtain" && e.kind === "raise")), 5_000, "device.curtain alarm raised");
    expect(since().flatMap((c) => c.alarmEvents).some((e) => e.id === "interlock.light_curtain" && e.kind === "raise")).toBe(true);

    // Acknowledge through the one command path, as MQTT `ack` and OPC UA Acknowledge do.
    const ack = cell.app.loop.logic.commands.submit({ kind: "acknowledge", id: "device.curtain" }, { role: "operator", caller: "e2e", nowMs: performance.now() });
    expect(ack).toEqual({ accepted: true });
    await waitFor(() => cell.app.loop.logic.alarms.state("device.curtain")!.acked, 2_000, "device.curtain acknowledged");

    await ctl.clear("curtain");
    await cell.waitCycle((c) => cell.sample(c, "curtain.clear").quality === "good" && cell.sample(c, "curtain.clear").value === true, 15_000, "curtain reconnected, clear good again");
    await waitFor(() => since().some((c) => c.alarmEvents.some((e) => e.id === "device.curtain" && e.kind === "clear")), 2_000, "device.curtain alarm cleared");
    await sleep(500);
    expect(interlock("light_curtain").tripped).toBe(true);
    expect(commanded(cell.cycles.at(-1)!, "robot.ext_hold")).toBe(true);
    expect(commanded(cell.cycles.at(-1)!, "io1.conveyor_run")).toBe(false);
    expect(await robotHoldCommandAtSim()).toBe(true);

    const count = latestNum("robot.cycle_count");
    expect(reset("light_curtain")).toEqual({ accepted: true });
    await waitFor(() => !interlock("light_curtain").tripped, 2_000, "light_curtain clear");
    await waitForAsync(async () => !(await robotHoldCommandAtSim()), 2_000, "ext_hold bit clear at the robot");
    await waitCycleCount(count + 1, 2 * PICK_MS);
  }, 4 * PICK_MS);
});
