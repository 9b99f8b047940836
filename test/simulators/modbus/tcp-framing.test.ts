import { afterEach, describe, expect, it, vi } from "vitest";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { encodeRtuFrame } from "../../../simulators/modbus/rtu.js";
import { ModbusTcpSimServer, type ModbusTcpSimOptions } from "../../../simulators/modbus/tcp-server.js";
import { closeClient, failureOf, rtuOverTcpClient, tcpClient } from "./client.js";
import { RawClient, mbap } from "./raw-client.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
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

async function raw(port: number): Promise<RawClient> {
  const r = await RawClient.connect(port);
  cleanups.push(() => r.close());
  return r;
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));
const READ_HR0_2 = [0x03, 0x00, 0x00, 0x00, 0x02];
const answer = (tid: number): string => `${tid.toString(16).padStart(4, "0")}00000007010304` + "12345678";

describe("MBAP framing", () => {
  it("reassembles a frame sent one byte per TCP segment", async () => {
    const { port } = await serve();
    const r = await raw(port);
    const req = mbap(0x0a0b, 1, READ_HR0_2);
    for (const b of req) {
      r.send([b]);
      await tick(2);
    }
    expect((await r.read(13)).toString("hex")).toBe(answer(0x0a0b));
  });

  it("answers several frames in one chunk, and a frame split over the next chunk", async () => {
    const { server, port } = await serve();
    const r = await raw(port);
    const frames = Buffer.concat([1, 2, 3, 4].map((t) => mbap(t, 1, READ_HR0_2)));
    r.send(frames.subarray(0, 3 * 12 + 5));
    expect((await r.read(39)).toString("hex")).toBe(answer(1) + answer(2) + answer(3));
    await tick();
    expect(server.stats.responses).toBe(3);
    r.send(frames.subarray(3 * 12 + 5));
    expect((await r.read(13)).toString("hex")).toBe(answer(4));
  });

  it("drops a frame whose protocol id is not 0 and answers the next", async () => {
    const { server, port } = await serve();
    const r = await raw(port);
    const bad = mbap(1, 1, READ_HR0_2);
    bad.writeUInt16BE(5, 2);
    r.send(Buffer.concat([bad, mbap(2, 1, READ_HR0_2)]));
    expect((await r.read(13)).toString("hex")).toBe(answer(2));
    expect(server.stats.badFrames).toBe(1);
  });

  it("closes the connection on an impossible length field", async () => {
    const { port } = await serve();
    const r = await raw(port);
    r.send([0, 1, 0, 0, 0x01, 0x00, 1, 3, 0, 0, 0, 1]); // length 256
    await r.waitClosed();
  });
});

describe("synchronous answers", () => {
  it("answers 1,000 sequential requests on one connection without any timer", async () => {
    const { server, port } = await serve();
    const r = await raw(port);
    // Wait for each answer by 'data' events only, so any setTimeout call would be the server's.
    let got = 0;
    let wake: (() => void) | undefined;
    r.socket.removeAllListeners("data");
    r.socket.on("data", (c: Buffer) => {
      got += c.length;
      wake?.();
    });
    const spy = vi.spyOn(globalThis, "setTimeout");
    for (let i = 0; i < 1000; i++) {
      const want = (i + 1) * 13;
      r.send(mbap(i, 1, READ_HR0_2));
      while (got < want) await new Promise<void>((resolve) => (wake = resolve));
    }
    expect(spy).not.toHaveBeenCalled();
    expect(server.stats).toMatchObject({ requests: 1000, responses: 1000 });
  });

  it("serves 1,000 sequential modbus-serial requests", async () => {
    const { server, port } = await serve();
    const c = await tcpClient(port);
    cleanups.push(() => closeClient(c));
    for (let i = 0; i < 1000; i++) await c.readHoldingRegisters(0, 2);
    expect(server.stats.responses).toBe(1000);
  });
});

describe("RTU over TCP (framing: rtu)", () => {
  it("serves several units to a modbus-serial RTU-over-TCP master", async () => {
    const u1 = new RegisterBank({ holdingRegisters: 10 });
    const u2 = new RegisterBank({ holdingRegisters: 10 });
    u1.setRegister("hr", 0, 11);
    const { server, port } = await serve({ framing: "rtu", units: new Map([[1, u1], [2, u2]]) });
    const c1 = await rtuOverTcpClient(port, 1);
    cleanups.push(() => closeClient(c1));
    expect((await c1.readHoldingRegisters(0, 1)).data).toEqual([11]);
    c1.setID(2);
    await c1.writeRegisters(3, [4, 5]);
    expect(u2.getRegisters("hr", 3, 2)).toEqual([4, 5]);
    server.faults.set({ kind: "noAnswer" }, { unit: 2 });
    expect((await failureOf(c1.readHoldingRegisters(0, 1))).message).toMatch(/timed out/i);
    c1.setID(1);
    expect((await c1.readHoldingRegisters(0, 1)).data).toEqual([11]);
  });

  it("ignores a frame with a bad CRC and answers split RTU frames", async () => {
    // A long silence, so that a loaded machine cannot turn the split into a line silence.
    const { server, port } = await serve({ framing: "rtu", rtuSilenceMs: 2000 });
    const r = await raw(port);
    const req = encodeRtuFrame(1, Buffer.from(READ_HR0_2));
    const bad = Buffer.from(req);
    bad[7]! ^= 0x55;
    r.send(bad);
    expect((await r.collect(30)).length).toBe(0);
    r.send(req.subarray(0, 3));
    await tick(2);
    r.send(req.subarray(3));
    expect((await r.read(9)).toString("hex")).toBe(encodeRtuFrame(1, Buffer.from("030412345678", "hex")).toString("hex"));
    expect(server.stats.badFrames).toBe(1);
  });

  it("answers exception 01 to an unknown function code once the line goes silent", async () => {
    const { port } = await serve({ framing: "rtu", rtuSilenceMs: 10 });
    const r = await raw(port);
    r.send(encodeRtuFrame(1, Buffer.from([0x41, 0x01, 0x02])));
    expect((await r.read(5)).toString("hex")).toBe(encodeRtuFrame(1, Buffer.from([0xc1, 0x01])).toString("hex"));
  });
});
