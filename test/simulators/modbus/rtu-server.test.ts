/**
 * The RTU slave on a real pseudo-terminal pair (socat): the simulator opens
 * one end, modbus-serial's RTU master (or a raw serialport) the other.
 */
import { afterEach, describe, expect, it } from "vitest";
import { SerialPort } from "serialport";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { encodeRtuFrame } from "../../../simulators/modbus/rtu.js";
import { ModbusRtuSimServer } from "../../../simulators/modbus/rtu-server.js";
import { hasSocat, openPtyPair } from "../../helpers/pty.js";
import { ModbusRTU, type ModbusClient, closeClient, exceptionOf, failureOf } from "./client.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SOCAT = hasSocat();
if (!SOCAT) console.warn("RTU integration tests skipped: socat is not on PATH (apt-get install socat)");

async function setup(units: Map<number, RegisterBank> | RegisterBank): Promise<{ server: ModbusRtuSimServer; masterPath: string }> {
  const pty = await openPtyPair();
  cleanups.push(() => pty.close());
  const server = new ModbusRtuSimServer({ path: pty.a, baudRate: 19200, parity: "even", units });
  await server.start();
  cleanups.push(() => server.stop());
  return { server, masterPath: pty.b };
}

async function master(path: string, unit: number): Promise<ModbusClient> {
  const c = new ModbusRTU();
  await c.connectRTUBuffered(path, { baudRate: 19200, parity: "even" });
  c.setID(unit);
  c.setTimeout(1000);
  cleanups.push(() => closeClient(c));
  return c;
}

interface RawPort {
  port: SerialPort;
  /** Exactly `n` bytes, waiting up to `timeoutMs` for them. */
  read(n: number, timeoutMs?: number): Promise<Buffer>;
  /** Everything received within `ms` (for "no answer" checks). */
  collect(ms: number): Promise<Buffer>;
}

async function rawPort(path: string): Promise<RawPort> {
  const port = new SerialPort({ path, baudRate: 19200, parity: "even", autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  let buf = Buffer.alloc(0);
  port.on("data", (c: Buffer) => (buf = Buffer.concat([buf, c])));
  cleanups.push(() => new Promise<void>((resolve) => port.close(() => resolve())));
  const cut = (n: number): Buffer => {
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return Buffer.from(out);
  };
  return {
    port,
    async read(n, timeoutMs = 1000) {
      const deadline = performance.now() + timeoutMs;
      while (buf.length < n && performance.now() < deadline) await sleep(5);
      return cut(n);
    },
    async collect(ms) {
      await sleep(ms);
      return cut(buf.length);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex = (b: Buffer): string => b.toString("hex");

describe.skipIf(!SOCAT)("ModbusRtuSimServer on a pty pair", () => {
  it("serves two unit ids on one bus; a unit with noAnswer is a dead unit", async () => {
    const u1 = new RegisterBank();
    const u2 = new RegisterBank();
    u1.setRegisters("hr", 0, [101, 102]);
    u2.setRegisters("hr", 0, [201, 202]);
    u2.setBits("di", 3, [true]);
    const { server, masterPath } = await setup(
      new Map([
        [1, u1],
        [2, u2],
      ]),
    );
    const c = await master(masterPath, 1);
    expect((await c.readHoldingRegisters(0, 2)).data).toEqual([101, 102]);
    c.setID(2);
    expect((await c.readHoldingRegisters(0, 2)).data).toEqual([201, 202]);
    expect((await c.readDiscreteInputs(3, 1)).data[0]).toBe(true);
    await c.writeRegisters(10, [7, 8]);
    await c.writeCoil(4, true);
    expect(u2.getRegisters("hr", 10, 2)).toEqual([7, 8]);
    expect(u2.getBit("coil", 4)).toBe(true);
    expect(u1.getRegisters("hr", 10, 2)).toEqual([0, 0]);

    server.faults.set({ kind: "noAnswer" }, { unit: 2 });
    expect((await failureOf(c.readHoldingRegisters(0, 1))).message).toMatch(/timed out/i);
    c.setID(1);
    expect((await c.readHoldingRegisters(0, 1)).data).toEqual([101]);
    expect(server.stats.dropped).toBe(1);
  });

  it("answers exceptions, busy and latency like the TCP server", async () => {
    const { server, masterPath } = await setup(new RegisterBank({ holdingRegisters: 10 }));
    const c = await master(masterPath, 1);
    expect(await exceptionOf(c.readHoldingRegisters(9, 2))).toBe(2);
    expect(await exceptionOf(c.readHoldingRegisters(0, 126))).toBe(3);
    server.faults.set({ kind: "busy" }, { count: 1 });
    expect(await exceptionOf(c.readHoldingRegisters(0, 1))).toBe(6);
    server.faults.set({ kind: "latency", ms: 80 }, { count: 1 });
    const t0 = performance.now();
    await c.readHoldingRegisters(0, 1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
  });

  it("ignores frames with a bad CRC and frames for other units, and answers the next good frame", async () => {
    const bank = new RegisterBank({ holdingRegisters: 10 });
    bank.setRegister("hr", 2, 0xcafe);
    const { server, masterPath } = await setup(bank);
    const raw = await rawPort(masterPath);
    const req = encodeRtuFrame(1, Buffer.from([0x03, 0x00, 0x02, 0x00, 0x01]));
    const bad = Buffer.from(req);
    bad[6]! ^= 0x01;
    raw.port.write(bad);
    expect(hex(await raw.collect(100))).toBe("");
    raw.port.write(encodeRtuFrame(7, Buffer.from([0x03, 0x00, 0x02, 0x00, 0x01])));
    expect(hex(await raw.collect(100))).toBe("");
    raw.port.write(req);
    expect(hex(await raw.read(7))).toBe(hex(encodeRtuFrame(1, Buffer.from([0x03, 0x02, 0xca, 0xfe]))));
    expect(server.stats).toMatchObject({ badFrames: 1, unknownUnit: 1, responses: 1 });
  });

  it("executes broadcast writes (unit 0) on every unit without answering", async () => {
    const u1 = new RegisterBank({ holdingRegisters: 10 });
    const u2 = new RegisterBank({ holdingRegisters: 10 });
    const { masterPath } = await setup(
      new Map([
        [1, u1],
        [2, u2],
      ]),
    );
    const raw = await rawPort(masterPath);
    raw.port.write(encodeRtuFrame(0, Buffer.from([0x06, 0x00, 0x05, 0x00, 0x2a])));
    expect(hex(await raw.collect(100))).toBe("");
    expect([u1.getRegister("hr", 5), u2.getRegister("hr", 5)]).toEqual([42, 42]);
  });

  it("sends a frame with a bad CRC when told to", async () => {
    const bank = new RegisterBank({ holdingRegisters: 10 });
    bank.setRegister("hr", 0, 0x0102);
    const { server, masterPath } = await setup(bank);
    server.faults.set({ kind: "malform", malformation: "bad_crc" }, { count: 1 });
    const raw = await rawPort(masterPath);
    raw.port.write(encodeRtuFrame(1, Buffer.from([0x03, 0x00, 0x00, 0x00, 0x01])));
    const good = encodeRtuFrame(1, Buffer.from([0x03, 0x02, 0x01, 0x02]));
    const got = await raw.read(7);
    expect(hex(got.subarray(0, 5))).toBe(hex(good.subarray(0, 5)));
    expect(got.readUInt16LE(5)).toBe(good.readUInt16LE(5) ^ 0xffff);
  });
});
