/**
 * Every kind of point over the wire, as a node-opcua client sees it: the
 * variable's DataType attribute and the value's Variant type follow the
 * register's encoding (UInt16, Int16, UInt32 above 2^31, Int32, Int64,
 * UInt64, Float, Double, String, Boolean), analog points carry
 * EngineeringUnits, EURange and InstrumentRange, and each value its
 * StatusCode and the source timestamp of the read. Writes must carry the
 * variable's own type and fit the register.
 *
 * A real CellApp scans a Modbus TCP simulator; one engineer session with
 * SignAndEncrypt.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AttributeIds, BrowseDirection, DataType, TimestampsToReturn, Variant, VariantArrayType, type ClientSession, type DataValue, type NodeId } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opcuaConfigSchema } from "../../../src/north/opcua-server/config.js";
import { hashPassword } from "../../../src/north/opcua-server/password.js";
import { CellOpcuaServer, cellViewOf } from "../../../src/north/opcua-server/server.js";
import { SimDevice, Teardown, startCell, type RunningCell } from "../../integration/helpers.js";
import { StatusCodes, cellNamespace, clientPki, connect, memoryLog, readValue, trust, waitUntil, write, type Connected, type Ns } from "./helpers.js";

const t = new Teardown();
let io: SimDevice;
let cell: RunningCell;
let server: CellOpcuaServer;
let eng: Connected;
let ns: Ns;

const yaml = (port: number): string => `
version: 1
cell: { id: types }
cycle: { period_ms: 50, input_budget_ms: 20, output_budget_ms: 20 }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 200
    stale_after_ms: 5000
    fail_after: 2
    points:
      flag:    { address: "di:0" }
      u16:     { address: "ir:0" }
      i16:     { address: "ir:1:int16" }
      u32:     { address: "ir:2:uint32", unit: ms }
      i32:     { address: "ir:4:int32" }
      i64:     { address: "ir:6:int64" }
      u64:     { address: "ir:10:uint64" }
      f32:     { address: "ir:14:float32", unit: bar }
      f64:     { address: "ir:16:float64", unit: mm }
      scaled:  { address: "ir:20:int16", unit: degC, scale: { gain: 0.1, offset: 0 } }
      text:    { address: "ir:21:string:8" }
      out_u16: { address: "hr:0", direction: output, safe: 0 }
      setpoint: { address: "hr:1", direction: output, safe: 0, unit: "%", scale: { gain: 0.1, offset: 0, clamp: { min: 0, max: 100 } } }
      out_i64: { address: "hr:4:int64", direction: output, safe: 0 }
`;

function words64(v: bigint): number[] {
  const u = BigInt.asUintN(64, v);
  return [3n, 2n, 1n, 0n].map((k) => Number((u >> (16n * k)) & 0xffffn));
}

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-opcua-types-"));
  t.add(() => rm(dir, { recursive: true, force: true }));
  io = await SimDevice.start(t);
  const b = io.bank;
  b.setBit("di", 0, true);
  b.setRegister("ir", 0, 65535);
  b.setInt16("ir", 1, -32768);
  b.setUInt32("ir", 2, 4_000_000_000);
  b.setInt32("ir", 4, -2_000_000_000);
  b.setRegisters("ir", 6, words64(-(2n ** 40n)));
  b.setRegisters("ir", 10, words64(2n ** 40n + 5n));
  b.setFloat32("ir", 14, 1.5);
  const f64 = Buffer.alloc(8);
  f64.writeDoubleBE(Math.PI);
  b.setRegisters("ir", 16, [0, 2, 4, 6].map((i) => f64.readUInt16BE(i)));
  b.setInt16("ir", 20, -125); // -12.5 degC
  b.setString("ir", 21, "hello", 4);
  cell = await startCell(yaml(io.port), t, { start: false });
  const config = opcuaConfigSchema.parse({
    port: 0,
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    state_dir: path.join(dir, "state"),
    users: { eng: { password_hash: await hashPassword("engineer-pw", { N: 1024 }), role: "engineer" } },
  });
  server = new CellOpcuaServer({ config, view: cellViewOf(cell.app), commands: cell.app.loop.logic.commands, log: memoryLog().log });
  t.add(() => server.stop());
  await server.prepare();
  await cell.app.start();
  await cell.waitCycle((c) => c.mode === "running", 10_000, "the first complete good scan");
  const started = await server.start();
  const pki = await clientPki(path.join(dir, "client-pki"), "cellio-types-test");
  await trust(server, pki);
  eng = await connect(`opc.tcp://127.0.0.1:${started.port}`, { pki, user: "eng", password: "engineer-pw" });
  t.add(() => eng.close());
  ns = await cellNamespace(eng.session, started.namespaceUri);
}, 60_000);

afterAll(() => t.run(), 20_000);

const S = (): ClientSession => eng.session;
const id = (p: string): string => ns.id(`Cell.Devices.io.${p}`);

async function child(nodeId: string, name: string): Promise<DataValue | undefined> {
  const r = await S().browse({ nodeId, browseDirection: BrowseDirection.Forward, resultMask: 63 });
  const ref = r.references?.find((x) => x.browseName.name === name);
  return ref === undefined ? undefined : readValue(S(), ref.nodeId.toString());
}

async function typeDefinition(p: string): Promise<number> {
  const r = await S().browse({ nodeId: ns.id("Cell.Devices.io"), browseDirection: BrowseDirection.Forward, resultMask: 63 });
  return r.references!.find((x) => x.browseName.name === p)!.typeDefinition.value as number;
}

const ANALOG = 2368;
const TWO_STATE = 2373;
const BASE = 63;

describe("each kind of point", () => {
  it.each([
    ["flag", DataType.Boolean, true, TWO_STATE],
    ["u16", DataType.UInt16, 65535, BASE],
    ["i16", DataType.Int16, -32768, BASE],
    ["u32", DataType.UInt32, 4_000_000_000, ANALOG],
    ["i32", DataType.Int32, -2_000_000_000, BASE],
    ["i64", DataType.Int64, [0xffffff00, 0], BASE],
    ["u64", DataType.UInt64, [0x100, 5], BASE],
    ["f32", DataType.Float, 1.5, ANALOG],
    ["f64", DataType.Double, Math.PI, ANALOG],
    ["scaled", DataType.Double, -12.5, ANALOG],
    ["text", DataType.String, "hello", BASE],
  ] as const)("%s: DataType %s, value, Good, the read's source timestamp", async (p, dataType, value, typeDef) => {
    await waitUntil(async () => (await readValue(S(), id(p))).statusCode.isGood(), 5000, `${p} to be Good`);
    const declared = await S().read({ nodeId: id(p), attributeId: AttributeIds.DataType });
    expect((declared.value.value as NodeId).value, "DataType attribute").toBe(dataType);
    const dv = await S().read({ nodeId: id(p), attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
    expect(DataType[dv.value.dataType]).toBe(DataType[dataType]);
    if (typeof value === "number" && !Number.isInteger(value)) expect(dv.value.value).toBeCloseTo(value, 6);
    else expect(dv.value.value).toEqual(value);
    expect(dv.statusCode.value).toBe(StatusCodes.Good.value);
    const ts = dv.sourceTimestamp!.getTime();
    expect(ts).toBeGreaterThan(Date.now() - 60_000);
    expect(ts).toBeLessThanOrEqual(dv.serverTimestamp!.getTime());
    expect(await typeDefinition(p)).toBe(typeDef);
  });

  it("analog points: EngineeringUnits, EURange and InstrumentRange from the unit, clamp and register", async () => {
    const eu = async (p: string): Promise<string> => ((await child(id(p), "EngineeringUnits"))!.value.value as { displayName: { text: string } }).displayName.text;
    const range = async (p: string, which: string): Promise<[number, number] | undefined> => {
      const dv = await child(id(p), which);
      const r = dv?.value.value as { low: number; high: number } | undefined;
      return r === undefined ? undefined : [r.low, r.high];
    };
    expect(await eu("u32")).toBe("ms");
    expect(await range("u32", "EURange")).toEqual([0, 4294967295]);
    expect(await eu("f32")).toBe("bar");
    expect(await range("f32", "EURange")).toEqual([-Infinity, Infinity]);
    expect((await range("f32", "InstrumentRange"))![1]).toBeCloseTo(3.4028234663852886e38, -30);
    expect(await eu("scaled")).toBe("°C");
    const scaled = (await range("scaled", "EURange"))!;
    expect(scaled[0]).toBeCloseTo(-3276.8, 6);
    expect(scaled[1]).toBeCloseTo(3276.7, 6);
    expect(await range("setpoint", "EURange")).toEqual([0, 100]);
    expect(await range("f64", "InstrumentRange")).toBeUndefined();
  });

  it("a lost device: every kind turns Bad_NoCommunication (or Bad_Timeout) with a null value and a frozen timestamp", async () => {
    const before = await S().read({ nodeId: id("u64"), attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
    io.server.faults.set({ kind: "noAnswer" });
    try {
      await waitUntil(async () => (await readValue(S(), id("u64"))).statusCode.isBad(), 8000, "u64 to turn bad");
      for (const p of ["flag", "u16", "i64", "f32", "text", "scaled"]) {
        const dv = await S().read({ nodeId: id(p), attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
        expect([StatusCodes.BadNoCommunication.value, StatusCodes.BadTimeout.value], p).toContain(dv.statusCode.value);
        expect(dv.value.dataType, p).toBe(DataType.Null);
        expect(dv.sourceTimestamp!.getTime(), p).toBe(Math.floor(cell.latest(`io.${p}`)!.sourceTs));
      }
      const after = await S().read({ nodeId: id("u64"), attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
      expect(after.sourceTimestamp!.getTime()).toBeGreaterThanOrEqual(before.sourceTimestamp!.getTime());
    } finally {
      io.server.faults.clear();
    }
    await waitUntil(async () => (await readValue(S(), id("u64"))).statusCode.isGood(), 8000, "u64 to recover");
  });
});

describe("writes by type", () => {
  it("takes a UInt16 above 32767, refuses an Int32 for it", async () => {
    expect((await write(S(), id("out_u16"), DataType.UInt16, 60000)).value).toBe(StatusCodes.Good.value);
    await waitUntil(() => io.bank.getRegister("hr", 0) === 60000, 3000, "hr 0 = 60000");
    expect((await write(S(), id("out_u16"), DataType.Int32, 1)).value).toBe(StatusCodes.BadTypeMismatch.value);
  });

  it("refuses a scaled value beyond its clamp with BadOutOfRange and writes one inside", async () => {
    expect((await write(S(), id("setpoint"), DataType.Double, 100.5)).value).toBe(StatusCodes.BadOutOfRange.value);
    expect((await write(S(), id("setpoint"), DataType.Double, 50)).value).toBe(StatusCodes.Good.value);
    await waitUntil(() => io.bank.getRegister("hr", 1) === 500, 3000, "hr 1 = 500");
  });

  it("takes an Int64 as its two words and the device gets all four registers", async () => {
    const v = new Variant({ dataType: DataType.Int64, arrayType: VariantArrayType.Scalar, value: [0xffffffff, 0xfffffffb] }); // -5
    const status = await S().write({ nodeId: id("out_i64"), attributeId: AttributeIds.Value, value: { value: v } });
    expect(status.value).toBe(StatusCodes.Good.value);
    await waitUntil(() => io.bank.getRegisters("hr", 4, 4).join(",") === words64(-5n).join(","), 3000, "hr 4..7 = -5");
    await waitUntil(async () => JSON.stringify((await readValue(S(), id("out_i64"))).value.value) === JSON.stringify([0xffffffff, 0xfffffffb]), 3000, "out_i64 to read -5");
  });
});
