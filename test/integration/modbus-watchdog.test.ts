/**
 * The coupler's communication watchdog, end to end: cellio arms it at connect
 * and reads it back; the simulated coupler drives its outputs to 0 and raises
 * its flag when cellio's requests stop reaching it; cellio re-arms it after
 * the reconnect and the outputs come back. Arming that fails leaves the
 * device bad with the reason. And `verify: true` outputs read back.
 * Real sockets, the real simulator, a real CellApp.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ModbusTcpSimServer, RegisterBank } from "../../simulators/modbus/index.js";
import type { ModbusTcpDriver } from "../../src/drivers/modbus/driver.js";
import { Teardown, startCell, waitFor } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

const WD_REGISTER = 100;
const FLAG = 15;

async function coupler(): Promise<{ sim: ModbusTcpSimServer; port: number; bank: RegisterBank }> {
  const bank = new RegisterBank({ coils: 16, discreteInputs: 16, holdingRegisters: 128, inputRegisters: 16 });
  const sim = new ModbusTcpSimServer({ port: 0, units: bank });
  const { port } = await sim.start();
  t.add(() => sim.stop());
  return { sim, port, bank };
}

function cellYaml(port: number, watchdog: string, extraPoints = "", logic = ""): string {
  return `
version: 1
cell: { id: itest-watchdog }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 50
    reconnect: { min_ms: 50, max_ms: 200 }
    ${watchdog}
    points:
      in0:  { address: "di:0" }
      out0: { address: "coil:0", direction: output, safe: false }${extraPoints}
logic:
  io.out0: "io.in0"${logic}
`;
}

describe("coupler communication watchdog", () => {
  it("is armed at connect and read back; when requests stop the coupler drives its outputs to 0 and flags it; after the reconnect cellio re-arms it", async () => {
    const { sim, port, bank } = await coupler();
    const wd = sim.watchdog({ register: WD_REGISTER, unitMs: 100, coils: [0, 8], flagInput: FLAG });
    bank.setBit("di", 0, true);
    const cell = await startCell(cellYaml(port, `watchdog: { address: "hr:${WD_REGISTER}", value: 10 }`), t);
    await waitFor(() => wd.armedMs === 1000, 3000, "watchdog armed with 1 s");
    await waitFor(() => bank.getBit("coil", 0), 3000, "out0 on");
    const driver = cell.app.drivers.find((d) => d.name === "io") as ModbusTcpDriver;
    expect(driver.stats().watchdogArms).toBe(1);
    expect(wd.expired).toBe(false);

    // cellio's requests stop reaching the coupler: its watchdog runs out.
    sim.faults.set({ kind: "noAnswer" });
    await waitFor(() => wd.expired, 3000, "watchdog expired");
    expect(bank.getBit("coil", 0)).toBe(false);
    expect(bank.getBit("di", FLAG)).toBe(true);
    const runner = cell.app.runners.find((r) => r.name === "io")!;
    await waitFor(() => runner.state === "bad", 3000, "device bad");

    // The line comes back: cellio reconnects, re-arms the watchdog (clearing the flag) and writes its outputs again.
    sim.faults.clear();
    await waitFor(() => !wd.expired && wd.armedMs === 1000, 3000, "watchdog re-armed");
    expect(bank.getBit("di", FLAG)).toBe(false);
    await waitFor(() => bank.getBit("coil", 0), 3000, "out0 on again");
    await waitFor(() => runner.state === "good", 3000, "device good");
    expect(driver.stats().watchdogArms).toBeGreaterThanOrEqual(2);
    expect(wd.expiries).toBeGreaterThanOrEqual(1);
  });

  it("a watchdog register the device refuses leaves the device bad with the reason, and it keeps trying", async () => {
    const { port } = await coupler();
    const cell = await startCell(cellYaml(port, `watchdog: { address: "hr:4096", value: 3 }`), t);
    const runner = cell.app.runners.find((r) => r.name === "io")!;
    // Bad from the first cycle ("not connected yet"), then with the watchdog's reason.
    await waitFor(() => runner.state === "bad" && /CELLIO_ERR_MODBUS_WATCHDOG/.test(runner.lastError), 3000, () => `device bad with the watchdog error, is ${runner.state}: ${runner.lastError}`);
    expect(runner.lastError).toMatch(/CELLIO_ERR_MODBUS_WATCHDOG: io: watchdog hr:4096 = 3: not armed: .*FC16 4096\+1: exception 0x02 \(illegal data address\)/i);
    const driver = cell.app.drivers.find((d) => d.name === "io") as ModbusTcpDriver;
    await waitFor(() => driver.stats().watchdogFailures >= 2, 3000, "a second attempt");
    expect(driver.stats().watchdogArms).toBe(0);
  });

  it("a watchdog value that does not read back leaves the device bad with both values", async () => {
    const { port, bank } = await coupler();
    // A coupler that keeps its own value (the register is read-only on this model).
    bank.onWrite((area, addr) => {
      if (area === "hr" && addr === WD_REGISTER) bank.setRegister("hr", WD_REGISTER, 0);
    });
    const cell = await startCell(cellYaml(port, `watchdog: { address: "hr:${WD_REGISTER}", value: 3 }`), t);
    const runner = cell.app.runners.find((r) => r.name === "io")!;
    // Bad from the first cycle ("not connected yet"), then with the watchdog's reason.
    await waitFor(() => runner.state === "bad" && /CELLIO_ERR_MODBUS_WATCHDOG/.test(runner.lastError), 3000, () => `device bad with the watchdog error, is ${runner.state}: ${runner.lastError}`);
    expect(runner.lastError).toMatch(/CELLIO_ERR_MODBUS_WATCHDOG: io: watchdog hr:100 = 3: read back \[0\], wrote \[3\]; the watchdog is not armed/);
  });
});

describe("verify: true outputs", () => {
  it("read back after every write; a mismatch fails that output with both values, the others are written", async () => {
    const { port, bank } = await coupler();
    bank.setBit("di", 0, true);
    // The device clamps hr:5 to 5.
    bank.onWrite((area, addr, count) => {
      if (area === "hr" && addr <= 5 && 5 < addr + count && bank.getRegister("hr", 5) > 5) bank.setRegister("hr", 5, 5);
    });
    const points = `
      limit: { address: "hr:5", direction: output, safe: 0, verify: true }
      ok:    { address: "hr:6", direction: output, safe: 0, verify: true }
      lamp:  { address: "coil:3", direction: output, safe: false, verify: true }`;
    const logic = `
  io.limit: "7"
  io.ok: "4"
  io.lamp: "io.in0"`;
    const cell = await startCell(cellYaml(port, "", points, logic), t);
    const runner = cell.app.runners.find((r) => r.name === "io")!;
    await waitFor(() => /CELLIO_ERR_MODBUS_VERIFY/.test(runner.lastError), 3000, "a verify failure");
    expect(runner.lastError).toMatch(/CELLIO_ERR_MODBUS_VERIFY: io\.limit \(hr:5\): wrote 7, read back registers \[5\], expected \[7\]/);
    expect(runner.lastError).not.toMatch(/io\.ok|io\.lamp/);
    await waitFor(() => bank.getRegister("hr", 6) === 4 && bank.getBit("coil", 3), 3000, "the other outputs written");
    await cell.waitCycle((c) => c.image[cell.idx("io.limit")]!.status === "bad_device_failure", 3000, "io.limit bad_device_failure");
    const c = cell.cycles.at(-1)!;
    expect(c.image[cell.idx("io.ok")]!.quality).toBe("good");
    const driver = cell.app.drivers.find((d) => d.name === "io") as ModbusTcpDriver;
    expect(driver.stats().verifyFailures).toBeGreaterThan(0);
  });
});
