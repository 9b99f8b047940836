/**
 * Several unit ids behind one Modbus TCP gateway: the devices share one
 * connection, polled fairly; a dead unit id costs its timeout and not the
 * others' polls; a gateway exception (0B) for one unit leaves the others
 * alone; a connection-level fault is one reconnect for all of them; busy
 * answers are retried within the request's budget and counted.
 * Real sockets, the real simulator (one port, several units), a real CellApp.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ModbusTcpSimServer, RegisterBank } from "../../simulators/modbus/index.js";
import type { UnknownUnitPolicy } from "../../simulators/modbus/index.js";
import type { ModbusTcpDriver } from "../../src/drivers/modbus/driver.js";
import { Teardown, median, intervals, sleep, startCell, waitFor, type RunningCell } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

const PERIOD = 20;
const TIMEOUT = 60;
const ALIVE = [1, 2, 3] as const;

async function gateway(unknownUnit: UnknownUnitPolicy = "ignore"): Promise<{ sim: ModbusTcpSimServer; port: number; banks: Map<number, RegisterBank> }> {
  const banks = new Map<number, RegisterBank>(ALIVE.map((u) => [u, new RegisterBank({ coils: 16, discreteInputs: 16, holdingRegisters: 16, inputRegisters: 16 })]));
  for (const [u, b] of banks) b.setRegister("ir", 0, 100 + u);
  const sim = new ModbusTcpSimServer({ port: 0, units: banks, unknownUnit });
  const { port } = await sim.start();
  t.add(() => sim.stop());
  return { sim, port, banks };
}

/** When each unit's requests arrive, as the gateway sees them (the units it holds). */
function requestTimesByUnit(sim: ModbusTcpSimServer): Map<number, number[]> {
  const times = new Map<number, number[]>();
  const decide = sim.faults.decide.bind(sim.faults);
  sim.faults.decide = (unit: number) => {
    let list = times.get(unit);
    if (!list) times.set(unit, (list = []));
    list.push(performance.now());
    return decide(unit);
  };
  return times;
}

function cellYaml(port: number, opts: { deadUnit?: number; maxInFlight?: number; extra?: string } = {}): string {
  const dev = (name: string, unit: number): string => `
  ${name}:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    unit_id: ${unit}
    timeout_ms: ${TIMEOUT}
    max_in_flight: ${opts.maxInFlight ?? 1}
    reconnect: { min_ms: 50, max_ms: 400 }
    required: false
    points:
      level: { address: "ir:0" }${opts.extra ?? ""}`;
  const devices = ALIVE.map((u) => dev(`u${u}`, u)).join("");
  const dead = opts.deadUnit === undefined ? "" : dev("dead", opts.deadUnit);
  return `
version: 1
cell: { id: itest-gateway }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 12, output_budget_ms: 6 }
devices:${devices}${dead}
`;
}

const allAliveGood = (cell: RunningCell) => (c: Parameters<Parameters<RunningCell["waitCycle"]>[0]>[0]) =>
  ALIVE.every((u) => c.image[cell.idx(`u${u}.level`)]!.quality === "good");

