/**
 * The driver's callback read (readDirect, poll.ts: the loop's hot path)
 * against its Observable read (the Promise path) over real sockets to the
 * simulator: for each situation, two drivers on two identical devices, one
 * read each way, must give the same outcome, the same values and the same
 * counters. Both plans: one request in flight (SequentialPoll), and both
 * requests at once (max_in_flight 2, PipelinedPoll).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { lastValueFrom } from "rxjs";
import { ModbusTcpSimServer, RegisterBank, type Fault } from "../../../simulators/modbus/index.js";
import { loadConfigText } from "../../../src/config/load.js";
import { ModbusTcpDriver } from "../../../src/drivers/modbus/driver.js";
import { DeviceRequester } from "../../../src/drivers/modbus/requester.js";
import type { ModbusTcpTransport } from "../../../src/drivers/modbus/transport-tcp.js";
import { systemClock } from "../../../src/infra/clock.js";
import { silentLogger } from "../../../src/infra/logger.js";
import type { ReadOutcome } from "../../../src/loop/device-port.js";
import type { Value } from "../../../src/core/sample.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Rig {
  server: ModbusTcpSimServer;
  port: number;
  bank: RegisterBank;
  driver: ModbusTcpDriver;
  values: Map<number, Value>;
  sink: { put(i: number, v: Value): void };
}

/** A device with a two-request plan (FC2 and FC4) and its driver, connected. */
async function rig(extra = ""): Promise<Rig> {
  const bank = new RegisterBank({ coils: 8, discreteInputs: 8, holdingRegisters: 8, inputRegisters: 8 });
  bank.setBit("di", 1, true);
  bank.setFloat32("ir", 0, 21.5);
  const server = new ModbusTcpSimServer({ port: 0, units: bank });
  const { port } = await server.start();
  cleanups.push(() => server.stop());
  const { model } = loadConfigText(`
version: 1
cell: { id: poll }
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4 }
devices:
  d:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 60
    reconnect: { min_ms: 5000, max_ms: 5000 }
${extra}
    points:
      a: { address: "di:0" }
      b: { address: "di:1" }
      level: { address: "ir:0:float32" }
`);
  const d = model.devices[0]!;
  if (d.config.protocol !== "modbus-tcp") throw new Error("modbus-tcp expected");
  const driver = new ModbusTcpDriver("d", d.config, [...model.points], systemClock, silentLogger());
  cleanups.push(() => driver.stop());
  await driver.start();
  await until(() => driver.connected, 2000, "the connection");
  const values = new Map<number, Value>();
  return { server, port, bank, driver, values, sink: { put: (i, v) => void values.set(i, v) } };
}

const direct = (r: Rig): Promise<ReadOutcome> => new Promise((resolve) => r.driver.readDirect(r.sink, resolve));
const observed = (r: Rig): Promise<ReadOutcome> => lastValueFrom(r.driver.read(r.sink));

/** Counters that must agree (the latency histogram aside). */
function counters(r: Rig): unknown {
  const { latency: _latency, ...s } = r.driver.stats();
  const link = (r.driver.link as ModbusTcpTransport).stats;
  return { ...s, link: { ...link, bytesIn: 0, bytesOut: 0 }, connected: r.driver.connected };
}

/** Every request sent has been answered or has failed. */
function settled(r: Rig): boolean {
  const s = r.driver.stats();
  const e = s.errors;
  return s.ok + e.timeout + e.exception + e.frame + e.closed + e.other >= s.requests;
}

async function both(setup: (r: Rig) => void, extra = ""): Promise<[ReadOutcome, ReadOutcome, Rig, Rig]> {
  const a = await rig(extra);
  const b = await rig(extra);
  setup(a);
  setup(b);
  const oa = await direct(a);
  const ob = await observed(b);
  // Both paths end the read at the first failure; with both requests in flight the other one may
  // still be due (its own timeout): compare the counters once every request has ended.
  await until(() => settled(a) && settled(b), 1000, "every request's end");
  // the same text but for the port in it
  expect(JSON.stringify(oa).replaceAll(String(a.port), "PORT")).toBe(JSON.stringify(ob).replaceAll(String(b.port), "PORT"));
  expect([...a.values]).toEqual([...b.values]);
  expect(counters(a)).toEqual(counters(b));
  return [oa, ob, a, b];
}

const PLANS: [string, string][] = [
  ["one request in flight", ""],
  ["both requests at once (max_in_flight 2)", "    max_in_flight: 2"],
];

