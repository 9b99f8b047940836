import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Value } from "../../../src/core/sample.js";
import { parseAddress, type ModbusAddress } from "../../../src/drivers/modbus/address.js";
import {
  decodeResponse,
  planReads,
  planWrites,
  type PlanOptions,
  type ReadRequest,
  type WriteOptions,
} from "../../../src/drivers/modbus/plan.js";

function addr(text: string): ModbusAddress {
  const r = parseAddress(text);
  if (!r.ok) throw new Error(r.error);
  return r.address;
}

const OPTS: PlanOptions = { maxGapRegisters: 10, maxGapBits: 32, maxRegistersPerRead: 125, maxBitsPerRead: 2000, onePerPoint: false };

function plan(texts: string[], opts: Partial<PlanOptions> = {}): ReadRequest[] {
  const r = planReads(
    texts.map((t, index) => ({ index, address: addr(t) })),
    { ...OPTS, ...opts },
  );
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join("\n"));
  return r.requests;
}

/** Requests as [fc, start, count, [[index, at], ...]]. */
function shape(reqs: ReadRequest[]): Array<[number, number, number, Array<[number, number]>]> {
  return reqs.map((q) => [q.fc, q.start, q.count, q.items.map((i) => [i.index, i.at] as [number, number])]);
}

describe("planReads", () => {
  it("groups by function code and orders by fc, then start", () => {
    expect(shape(plan(["ir:0", "hr:0", "di:0", "coil:0", "hr:500"]))).toEqual([
      [1, 0, 1, [[3, 0]]],
      [2, 0, 1, [[2, 0]]],
      [3, 0, 1, [[1, 0]]],
      [3, 500, 1, [[4, 0]]],
      [4, 0, 1, [[0, 0]]],
    ]);
  });

  it("joins across a hole up to the max gap and not beyond", () => {
    expect(shape(plan(["hr:0", "hr:11"]))).toEqual([[3, 0, 12, [[0, 0], [1, 11]]]]);
    expect(shape(plan(["hr:0", "hr:12"]))).toEqual([
      [3, 0, 1, [[0, 0]]],
      [3, 12, 1, [[1, 0]]],
    ]);
    expect(shape(plan(["hr:0:float32", "hr:12"]))).toEqual([[3, 0, 13, [[0, 0], [1, 12]]]]);
    expect(shape(plan(["coil:0", "coil:33"]))).toEqual([[1, 0, 34, [[0, 0], [1, 33]]]]);
    expect(shape(plan(["coil:0", "coil:34"])).length).toBe(2);
    expect(shape(plan(["hr:0", "hr:1"], { maxGapRegisters: 0 })).length).toBe(1);
    expect(shape(plan(["hr:0", "hr:2"], { maxGapRegisters: 0 })).length).toBe(2);
  });

  it("overlapping points share registers", () => {
    expect(shape(plan(["hr:5.3", "hr:5:uint16", "hr:4:uint32", "hr:5.0"]))).toEqual([
      [3, 4, 2, [[2, 0], [0, 1], [1, 1], [3, 1]]],
    ]);
  });

  it("splits at the size limit and never lets a multi-word point straddle", () => {
    const wide = { maxGapRegisters: 124 };
    expect(shape(plan(["hr:0", "hr:124", "hr:125"], wide))).toEqual([
      [3, 0, 125, [[0, 0], [1, 124]]],
      [3, 125, 1, [[2, 0]]],
    ]);
    expect(shape(plan(["hr:0", "hr:123:float32", "hr:124:uint32"], wide))).toEqual([
      [3, 0, 125, [[0, 0], [1, 123]]],
      [3, 124, 2, [[2, 0]]],
    ]);
    expect(shape(plan(["hr:0", "hr:9:float64"], { maxRegistersPerRead: 12 }))).toEqual([
      [3, 0, 1, [[0, 0]]],
      [3, 9, 4, [[1, 0]]],
    ]);
  });

  it("one request per point (identical spans still share)", () => {
    expect(shape(plan(["hr:0", "hr:1", "hr:1.2", "hr:1:int32", "coil:0", "coil:1"], { onePerPoint: true }))).toEqual([
      [1, 0, 1, [[4, 0]]],
      [1, 1, 1, [[5, 0]]],
      [3, 0, 1, [[0, 0]]],
      [3, 1, 1, [[1, 0], [2, 0]]],
      [3, 1, 2, [[3, 0]]],
    ]);
  });

  it("reports a point larger than the request limit by index, and bad options", () => {
    const big = planReads([{ index: 7, address: addr("hr:0:string:246") }], { ...OPTS, maxRegistersPerRead: 100 });
    expect(big).toEqual({
      ok: false,
      errors: [{ index: 7, message: "point 7 (hr:0:string:246:AB) spans 123 registers, more than max_registers_per_read 100" }],
    });
    const one = planReads([{ index: 0, address: addr("hr:10:float32") }], { ...OPTS, maxRegistersPerRead: 1, addressBase: 1 });
    expect(one.ok ? "" : one.errors[0]!.message).toContain("point 0 (hr:11:float32:ABCD) spans 2 registers");
    const opts = planReads([], { ...OPTS, maxRegistersPerRead: 126, maxBitsPerRead: 0, maxGapBits: -1, maxGapRegisters: 1.5 });
    expect(opts.ok ? [] : opts.errors.map((e) => e.message)).toEqual([
      "max_registers_per_read must be an integer 1..125, got 126",
      "max_bits_per_read must be an integer 1..2000, got 0",
      "max_gap.registers must be an integer ≥ 0, got 1.5",
      "max_gap.bits must be an integer ≥ 0, got -1",
    ]);
  });

  it("does not depend on the input order", () => {
    const texts = ["hr:40:float32", "coil:3", "hr:0", "hr:5.1", "ir:9:int64", "di:100", "hr:5", "coil:90"];
    const base = shape(plan(texts));
    fc.assert(
      fc.property(fc.shuffledSubarray(texts.map((t, i) => i), { minLength: texts.length }), (perm) => {
        const r = planReads(
          perm.map((i) => ({ index: i, address: addr(texts[i]!) })),
          OPTS,
        );
        expect(r.ok && shape(r.requests)).toEqual(base);
      }),
    );
  });

  it("covers every point once, within limits, without straddling (random plans)", () => {
    const arbPoint = fc.oneof(
      fc.integer({ min: 0, max: 600 }).map((n) => `hr:${n}`),
      fc.integer({ min: 0, max: 600 }).map((n) => `hr:${n}:float64`),
      fc.integer({ min: 0, max: 600 }).map((n) => `hr:${n}:int32:cdab`),
      fc.integer({ min: 0, max: 5000 }).map((n) => `coil:${n}`),
    );
    fc.assert(
      fc.property(
        fc.array(arbPoint, { maxLength: 60 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 4, max: 125 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.boolean(),
        (texts, gap, maxRegs, maxBits, onePerPoint) => {
          const r = planReads(
            texts.map((t, index) => ({ index, address: addr(t) })),
            { maxGapRegisters: gap, maxGapBits: gap, maxRegistersPerRead: maxRegs, maxBitsPerRead: maxBits, onePerPoint },
          );
          if (!r.ok) throw new Error(r.errors[0]!.message);
          const seen = new Set<number>();
          for (const q of r.requests) {
            expect(q.count).toBeLessThanOrEqual(q.fc <= 2 ? maxBits : maxRegs);
            for (const it of q.items) {
              expect(seen.has(it.index)).toBe(false);
              seen.add(it.index);
              expect(it.address.offset).toBe(q.start + it.at);
              expect(it.at + it.address.words).toBeLessThanOrEqual(q.count);
            }
          }
          expect(seen.size).toBe(texts.length);
        },
      ),
    );
  });
});

describe("decodeResponse", () => {
  const [regs] = plan(["hr:0:int16", "hr:1:float32:cdab", "hr:3.15", "hr:4:string:3"]);
  const [bits] = plan(["coil:0", "coil:2"]);

  function run(req: ReadRequest, data: readonly number[] | Uint16Array | readonly boolean[]): [ReturnType<typeof decodeResponse>, Array<[number, Value]>] {
    const got: Array<[number, Value]> = [];
    return [decodeResponse(req, data, (i, v) => got.push([i, v])), got];
  }

  it("emits every item's value", () => {
    const [r, got] = run(regs!, Uint16Array.from([0xfffe, 0x0000, 0x3fc0, 0x8000, 0x4f4b, 0x2100]));
    expect(r).toEqual({ ok: true });
    expect(got).toEqual([
      [0, -2],
      [1, 1.5],
      [2, true],
      [3, "OK!"],
    ]);
    const [rb, gotBits] = run(bits!, [true, true, false, false, false, false, false, false]);
    expect(rb.ok).toBe(true);
    expect(gotBits).toEqual([
      [0, true],
      [1, false],
    ]);
  });

  it("a short, long or mistyped response is an error value and emits nothing", () => {
    const cases: Array<[ReadRequest, readonly number[] | readonly boolean[], string]> = [
      [regs!, [1, 2, 3, 4, 5], "FC3 start 0 count 6: short response: 5 registers, expected 6"],
      [regs!, [], "FC3 start 0 count 6: short response: 0 registers, expected 6"],
      [regs!, [1, 2, 3, 4, 5, 6, 7], "FC3 start 0 count 6: long response: 7 registers, expected 6"],
      [bits!, [true, false], "FC1 start 0 count 3: short response: 2 bits, expected 3"],
      [bits!, new Array<boolean>(9).fill(false), "FC1 start 0 count 3: long response: 9 bits, expected 3"],
      [bits!, [1, 0, 1], "FC1 start 0 count 3: response holds number values, expected booleans"],
      [regs!, [true, false, true, true, true, true], "FC3 start 0 count 6: response holds boolean values, expected register numbers"],
    ];
    for (const [req, data, want] of cases) {
      const [r, got] = run(req, data);
      expect(r).toEqual({ ok: false, code: "CELLIO_ERR_MODBUS_FRAME", error: want });
      expect(got).toEqual([]);
    }
  });
});

const WOPTS: WriteOptions = { maxRegistersPerWrite: 123, maxBitsPerWrite: 1968, onePerPoint: false, preferSingle: false };

function writes(changes: Array<[string, Value]>, opts: Partial<WriteOptions> = {}) {
  return planWrites(
    changes.map(([t, value]) => ({ address: addr(t), value })),
    { ...WOPTS, ...opts },
  );
}

describe("planWrites", () => {
  it("joins contiguous coils into FC15 and registers into FC16", () => {
    expect(writes([["hr:11", 2], ["coil:1", false], ["hr:10", 1], ["coil:0", true], ["hr:12:float32", 1.5], ["coil:5", true]])).toEqual({
      ok: true,
      requests: [
        { fc: 15, start: 0, values: [true, false], changes: [3, 1] },
        { fc: 15, start: 5, values: [true], changes: [5] },
        { fc: 16, start: 10, values: [1, 2, 0x3fc0, 0], changes: [2, 0, 4] },
      ],
      rmw: [],
    });
  });

  it("uses FC05/FC06 for lone coils and registers when preferSingle", () => {
    const r = writes([["coil:3", true], ["hr:7", 9], ["hr:20:int32", -1], ["coil:4", false]], { preferSingle: true });
    expect(r.ok && r.requests).toEqual([
      { fc: 15, start: 3, values: [true, false], changes: [0, 3] },
      { fc: 6, start: 7, values: [9], changes: [1] },
      { fc: 16, start: 20, values: [0xffff, 0xffff], changes: [2] },
    ]);
  });

  it("one request per change when asked", () => {
    const r = writes([["coil:0", true], ["coil:1", true], ["hr:0", 1], ["hr:1", 2]], { onePerPoint: true, preferSingle: true });
    expect(r.ok && r.requests.map((q) => [q.fc, q.start])).toEqual([[5, 0], [5, 1], [6, 0], [6, 1]]);
  });

  it("splits runs at the write limits", () => {
    const r = writes([["hr:0", 1], ["hr:1", 2], ["hr:2:float32", 0]], { maxRegistersPerWrite: 3 });
    expect(r.ok && r.requests.map((q) => [q.fc, q.start, q.values.length])).toEqual([[16, 0, 2], [16, 2, 2]]);
    const c = writes([["coil:0", true], ["coil:1", true], ["coil:2", true]], { maxBitsPerWrite: 2 });
    expect(c.ok && c.requests.map((q) => [q.fc, q.start, q.values.length])).toEqual([[15, 0, 2], [15, 2, 1]]);
  });

  it("returns register-bit writes separately for read-modify-write", () => {
    const r = writes([["hr:5.3", true], ["hr:6", 1], ["hr:5.4", false]]);
    expect(r.ok && r.rmw.map((x) => [x.index, x.address.bit, x.value])).toEqual([[0, 3, true], [2, 4, false]]);
    expect(r.ok && r.requests).toEqual([{ fc: 16, start: 6, values: [1], changes: [1] }]);
  });

  it("collects every error, naming the change", () => {
    const r = writes(
      [
        ["ir:0", 1],
        ["di:0", true],
        ["hr:0:int16", 40000],
        ["hr:1.1", 1],
        ["hr:10:int32", 1],
        ["hr:11", 2],
        ["coil:4", true],
        ["coil:4", false],
        ["hr:20.1", true],
        ["hr:20", 0],
        ["hr:30.2", true],
        ["hr:30.2", false],
        ["hr:40:string:10", "x"],
      ],
      { maxRegistersPerWrite: 4, addressBase: 1 },
    );
    expect(r.ok ? [] : r.errors.map((e) => `${e.index}: ${e.message}`)).toEqual([
      "0: change 0 (ir:1:uint16:AB): ir is read-only",
      "1: change 1 (di:1): di is read-only",
      "2: change 2 (hr:1:int16:AB): 40000 is out of range for int16 (-32768..32767)",
      "3: change 3 (hr:2.1): expected a boolean, got number",
      "5: change 5 (hr:12:uint16:AB) and change 4 both write register 12",
      "7: change 7 (coil:5) and change 6 both write coil 5",
      "8: change 8 (hr:21.1) and change 9 both write register 21",
      "11: change 11 (hr:31.2) and change 10 both write register 31",
      "12: change 12 (hr:41:string:10:AB): 5 registers, more than max_registers_per_write 4",
    ]);
  });

  it("validates its options", () => {
    const r = writes([], { maxRegistersPerWrite: 124, maxBitsPerWrite: 1969 });
    expect(r.ok ? [] : r.errors.map((e) => e.message)).toEqual([
      "max_registers_per_write must be an integer 1..123, got 124",
      "max_bits_per_write must be an integer 1..1968, got 1969",
    ]);
  });
});
