import { afterEach, describe, expect, it } from "vitest";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { FaultInjector, MALFORMATIONS, type Malformation } from "../../../simulators/modbus/faults.js";
import { ModbusTcpSimServer, type ModbusTcpSimOptions } from "../../../simulators/modbus/tcp-server.js";
import { type ModbusClient, closeClient, exceptionOf, failureOf, tcpClient } from "./client.js";
import { RawClient, mbap } from "./raw-client.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(opts: Partial<ModbusTcpSimOptions> = {}): Promise<{ server: ModbusTcpSimServer; port: number }> {
  const bank = new RegisterBank({ holdingRegisters: 100 });
  bank.setRegisters("hr", 0, [0x1234, 0x5678]);
  const server = new ModbusTcpSimServer({ port: 0, units: bank, ...opts });
  const { port } = await server.start();
  cleanups.push(() => server.stop());
  return { server, port };
}

async function client(port: number, unit = 1): Promise<ModbusClient> {
  const c = await tcpClient(port, unit);
  cleanups.push(() => closeClient(c));
  return c;
}

async function raw(port: number): Promise<RawClient> {
  const r = await RawClient.connect(port);
  cleanups.push(() => r.close());
  return r;
}

/** Read hr 0, 1 register, unit 1. */
const READ_HR0 = [0x03, 0x00, 0x00, 0x00, 0x01];