describe("several unit ids behind one gateway", () => {
  it("share one connection and each reads its own unit's values", async () => {
    const { sim, port } = await gateway();
    const cell = await startCell(cellYaml(port), t);
    const c = await cell.waitCycle(allAliveGood(cell), 3000, "every unit good");
    for (const u of ALIVE) expect(cell.sample(c, `u${u}.level`).value).toBe(100 + u);
    await sleep(200);
    expect(sim.stats.connections).toBe(1);
    expect(sim.stats.activeConnections).toBe(1);
  });

  it.each([1, 4])("a dead unit id (no answer) goes bad on its timeout, costs at most its timeout per round, and the others stay good and polled (max_in_flight %i)", async (maxInFlight) => {
    const { sim, port } = await gateway("ignore");
    const times = requestTimesByUnit(sim);
    const cell = await startCell(cellYaml(port, { deadUnit: 9, maxInFlight }), t);
    // Never read, its points stay bad_waiting_for_initial_data; the device is bad with the timeout.
    const deadRunner = cell.app.runners.find((r) => r.name === "dead")!;
    await waitFor(() => deadRunner.state === "bad" && /TIMEOUT/.test(deadRunner.lastError), 3000, () => `dead unit bad on its timeout, is ${deadRunner.state}: ${deadRunner.lastError}`);
    expect(deadRunner.lastError).toMatch(/CELLIO_ERR_MODBUS_TIMEOUT: 127\.0\.0\.1:\d+ unit 9 FC4 0\+1: no answer within 60 ms/);
    await cell.waitCycle(allAliveGood(cell), 3000, "every live unit good");
    for (const list of times.values()) list.length = 0;
    const from = cell.cycles.length;
    await sleep(1500);
    const window = cell.cycles.slice(from);
    // Every cycle of the window saw the live units good, the dead one bad.
    for (const c of window) {
      for (const u of ALIVE) expect(c.image[cell.idx(`u${u}.level`)]!.quality, `u${u} in cycle ${c.cycle}`).toBe("good");
      expect(c.image[cell.idx("dead.level")]!.quality).toBe("bad");
    }
    // Fair: every live unit is polled about as often as the others.
    const counts = ALIVE.map((u) => times.get(u)?.length ?? 0);
    const figures = `requests per live unit in 1.5 s: ${counts.join(", ")}; median gaps ${ALIVE.map((u) => median(intervals(times.get(u) ?? [])).toFixed(1)).join(", ")} ms`;
    expect(Math.min(...counts), figures).toBeGreaterThan(0.8 * Math.max(...counts));
    // A dead unit in flight holds a one-slot connection for at most its timeout per round; with
    // more slots the live units keep (nearly) the cycle's cadence.
    const bound = maxInFlight === 1 ? TIMEOUT + 3 * PERIOD : 2 * PERIOD;
    for (const u of ALIVE) expect(median(intervals(times.get(u) ?? [])), figures).toBeLessThan(bound);
    expect(sim.stats.connections).toBe(1); // the dead unit was set aside, not the connection
  });

  it("a unit the gateway cannot reach (exception 0B) fails with bad_no_communication at once; the others are untouched", async () => {
    const { sim, port } = await gateway("gateway_exception");
    const cell = await startCell(cellYaml(port, { deadUnit: 9 }), t);
    const deadRunner = cell.app.runners.find((r) => r.name === "dead")!;
    await waitFor(() => deadRunner.state === "bad" && /0x0b/.test(deadRunner.lastError), 3000, () => `unit 9 bad on 0B, is ${deadRunner.state}: ${deadRunner.lastError}`);
    const c = await cell.waitCycle(allAliveGood(cell), 3000, "live units good");
    expect(deadRunner.counters.failuresByStatus.get("bad_no_communication")).toBeGreaterThan(0);
    expect(deadRunner.lastError).toMatch(/unit 9 FC4 0\+1: exception 0x0b \(gateway target device failed to respond\)/i);
    expect(cell.sample(c, "u1.level").value).toBe(101);
    const dead = cell.app.drivers.find((d) => d.name === "dead") as ModbusTcpDriver;
    expect(dead.stats().exceptionsByCode[0x0b]).toBeGreaterThan(0);
    expect(dead.stats().errors.timeout).toBe(0);
    expect(sim.stats.connections).toBe(1);
  });

  it("a connection-level fault affects every unit on it, and they come back with one reconnect", async () => {
    const { sim, port, banks } = await gateway();
    const cell = await startCell(cellYaml(port), t);
    await cell.waitCycle(allAliveGood(cell), 3000, "every unit good");
    await sleep(100);
    expect(sim.stats.connections).toBe(1);
    sim.faults.disconnect();
    await cell.waitCycle((c) => ALIVE.every((u) => c.image[cell.idx(`u${u}.level`)]!.status === "bad_no_communication"), 3000, "every unit bad_no_communication");
    banks.get(2)!.setRegister("ir", 0, 222);
    const back = await cell.waitCycle((c) => allAliveGood(cell)(c) && c.image[cell.idx("u2.level")]!.value === 222, 3000, "every unit back");
    expect(cell.sample(back, "u1.level").value).toBe(101);
    await sleep(300);
    expect(sim.stats.connections).toBe(2);
    for (const u of ALIVE) expect((cell.app.drivers.find((d) => d.name === `u${u}`) as ModbusTcpDriver).reconnects).toBe(1);
  });

  it("exception 06 (busy) is retried within the request's budget and counted; a unit busy for good fails with the exception", async () => {
    const { sim, port } = await gateway();
    const cell = await startCell(cellYaml(port), t);
    await cell.waitCycle(allAliveGood(cell), 3000, "every unit good");
    const u1 = cell.app.drivers.find((d) => d.name === "u1") as ModbusTcpDriver;
    const before = u1.stats();
    sim.faults.set({ kind: "busy" }, { unit: 1, count: 2 });
    await waitFor(() => u1.stats().busyRetries >= before.busyRetries + 2, 2000, "two busy retries");
    await sleep(100);
    const after = u1.stats();
    expect(after.exceptionsByCode[6]).toBe((before.exceptionsByCode[6] ?? 0) + 2);
    // Retried within the same read: the unit never went bad.
    expect(cell.cycles.slice(-20).every((c) => c.image[cell.idx("u1.level")]!.quality === "good")).toBe(true);
    sim.faults.set({ kind: "busy" }, { unit: 1 });
    await cell.waitCycle((c) => c.image[cell.idx("u1.level")]!.status === "bad_device_failure", 3000, "u1 bad while busy for good");
    expect(cell.app.runners.find((r) => r.name === "u1")!.lastError).toMatch(/exception 0x06/);
    const c = cell.cycles.at(-1)!;
    expect(c.image[cell.idx("u2.level")]!.quality).toBe("good");
    sim.faults.clear();
    await cell.waitCycle(allAliveGood(cell), 3000, "u1 good again");
  });
});
