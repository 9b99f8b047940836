import { afterEach, describe, expect, it } from "vitest";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { type ControlServer, startControlServer } from "../../../simulators/modbus/control.js";
import { ModbusTcpSimServer } from "../../../simulators/modbus/tcp-server.js";
import { closeClient, exceptionOf, failureOf, tcpClient } from "./client.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  plc: ModbusTcpSimServer;
  plcPort: number;
  ctl: ControlServer;
  u1: RegisterBank;
  u2: RegisterBank;
}

async function setup(): Promise<Setup> {
  const u1 = new RegisterBank();
  const u2 = new RegisterBank();
  const plc = new ModbusTcpSimServer({
    port: 0,
    units: new Map([
      [1, u1],
      [2, u2],
    ]),
  });
  const { port: plcPort } = await plc.start();
  cleanups.push(() => plc.stop());
  const ctl = await startControlServer({ port: 0, targets: { plc } });
  cleanups.push(() => ctl.close());
  return { plc, plcPort, ctl, u1, u2 };
}

async function call(ctl: ControlServer, method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${ctl.port}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("control interface: values", () => {
  it("sets bits and typed registers that a Modbus master then reads", async () => {
    const { ctl, plcPort, u1, u2 } = await setup();
    expect((await call(ctl, "POST", "/set", { target: "plc", area: "di", address: 7, value: true })).status).toBe(200);
    await call(ctl, "POST", "/set", { target: "plc", unit: 2, area: "coil", address: 0, values: [1, 0, 1] });
    await call(ctl, "POST", "/set", { target: "plc", area: "ir", address: 10, value: 21.5, type: "float32", order: "CDAB" });
    await call(ctl, "POST", "/set", { target: "plc", area: "hr", address: 20, values: [-5, 6], type: "int16" });
    await call(ctl, "POST", "/set", { target: "plc", area: "hr", address: 30, value: "JOB7", type: "string", length: 4 });
    expect(u1.getBit("di", 7)).toBe(true);
    expect(u2.getBits("coil", 0, 3)).toEqual([true, false, true]);
    expect(u1.getFloat32("ir", 10, "CDAB")).toBe(21.5);
    expect(u1.getRegisters("hr", 20, 2)).toEqual([0xfffb, 6]);
    expect(u1.getString("hr", 30, 4)).toBe("JOB7");
    const c = await tcpClient(plcPort);
    cleanups.push(() => closeClient(c));
    expect((await c.readDiscreteInputs(7, 1)).data[0]).toBe(true);
    expect((await c.readHoldingRegisters(20, 2)).data).toEqual([0xfffb, 6]);
  });

  it("gets values with types", async () => {
    const { ctl, u1, u2 } = await setup();
    u1.setBits("coil", 3, [true, true]);
    u1.setInt32("hr", 4, -70000);
    u1.setInt32("hr", 6, 5);
    u2.setFloat32("ir", 0, 1.5, "DCBA");
    u1.setString("hr", 40, "AB", 2);
    expect((await call(ctl, "GET", "/get?target=plc&area=coil&address=2&count=3")).json).toEqual({ values: [false, true, true] });
    expect((await call(ctl, "GET", "/get?target=plc&area=hr&address=4&count=2&type=int32")).json).toEqual({ values: [-70000, 5] });
    expect((await call(ctl, "GET", "/get?target=plc&unit=2&area=ir&address=0&type=float32&order=DCBA")).json).toEqual({ values: [1.5] });
    expect((await call(ctl, "GET", "/get?target=plc&area=hr&address=40&type=string&length=2")).json).toEqual({ values: ["AB"] });
    expect((await call(ctl, "GET", "/get?target=plc&area=hr&address=4")).json).toEqual({ values: [0xfffe] });
  });
});

describe("control interface: faults", () => {
  it("sets a fault for one unit, reports it in /state, and clears it", async () => {
    const { ctl, plcPort } = await setup();
    const r = await call(ctl, "POST", "/fault", { target: "plc", unit: 2, fault: { kind: "busy" } });
    expect(r.status).toBe(200);
    expect(r.json.active).toEqual([{ fault: { kind: "busy" }, unit: 2 }]);
    const c1 = await tcpClient(plcPort, 1);
    const c2 = await tcpClient(plcPort, 2);
    cleanups.push(() => closeClient(c1), () => closeClient(c2));
    expect((await c1.readHoldingRegisters(0, 1)).data).toEqual([0]);
    expect(await exceptionOf(c2.readHoldingRegisters(0, 1))).toBe(6);

    const state = (await call(ctl, "GET", "/state")).json as { targets: Record<string, { units: number[]; faults: unknown[]; stats: { requests: number } }> };
    expect(state.targets.plc!.units).toEqual([1, 2]);
    expect(state.targets.plc!.faults).toHaveLength(1);
    expect(state.targets.plc!.stats.requests).toBe(2);

    expect((await call(ctl, "POST", "/clear", { target: "plc" })).status).toBe(200);
    expect((await c2.readHoldingRegisters(0, 1)).data).toEqual([0]);
  });

  it("sets a counted fault and triggers a disconnect", async () => {
    const { ctl, plc, plcPort } = await setup();
    const c = await tcpClient(plcPort);
    cleanups.push(() => closeClient(c));
    await call(ctl, "POST", "/fault", { target: "plc", count: 1, fault: { kind: "noAnswer" } });
    expect((await failureOf(c.readHoldingRegisters(0, 1))).message).toMatch(/timed out/i);
    expect((await c.readHoldingRegisters(0, 1)).data).toEqual([0]);
    const closed = new Promise<void>((resolve) => c.on("close", () => resolve()));
    await call(ctl, "POST", "/fault", { target: "plc", fault: { kind: "disconnect" } });
    await closed;
    expect(plc.stats.activeConnections).toBe(0);
  });

  it("clears by kind on every target when no target is given", async () => {
    const { ctl, plc } = await setup();
    plc.faults.set({ kind: "busy" });
    plc.faults.set({ kind: "latency", ms: 5 });
    expect((await call(ctl, "POST", "/clear", { kind: "latency" })).status).toBe(200);
    expect((await call(ctl, "POST", "/clear", { kind: "disconnect" })).status).toBe(400);
    expect(plc.faults.active().map((a) => a.fault.kind)).toEqual(["busy"]);
    await call(ctl, "POST", "/clear");
    expect(plc.faults.active()).toEqual([]);
  });
});

describe("control interface: errors", () => {
  it("answers 400 with a message for bad requests", async () => {
    const { ctl } = await setup();
    const cases: [string, string, unknown, RegExp][] = [
      ["POST", "/set", "{not json", /bad JSON/],
      ["POST", "/set", { target: "robot", area: "hr", address: 0, value: 1 }, /unknown target "robot"/],
      ["POST", "/set", { target: "plc", area: "xx", address: 0, value: 1 }, /area/],
      ["POST", "/set", { target: "plc", area: "hr", address: 0 }, /exactly one of value or values/],
      ["POST", "/set", { target: "plc", area: "coil", address: 0, value: 2 }, /bit value/],
      ["POST", "/set", { target: "plc", area: "hr", address: 65535, value: 1, type: "float32" }, /outside the bank/],
      ["POST", "/set", { target: "plc", unit: 9, area: "hr", address: 0, value: 1 }, /no unit 9/],
      ["POST", "/fault", { target: "plc", fault: { kind: "exception", code: 12 } }, /code/],
      ["POST", "/fault", { target: "plc", fault: { kind: "explode" } }, /kind/],
      ["GET", "/get?target=plc&area=hr", undefined, /address/],
    ];
    for (const [method, path, body, msg] of cases) {
      const r = await call(ctl, method as "GET" | "POST", path, body);
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(String(r.json.error)).toMatch(msg);
    }
  });

  it("answers 404 for unknown paths and 405 for wrong methods", async () => {
    const { ctl } = await setup();
    expect((await call(ctl, "GET", "/nope")).status).toBe(404);
    expect((await call(ctl, "GET", "/set")).status).toBe(405);
  });
});
