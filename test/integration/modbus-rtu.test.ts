/**
 * Modbus RTU end to end on real pseudo-terminals: CellApp → two modbus-rtu
 * devices (units 1 and 2) → ONE bus on one end of a socat pty pair → the RTU
 * simulator (`ModbusRtuSimServer`) on the other end. Values decoded and
 * written through the bus; a dead unit costs one timeout per poll and leaves
 * the other unit's cadence alone; recovery when it answers again; a
 * corrupted answer costs one poll. Also: the driver's documented sample
 * config validates.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RegisterBank } from "../../simulators/modbus/bank.js";
import { type Decision, FaultInjector } from "../../simulators/modbus/faults.js";
import { ModbusRtuSimServer } from "../../simulators/modbus/rtu-server.js";
import { explainCell } from "../../src/cli/explain.js";
import { loadConfigFile } from "../../src/config/load.js";
import type { ModbusTcpDriver } from "../../src/drivers/modbus/driver.js";
import { hasSocat, openPtyPair } from "../helpers/pty.js";
import { ROOT, Teardown, sleep, startCell, waitFor, type RunningCell } from "./helpers.js";
import path from "node:path";

const t = new Teardown();
afterEach(() => t.run());

// Generous times: both ends of the line and socat between them share two busy cores.
const PERIOD = 250;
const TIMEOUT = 120;

/** Counts the requests the simulator receives, per unit id. */
class CountingFaults extends FaultInjector {
  readonly perUnit = new Map<number, number>();
  override decide(unit: number): Decision {
    this.perUnit.set(unit, (this.perUnit.get(unit) ?? 0) + 1);
    return super.decide(unit);
  }
  count(unit: number): number {
    return this.perUnit.get(unit) ?? 0;
  }
}

function rtuCell(serialPath: string): string {
  return `
version: 1
cell: { id: itest-rtu }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 200, output_budget_ms: 40 }
devices:
  press:
    protocol: modbus-rtu
    serial: { path: ${serialPath}, baud_rate: 19200 }
    unit_id: 1
    timeout_ms: ${TIMEOUT}
    fail_after: 2            # one late answer (a busy machine) is not a lost device
    reconnect: { min_ms: 100, max_ms: 400 }
    points:
      ready:    { address: "di:0" }
      count:    { address: "hr:10:int16" }
      temp:     { address: "ir:20:float32:cdab" }
      lamp:     { address: "coil:3", direction: output, safe: false }
      speed_sp: { address: "hr:40", direction: output, safe: 0 }
  feeder:
    protocol: modbus-rtu
    serial: { path: ${serialPath}, baud_rate: 19200 }
    unit_id: 2
    timeout_ms: ${TIMEOUT}
    fail_after: 2            # one late answer (a busy machine) is not a lost device
    reconnect: { min_ms: 100, max_ms: 400 }
    points:
      running: { address: "coil:0" }
      speed:   { address: "hr:5" }
      level:   { address: "ir:7", scale: { gain: 0.5 }, unit: "%" }
logic:
  press.lamp: "feeder.running"
  press.speed_sp: "feeder.speed * 2"
`;
}

interface Rig {
  readonly cell: RunningCell;
  readonly sim: ModbusRtuSimServer;
  readonly faults: CountingFaults;
  readonly press: RegisterBank;
  readonly feeder: RegisterBank;
}

async function startRig(): Promise<Rig> {
  const pty = await openPtyPair();
  t.add(() => pty.close());
  const press = new RegisterBank();
  const feeder = new RegisterBank();
  press.setBit("di", 0, true);
  press.setInt16("hr", 10, -1234);
  press.setFloat32("ir", 20, 21.5, "CDAB");
  feeder.setBit("coil", 0, true);
  feeder.setRegister("hr", 5, 300);
  feeder.setRegister("ir", 7, 150);
  const faults = new CountingFaults();
  const sim = new ModbusRtuSimServer({ path: pty.a, baudRate: 19200, parity: "even", units: new Map([[1, press], [2, feeder]]), faults });
  await sim.start();
  t.add(() => sim.stop());
  const cell = await startCell(rtuCell(pty.b), t);
  return { cell, sim, faults, press, feeder };
}