for (const [plan, inFlight] of PLANS) {
  const extra = (more = ""): string => [inFlight, more].filter((x) => x !== "").join("\n");

  describe(`readDirect gives what read gives: ${plan}`, () => {
    it("good answers: every point, one request per function code, on callbacks (no Promise per request)", async () => {
      const viaPromise = vi.spyOn(DeviceRequester.prototype, "read");
      const viaCallback = vi.spyOn(DeviceRequester.prototype, "readPlanned");
      cleanups.push(() => {
        viaPromise.mockRestore();
        viaCallback.mockRestore();
      });
      const [o, , a] = await both(() => undefined, extra());
      expect(o).toEqual({ ok: true });
      expect([...a.values.values()]).toEqual([false, true, 21.5]);
      expect(a.driver.stats().requests).toBe(2);
      // the direct read went by callbacks; the Observable read (the other rig) by Promises
      expect(viaCallback).toHaveBeenCalledTimes(2);
      expect(viaPromise).toHaveBeenCalledTimes(2);
      // and again on the same (reused) poll
      a.bank.setBit("di", 0, true);
      expect(await direct(a)).toEqual({ ok: true });
      expect([...a.values.values()]).toEqual([true, true, 21.5]);
      expect(viaCallback).toHaveBeenCalledTimes(4);
      expect(viaPromise).toHaveBeenCalledTimes(2);
    });

    const faults: [string, Fault, number | undefined, string][] = [
      ["an exception", { kind: "exception", code: 2 }, undefined, "bad_device_failure"],
      ["a gateway exception", { kind: "exception", code: 0x0b }, undefined, "bad_no_communication"],
      ["no answer (timeout)", { kind: "noAnswer" }, undefined, "bad_timeout"],
      ["the second request unanswered (timeout)", { kind: "dropEvery", n: 2 }, undefined, "bad_timeout"],
      ["a malformed answer (frame error, connection dropped)", { kind: "malform", malformation: "byte_count_mismatch" }, 1, "bad_device_failure"],
    ];
    for (const [what, fault, count, status] of faults) {
      it(`${what}: the same failure`, async () => {
        const [o, , a] = await both((r) => r.server.faults.set(fault, count === undefined ? {} : { count }), extra());
        expect(o).toMatchObject({ ok: false, status });
        if (fault.kind === "malform") expect(a.driver.connected).toBe(false);
      });
    }

    it("busy answers retried within the budget: a good outcome, the retries counted", async () => {
      const [o, , a] = await both((r) => r.server.faults.set({ kind: "busy" }, { count: 1 }), extra("    busy_retry: { retries: 2, pause_ms: 2 }"));
      expect(o).toEqual({ ok: true });
      expect(a.driver.stats().busyRetries).toBe(1);
    });

    it("not connected, and stopped: the failure at once", async () => {
      const a = await rig(extra());
      a.server.faults.set({ kind: "noAnswer" });
      for (let i = 0; i < 3; i++) await direct(a); // three timeouts drop the connection
      expect(a.driver.connected).toBe(false);
      const o = await direct(a);
      // the device was dropped because it did not answer: its points stay bad_timeout until it is connected again
      expect(o).toMatchObject({ ok: false, status: "bad_timeout", error: `CELLIO_ERR_MODBUS_TIMEOUT: 127.0.0.1:${a.port} unit 1 FC2 0+2: no answer within 60 ms` });
      await a.driver.stop();
      expect(await direct(a)).toEqual({ ok: false, status: "bad_no_communication", error: "driver stopped" });
    });
  });
}

describe("PipelinedPoll: a failed poll's answers still due", () => {
  it("do not reach the next poll, which reads good values by the general path until they are in", async () => {
    const a = await rig("    max_in_flight: 2"); // timeout_ms 60
    const poll = (a.driver as unknown as { poll: { busy: boolean } }).poll;
    // the first request is answered with an exception (the poll fails at once), the second never (it times out)
    // (the most recent rule decides first: the exception takes the first request, the drop the second)
    a.server.faults.set({ kind: "noAnswer" }, { count: 1 });
    a.server.faults.set({ kind: "exception", code: 2 }, { count: 1 });
    const t0 = performance.now();
    expect(await direct(a)).toMatchObject({ ok: false, status: "bad_device_failure" });
    expect(performance.now() - t0).toBeLessThan(50); // not the timeout: the exception
    expect(poll.busy).toBe(true); // the second request is still due
    a.bank.setBit("di", 0, true);
    expect(await direct(a)).toEqual({ ok: true });
    expect([...a.values.values()]).toEqual([true, true, 21.5]);
    // the straggler times out into a poll that ignores it; then the callback poll again
    await until(() => !poll.busy, 1000, "the second request's timeout");
    a.bank.setBit("di", 0, false);
    expect(await direct(a)).toEqual({ ok: true });
    expect([...a.values.values()]).toEqual([false, true, 21.5]);
  });
});

describe("while the connection is down, the points keep the status of the failure that dropped it", () => {
  it("a malformed answer: bad_device_failure until the device is connected again", async () => {
    const a = await rig();
    a.server.faults.set({ kind: "malform", malformation: "byte_count_mismatch" }, { count: 1 });
    expect(await direct(a)).toMatchObject({ ok: false, status: "bad_device_failure" });
    expect(a.driver.connected).toBe(false);
    expect(await direct(a)).toMatchObject({ ok: false, status: "bad_device_failure" });
  });

  it("the device closes the connection: bad_no_communication", async () => {
    const a = await rig();
    expect(await direct(a)).toEqual({ ok: true });
    a.server.faults.disconnect();
    await until(() => !a.driver.connected, 2000, "the close");
    expect(await direct(a)).toMatchObject({ ok: false, status: "bad_no_communication" });
  });
});
