import { afterEach, describe, expect, it } from "vitest";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { ModbusTcpSimServer, type ModbusTcpSimOptions } from "../../../simulators/modbus/tcp-server.js";
import { type ModbusClient, closeClient, exceptionOf, failureOf, readWriteRegisters, tcpClient } from "./client.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(opts: Partial<ModbusTcpSimOptions> = {}): Promise<{ server: ModbusTcpSimServer; port: number }> {
  const server = new ModbusTcpSimServer({ port: 0, units: new RegisterBank(), ...opts });
  const { port } = await server.start();
  cleanups.push(() => server.stop());
  return { server, port };
}

async function client(port: number, unit = 1): Promise<ModbusClient> {
  const c = await tcpClient(port, unit);
  cleanups.push(() => closeClient(c));
  return c;
}

describe("ModbusTcpSimServer function codes", () => {
  it("reads every area (FC 1, 2, 3, 4)", async () => {
    const bank = new RegisterBank();
    bank.setBits("coil", 10, [true, false, true]);
    bank.setBits("di", 20, [false, true]);
    bank.setRegisters("hr", 100, [1, 2, 65535]);
    bank.setFloat32("ir", 200, 21.5);
    const { port } = await serve({ units: bank });
    const c = await client(port);
    expect((await c.readCoils(10, 3)).data.slice(0, 3)).toEqual([true, false, true]);
    expect((await c.readDiscreteInputs(20, 2)).data.slice(0, 2)).toEqual([false, true]);
    expect((await c.readHoldingRegisters(100, 3)).data).toEqual([1, 2, 65535]);
    expect((await c.readInputRegisters(200, 2)).buffer.readFloatBE()).toBe(21.5);
  });

  it("writes coils and registers (FC 5, 6, 15, 16) and fires onWrite", async () => {
    const bank = new RegisterBank();
    const writes: unknown[] = [];
    bank.onWrite((area, addr, count) => writes.push([area, addr, count]));
    const { port } = await serve({ units: bank });
    const c = await client(port);
    await c.writeCoil(5, true);
    await c.writeRegister(6, 0xbeef);
    await c.writeCoils(30, [true, true, false, true]);
    await c.writeRegisters(40, [10, 20, 30]);
    expect(bank.getBit("coil", 5)).toBe(true);
    expect(bank.getRegister("hr", 6)).toBe(0xbeef);
    expect(bank.getBits("coil", 30, 4)).toEqual([true, true, false, true]);
    expect(bank.getRegisters("hr", 40, 3)).toEqual([10, 20, 30]);
    expect(writes).toEqual([
      ["coil", 5, 1],
      ["hr", 6, 1],
      ["coil", 30, 4],
      ["hr", 40, 3],
    ]);
  });

  it("reads and writes in one request (FC 23)", async () => {
    const bank = new RegisterBank();
    bank.setRegisters("hr", 0, [7, 8, 9]);
    const { port } = await serve({ units: bank });
    const c = await client(port);
    expect(await readWriteRegisters(c, 0, 3, 1, [80])).toEqual([7, 80, 9]);
  });

  it("answers exception 02 outside the bank and 03 for bad quantities", async () => {
    const { port } = await serve({ units: new RegisterBank({ holdingRegisters: 100, coils: 100 }) });
    const c = await client(port);
    expect(await exceptionOf(c.readHoldingRegisters(99, 2))).toBe(2);
    expect(await exceptionOf(c.writeCoil(100, true))).toBe(2);
    expect(await exceptionOf(c.readHoldingRegisters(0, 126))).toBe(3);
    expect(await exceptionOf(c.readCoils(0, 2001))).toBe(3);
    expect((await c.readHoldingRegisters(0, 100)).data).toHaveLength(100);
  });
});

describe("ModbusTcpSimServer unit ids", () => {
  it("serves several units from one server, each from its own bank", async () => {
    const u1 = new RegisterBank({ holdingRegisters: 10 });
    const u2 = new RegisterBank({ holdingRegisters: 10 });
    u1.setRegister("hr", 0, 111);
    u2.setRegister("hr", 0, 222);
    const { server, port } = await serve({ units: new Map([[1, u1], [2, u2]]) });
    expect((await (await client(port, 1)).readHoldingRegisters(0, 1)).data).toEqual([111]);
    expect((await (await client(port, 2)).readHoldingRegisters(0, 1)).data).toEqual([222]);
    expect(server.bank(2)).toBe(u2);
    expect(server.unitIds()).toEqual([1, 2]);
    expect(() => server.bank(3)).toThrow(/no unit 3/);
  });

  it("does not answer an unknown unit by default", async () => {
    const { server, port } = await serve({ units: new Map([[1, new RegisterBank()]]) });
    const err = await failureOf((await client(port, 9)).readHoldingRegisters(0, 1));
    expect(err.message).toMatch(/timed out/i);
    expect(server.stats.unknownUnit).toBe(1);
  });

  it("answers exception 0x0B for an unknown unit when configured as a gateway", async () => {
    const { port } = await serve({ units: new Map([[1, new RegisterBank()]]), unknownUnit: "gateway_exception" });
    expect(await exceptionOf((await client(port, 9)).readHoldingRegisters(0, 1))).toBe(0x0b);
  });

  it("answers any unit id with a single bank", async () => {
    const bank = new RegisterBank();
    bank.setRegister("hr", 3, 33);
    const { port } = await serve({ units: bank });
    expect((await (await client(port, 200)).readHoldingRegisters(3, 1)).data).toEqual([33]);
  });
});

describe("ModbusTcpSimServer lifecycle and stats", () => {
  it("counts connections, requests, responses and exceptions, and stops", async () => {
    const { server, port } = await serve({ units: new RegisterBank({ holdingRegisters: 10 }) });
    const c = await client(port);
    await c.readHoldingRegisters(0, 1);
    await exceptionOf(c.readHoldingRegisters(9, 2));
    expect(server.stats).toMatchObject({ connections: 1, activeConnections: 1, requests: 2, responses: 2, exceptions: 1 });
    await server.stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(c.isOpen).toBe(false);
    expect(server.stats.activeConnections).toBe(0);
  });
});
