/**
 * Log transitions, not repetitions: a device that accepts connections but
 * does not answer is reconnected after its timeouts, again and again; only
 * the first connection and the first one after the device had answered are
 * news (info). The reconnects in between are debug lines.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ModbusTcpSimServer, RegisterBank } from "../../../simulators/modbus/index.js";
import { loadConfigText } from "../../../src/config/load.js";
import { ModbusTcpDriver } from "../../../src/drivers/modbus/driver.js";
import { systemClock } from "../../../src/infra/clock.js";
import type { ReadOutcome } from "../../../src/loop/device-port.js";
import { memoryLog } from "../../helpers/memory-log.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CONNECTED = "modbus connected";
const RECONNECTED = "modbus reconnected; no answer since the last connection";

describe("the driver's connection log", () => {
  it("says 'connected' at info once per outage, however often a silent device is reconnected", async () => {
    const bank = new RegisterBank({ coils: 8, discreteInputs: 8, holdingRegisters: 8, inputRegisters: 8 });
    const server = new ModbusTcpSimServer({ port: 0, units: bank });
    const { port } = await server.start();
    cleanups.push(() => server.stop());
    const { model } = loadConfigText(`
version: 1
cell: { id: log }
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4 }
devices:
  d:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 50
    reconnect: { min_ms: 10, max_ms: 20 }
    points:
      a: { address: "di:0" }
`);
    const d = model.devices[0]!;
    if (d.config.protocol !== "modbus-tcp") throw new Error("modbus-tcp expected");
    const mem = memoryLog("debug");
    const driver = new ModbusTcpDriver("d", d.config, [...model.points], systemClock, mem.log);
    cleanups.push(() => driver.stop());
    await driver.start();
    const sink = { put: (): void => undefined };
    const statuses: string[] = [];
    const read = (): Promise<ReadOutcome> =>
      new Promise((resolve) =>
        driver.readDirect(sink, (o) => {
          statuses.push(o.ok ? "good" : o.status);
          resolve(o);
        }),
      );
    const count = (msg: string, level: number): number => mem.lines.filter((l) => l.msg === msg && l.level === level).length;
    /** Reads every 10 ms until `cond` holds (5 s at most). */
    const readUntil = async (cond: () => boolean, what: string): Promise<void> => {
      const end = performance.now() + 5000;
      while (!cond()) {
        if (performance.now() > end) throw new Error(`not within 5 s: ${what}`);
        await read();
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    await readUntil(() => driver.stats().ok > 0, "a first answer");
    expect(count(CONNECTED, 30)).toBe(1);

    // the device stops answering but keeps accepting connections: the driver reconnects after its timeouts
    server.faults.set({ kind: "noAnswer" });
    statuses.length = 0;
    await readUntil(() => driver.stats().reconnects >= 3, "three reconnects");
    // and its points say why all along: bad_timeout, not bad_no_communication between the reconnects
    expect(new Set(statuses)).toEqual(new Set(["bad_timeout"]));
    // the first reconnect follows a connection the device answered on: news, once; the others are not
    expect(count(CONNECTED, 30)).toBe(2);
    expect(count(RECONNECTED, 20)).toBeGreaterThanOrEqual(2); // debug

    // it answers again, then falls silent again: the next connection after an answer is news
    server.faults.clear();
    const ok = driver.stats().ok;
    await readUntil(() => driver.stats().ok > ok, "answers again");
    const reconnects = driver.stats().reconnects;
    server.faults.set({ kind: "noAnswer" });
    await readUntil(() => driver.stats().reconnects > reconnects + 2, "reconnects after the answers");
    expect(count(CONNECTED, 30)).toBe(3);
  });
});