const isGood = (cell: RunningCell, id: string): boolean => cell.latest(id)?.status === "good";
const runner = (cell: RunningCell, name: string) => cell.app.runners.find((r) => r.name === name)!;

const SOCAT = hasSocat();
if (!SOCAT) console.warn("Modbus RTU integration tests skipped: socat is not on PATH (apt-get install socat)");

describe.skipIf(!SOCAT)("Modbus RTU end to end on a pty pair", () => {
  it("decodes both units' values through one bus and writes logic outputs back", async () => {
    const { cell, press, faults } = await startRig();
    const c = await cell.waitCycle(
      (x) => x.mode === "running" && ["press.count", "press.temp", "feeder.level"].every((id) => x.image[cell.idx(id)]?.status === "good"),
      5000,
      "both units good",
    );
    expect(cell.sample(c, "press.ready").value).toBe(true);
    expect(cell.sample(c, "press.count").value).toBe(-1234);
    expect(cell.sample(c, "press.temp").value).toBeCloseTo(21.5, 6);
    expect(cell.sample(c, "feeder.running").value).toBe(true);
    expect(cell.sample(c, "feeder.speed").value).toBe(300);
    expect(cell.sample(c, "feeder.level").value).toBe(75);
    await waitFor(() => press.getBit("coil", 3) && press.getRegister("hr", 40) === 600, 3000, "the outputs written to unit 1");
    // Both devices went through the one bus.
    expect(faults.count(1)).toBeGreaterThan(0);
    expect(faults.count(2)).toBeGreaterThan(0);
    const bus = (cell.app.drivers[0] as unknown as { transport: { bus: unknown } }).transport.bus;
    expect((cell.app.drivers[1] as unknown as { transport: { bus: unknown } }).transport.bus).toBe(bus);
  });

  it("a dead unit: its points go bad, it costs one timeout per poll, the other unit keeps its cadence; it recovers", async () => {
    const { cell, faults } = await startRig();
    await cell.waitCycle((x) => x.mode === "running", 5000, "running");
    await waitFor(() => isGood(cell, "press.count") && isGood(cell, "feeder.level"), 3000, "both good");
    const pressDriver = cell.app.drivers.find((d) => d.name === "press") as ModbusTcpDriver;
    const feederDriver = cell.app.drivers.find((d) => d.name === "feeder") as ModbusTcpDriver;
    expect(pressDriver.plan).toHaveLength(3); // FC2, FC3, FC4 each poll
    expect(feederDriver.plan).toHaveLength(3); // FC1, FC3, FC4: a dead unit must not cost all three

    faults.set({ kind: "noAnswer" }, { unit: 2 });
    await cell.waitCycle((x) => x.image[cell.idx("feeder.level")]!.status.startsWith("bad"), 3000, "feeder points bad");

    // A window of whole seconds with unit 2 dead.
    const pressRunner = runner(cell, "press");
    const feederRunner = runner(cell, "feeder");
    const from = { cycles: cell.cycles.length, u1: faults.count(1), u2: faults.count(2), pressReads: pressRunner.counters.reads, feederReads: feederRunner.counters.reads };
    const WINDOW_MS = 3000;
    await sleep(WINDOW_MS);
    const window = cell.cycles.slice(from.cycles);
    const u1 = faults.count(1) - from.u1;
    const u2 = faults.count(2) - from.u2;
    const feederReads = feederRunner.counters.reads - from.feederReads;
    const pressReads = pressRunner.counters.reads - from.pressReads;

    // The dead unit: bad throughout, and at most one request (one timeout) per poll, not its whole plan.
    const feederStates = window.map((x) => x.image[cell.idx("feeder.level")]!.status);
    expect(feederStates.every((st) => st.startsWith("bad")), feederStates.join(" ")).toBe(true);
    expect(u2, `${u2} requests to unit 2 for ${feederReads} polls`).toBeLessThanOrEqual(feederReads + 1);
    // The live unit: good in every cycle, polled (nearly) every cycle. Generous bounds: 2 busy cores.
    const pressStates = window.map((x) => x.image[cell.idx("press.count")]!.status);
    expect(pressStates.every((st) => st === "good"), pressStates.join(" ")).toBe(true);
    const nominal = (WINDOW_MS / PERIOD) * pressDriver.plan.length; // requests per window at full cadence
    expect(u1 / (WINDOW_MS / 1000), `unit 1: ${u1} requests in ${WINDOW_MS} ms, nominal ${nominal}`).toBeGreaterThanOrEqual((0.6 * nominal) / (WINDOW_MS / 1000));
    expect(pressReads).toBeGreaterThanOrEqual(0.6 * window.length);

    faults.clear();
    await cell.waitCycle(
      (x) => x.image[cell.idx("feeder.level")]!.status === "good" && x.image[cell.idx("feeder.level")]!.value === 75,
      5000,
      "feeder recovered",
    );
    expect(isGood(cell, "press.count")).toBe(true);
  });

  it("one corrupted answer (bad CRC) costs its device one poll; the other unit never notices", async () => {
    const { cell, sim, faults, press } = await startRig();
    await cell.waitCycle((x) => x.mode === "running", 5000, "running");
    await waitFor(() => isGood(cell, "press.count") && isGood(cell, "feeder.level"), 3000, "both good");
    // Outputs written: the next request to unit 1 is a read.
    await waitFor(() => press.getBit("coil", 3) && press.getRegister("hr", 40) === 600, 3000, "the outputs written to unit 1");
    const pressFailures = runner(cell, "press").counters.readFailures;
    const deviceFailures = runner(cell, "press").counters.failuresByStatus.get("bad_device_failure") ?? 0;
    const feederStates: string[] = [];
    const sub = cell.app.loop.cycles$.subscribe((x) => feederStates.push(x.image[cell.idx("feeder.level")]!.status));
    t.add(() => sub.unsubscribe());
    const badFrames = sim.stats.badFrames;
    const u1 = faults.count(1);
    faults.set({ kind: "malform", malformation: "bad_crc" }, { unit: 1, count: 1 });
    await waitFor(() => faults.count(1) > u1 + 1, 2000, "the corrupted answer and the next request");
    await cell.waitCycle((x) => x.image[cell.idx("press.count")]!.status === "good", 3000, "press good again");
    const lost = (runner(cell, "press").counters.failuresByStatus.get("bad_device_failure") ?? 0) - deviceFailures;
    expect(lost).toBe(1); // the CRC error surfaced as a device failure
    const failed = runner(cell, "press").counters.readFailures - pressFailures;
    const why = JSON.stringify([...runner(cell, "press").counters.failuresByStatus]);
    expect(failed, why).toBeLessThanOrEqual(2); // the bad frame, then at most one poll while re-attaching
    expect(feederStates.every((st) => st === "good"), feederStates.join(" ")).toBe(true);
    expect(sim.stats.badFrames).toBe(badFrames); // cellio never sent a bad frame
  });
});

describe("the Modbus driver's sample config", () => {
  it("validates, and --explain shows the RTU bus with its two units", async () => {
    const loaded = await loadConfigFile(path.join(ROOT, "src", "drivers", "modbus", "sample.yaml"));
    const protocols = loaded.model.devices.map((d) => d.config.protocol);
    expect(protocols.filter((p) => p === "modbus-tcp").length).toBeGreaterThanOrEqual(2); // a plain device and a profile device
    expect(protocols.filter((p) => p === "modbus-rtu")).toHaveLength(2);
    expect(loaded.model.devices.some((d) => d.config.protocol === "modbus-tcp" && d.config.profile === "motoman-yrc1000")).toBe(true);
    const text = explainCell(loaded);
    expect(text).toMatch(/unit 1 on serial bus \/dev\/ttyUSB0 \(19200 8E1, inter-frame gap 2\.50 ms\)/); // the largest gap of the bus
    expect(text).toMatch(/unit 2 on serial bus \/dev\/ttyUSB0/);
  });
});