describe("timing faults", () => {
  it("latency delays the answer by at least the latency", async () => {
    const { server, port } = await serve();
    const c = await client(port);
    server.faults.set({ kind: "latency", ms: 60 }, { count: 1 });
    const t0 = performance.now();
    expect((await c.readHoldingRegisters(0, 1)).data).toEqual([0x1234]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
  });

  it("noAnswer makes the client time out, then the device answers again", async () => {
    const { server, port } = await serve();
    const c = await client(port);
    server.faults.set({ kind: "noAnswer" }, { count: 1 });
    expect((await failureOf(c.readHoldingRegisters(0, 1))).message).toMatch(/timed out/i);
    expect((await c.readHoldingRegisters(0, 1)).data).toEqual([0x1234]);
    expect(server.stats.dropped).toBe(1);
  });

  it("keeps responses of one connection in order under latency with jitter", async () => {
    const { server, port } = await serve();
    server.faults.set({ kind: "latency", ms: 2, jitterMs: 30 });
    const r = await raw(port);
    const tids = [1, 2, 3, 4, 5, 6];
    r.send(Buffer.concat(tids.map((t) => mbap(t, 1, READ_HR0))));
    const got: number[] = [];
    for (const _ of tids) got.push((await r.read(11)).readUInt16BE(0));
    expect(got).toEqual(tids);
  });

  it("dropEvery answers only some requests", async () => {
    const { server, port } = await serve();
    server.faults.set({ kind: "dropEvery", n: 2 });
    const r = await raw(port);
    r.send(Buffer.concat([1, 2, 3, 4, 5].map((t) => mbap(t, 1, READ_HR0))));
    const all = await r.read(33);
    expect((await r.collect(30)).length).toBe(0);
    expect([0, 11, 22].map((o) => all.readUInt16BE(o))).toEqual([1, 3, 5]);
  });
});

describe("exception faults", () => {
  it("busy answers exception 06", async () => {
    const { server, port } = await serve();
    const c = await client(port);
    server.faults.set({ kind: "busy" });
    expect(await exceptionOf(c.readHoldingRegisters(0, 1))).toBe(6);
    expect(await exceptionOf(c.writeRegister(0, 1))).toBe(6);
    expect(server.bank().getRegister("hr", 0)).toBe(0x1234); // a busy device did not write
  });

  it("exception answers the given code for the next N requests", async () => {
    const { server, port } = await serve();
    const c = await client(port);
    server.faults.set({ kind: "exception", code: 4 }, { count: 2 });
    expect(await exceptionOf(c.readHoldingRegisters(0, 1))).toBe(4);
    expect(await exceptionOf(c.readCoils(0, 1))).toBe(4);
    expect((await c.readHoldingRegisters(0, 1)).data).toEqual([0x1234]);
  });

  it("applies a fault to one unit id only", async () => {
    const { server, port } = await serve({ units: new Map([[1, new RegisterBank()], [2, new RegisterBank()]]) });
    server.faults.set({ kind: "noAnswer" }, { unit: 2 });
    expect((await (await client(port, 1)).readHoldingRegisters(0, 1)).data).toEqual([0]);
    expect((await failureOf((await client(port, 2)).readHoldingRegisters(0, 1))).message).toMatch(/timed out/i);
  });
});

describe("connection faults", () => {
  it("disconnect() closes every client socket", async () => {
    const { server, port } = await serve();
    const c = await client(port);
    const r = await raw(port);
    await c.readHoldingRegisters(0, 1);
    const closed = new Promise<void>((resolve) => c.on("close", () => resolve()));
    server.faults.disconnect();
    await closed;
    await r.waitClosed();
    expect(c.isOpen).toBe(false);
    expect(server.stats.activeConnections).toBe(0);
  });

  it("refuseConnections closes new sockets at once, for the next N", async () => {
    const { server, port } = await serve();
    server.faults.set({ kind: "refuseConnections" }, { count: 1 });
    const first = await raw(port);
    await first.waitClosed();
    const second = await raw(port);
    second.send(mbap(7, 1, READ_HR0));
    expect((await second.read(11)).toString("hex")).toBe("000700000005010302" + "1234");
    expect(server.stats.refused).toBe(1);
  });
});

describe("frame faults (exact bytes)", () => {
  // The correct answer to tid 0x0101, unit 1, read hr 0 x1:
  // 0101 0000 0005 01 | 03 02 1234
  const expected: Record<Malformation, string> = {
    wrong_transaction_id: "0102 0000 0005 01 03021234",
    wrong_protocol_id: "0101 0001 0005 01 03021234",
    wrong_unit_id: "0101 0000 0005 02 03021234",
    wrong_function_code: "0101 0000 0005 01 04021234",
    length_too_long: "0101 0000 0006 01 03021234",
    length_too_short: "0101 0000 0004 01 03021234",
    truncated: "0101 0000 0005 01 030212",
    overlong: "0101 0000 0006 01 0302123400",
    byte_count_mismatch: "0101 0000 0005 01 03031234",
    bad_crc: "0101 0000 0005 01 03021234",
  };

  for (const m of MALFORMATIONS) {
    it(`${m} produces exactly the malformed frame, once`, async () => {
      const { server, port } = await serve();
      server.faults.set({ kind: "malform", malformation: m }, { count: 1 });
      const r = await raw(port);
      r.send(mbap(0x0101, 1, READ_HR0));
      const want = expected[m].replace(/ /g, "");
      expect((await r.read(want.length / 2)).toString("hex")).toBe(want);
      expect((await r.collect(20)).length).toBe(0);
      r.send(mbap(0x0102, 1, READ_HR0));
      expect((await r.read(11)).toString("hex")).toBe("010200000005010302" + "1234");
    });
  }

  it("byte_count_mismatch leaves a response without a byte count unchanged", async () => {
    const { server, port } = await serve();
    server.faults.set({ kind: "malform", malformation: "byte_count_mismatch" });
    const r = await raw(port);
    r.send(mbap(3, 1, [0x06, 0x00, 0x05, 0x00, 0x2a]));
    expect((await r.read(12)).toString("hex")).toBe("000300000006010600050" + "02a");
  });

  it("garbage answers random bytes of the frame's length", async () => {
    const bank = new RegisterBank({ holdingRegisters: 10 });
    const faults = new FaultInjector({ random: () => 0.5 });
    const { port } = await serve({ units: bank, faults });
    faults.set({ kind: "garbage" }, { count: 1 });
    const r = await raw(port);
    r.send(mbap(1, 1, [0x03, 0x00, 0x00, 0x00, 0x02]));
    expect((await r.read(13)).toString("hex")).toBe("80".repeat(13));
    expect((await r.collect(20)).length).toBe(0);
  });

  it("a modbus-serial master sees a malformed frame as a failure", async () => {
    const { server, port } = await serve();
    const c = await client(port);
    server.faults.set({ kind: "malform", malformation: "wrong_function_code" }, { count: 1 });
    await failureOf(c.readHoldingRegisters(0, 1));
    server.faults.set({ kind: "malform", malformation: "wrong_transaction_id" }, { count: 1 });
    expect((await failureOf(c.readHoldingRegisters(0, 1))).message).toMatch(/timed out/i);
  });
});
