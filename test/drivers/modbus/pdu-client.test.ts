/**
 * The pure client PDU layer: request bytes (the spec's own examples), response
 * checks and their precise reasons, exception names, CRC, and properties
 * against the simulator's independent PDU handler.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { RegisterBank, handlePdu } from "../../../simulators/modbus/index.js";
import {
  LIMITS,
  type ModbusRequest,
  NEED_MORE,
  UNKNOWN_FC,
  checkRequest,
  crc16,
  encodeRequestPdu,
  exceptionName,
  parseResponsePdu,
  requestPduLength,
  responsePduLength,
} from "../../../src/drivers/modbus/pdu-client.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

function encode(req: ModbusRequest): string {
  const buf = Buffer.alloc(300, 0xee);
  const n = encodeRequestPdu(req, buf, 3);
  expect(n).toBe(requestPduLength(req));
  expect(buf[2]).toBe(0xee); // nothing written outside [off, off+n)
  expect(buf[3 + n]).toBe(0xee);
  return buf.subarray(3, 3 + n).toString("hex");
}

function parse(req: ModbusRequest, pdu: string): ReturnType<typeof parseResponsePdu> {
  const b = Buffer.concat([Buffer.from([0xaa]), hex(pdu)]);
  return parseResponsePdu(req, b, 1, b.length - 1);
}

describe("request PDUs (examples of Modbus Application Protocol v1.1b3, section 6)", () => {
  it.each<[ModbusRequest, string]>([
    [{ fc: 1, start: 19, count: 19 }, "0100130013"],
    [{ fc: 2, start: 196, count: 22 }, "0200c40016"],
    [{ fc: 3, start: 107, count: 3 }, "03006b0003"],
    [{ fc: 4, start: 8, count: 1 }, "0400080001"],
    [{ fc: 5, start: 172, value: true }, "0500acff00"],
    [{ fc: 5, start: 172, value: false }, "0500ac0000"],
    [{ fc: 6, start: 1, value: 3 }, "0600010003"],
    [{ fc: 15, start: 19, values: [true, false, true, true, false, false, true, true, true, false] }, "0f0013000a02cd01"],
    [{ fc: 16, start: 1, values: [0x000a, 0x0102] }, "100001000204000a0102"],
    [{ fc: 23, start: 3, count: 6, writeStart: 14, values: [0xff, 0xff, 0xff] }, "1700030006000e00030600ff00ff00ff"],
  ])("%j -> %s", (req, bytes) => {
    expect(checkRequest(req)).toBeUndefined();
    expect(encode(req)).toBe(bytes);
  });

  it("checks quantities, addresses and values against the spec's limits", () => {
    expect(checkRequest({ fc: 1, start: 0, count: LIMITS.readBits })).toBeUndefined();
    expect(checkRequest({ fc: 1, start: 0, count: 2001 })).toMatch(/quantity 2001 is outside 1\.\.2000/);
    expect(checkRequest({ fc: 4, start: 65535, count: 1 })).toBeUndefined();
    expect(checkRequest({ fc: 4, start: 65535, count: 2 })).toMatch(/runs past address 65535/);
    expect(checkRequest({ fc: 3, start: -1, count: 1 })).toMatch(/start -1/);
    expect(checkRequest({ fc: 3, start: 1.5, count: 1 })).toMatch(/start 1\.5/);
    expect(checkRequest({ fc: 15, start: 0, values: new Array<boolean>(1969).fill(true) })).toMatch(/quantity 1969 is outside 1\.\.1968/);
    expect(checkRequest({ fc: 16, start: 0, values: new Array<number>(124).fill(0) })).toMatch(/quantity 124 is outside 1\.\.123/);
    expect(checkRequest({ fc: 16, start: 0, values: [1, -1] })).toMatch(/words 0\.\.65535/);
    expect(checkRequest({ fc: 23, start: 0, count: 1, writeStart: 0, values: new Array<number>(122).fill(0) })).toMatch(/quantity 122 is outside 1\.\.121/);
    expect(checkRequest({ fc: 5, start: 0, value: 1 as unknown as boolean })).toMatch(/not a boolean/);
    expect(checkRequest({ fc: 8, start: 0, count: 1 } as unknown as ModbusRequest)).toMatch(/function code 8 is not supported/);
  });
});

describe("response PDUs", () => {
  it("decodes the spec's example responses", () => {
    const bits19 = [1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1].map((b) => b === 1);
    expect(parse({ fc: 1, start: 19, count: 19 }, "0103cd6b05")).toEqual({ ok: true, value: bits19 });
    expect(parse({ fc: 3, start: 107, count: 3 }, "0306022b00000064")).toEqual({ ok: true, value: [555, 0, 100] });
    expect(parse({ fc: 4, start: 8, count: 1 }, "0402000a")).toEqual({ ok: true, value: [10] });
    expect(parse({ fc: 5, start: 172, value: true }, "0500acff00")).toEqual({ ok: true, value: undefined });
    expect(parse({ fc: 6, start: 1, value: 3 }, "0600010003")).toEqual({ ok: true, value: undefined });
    expect(parse({ fc: 15, start: 19, values: new Array<boolean>(10).fill(true) }, "0f0013000a")).toEqual({ ok: true, value: undefined });
    expect(parse({ fc: 16, start: 1, values: [1, 2] }, "1000010002")).toEqual({ ok: true, value: undefined });
    expect(parse({ fc: 23, start: 3, count: 6, writeStart: 14, values: [255] }, "170c00fe0acd00010003000d00ff")).toEqual({
      ok: true,
      value: [0xfe, 0x0acd, 1, 3, 0x0d, 0xff],
    });
  });

  it("exceptions: the code, named 01..0B", () => {
    expect(parse({ fc: 3, start: 0, count: 1 }, "8306")).toEqual({ ok: false, kind: "exception", code: 6 });
    expect(parse({ fc: 16, start: 0, values: [1] }, "9002")).toEqual({ ok: false, kind: "exception", code: 2 });
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map(exceptionName)).toEqual([
      "illegal function",
      "illegal data address",
      "illegal data value",
      "server device failure",
      "acknowledge",
      "server device busy",
      "negative acknowledge",
      "memory parity error",
      "undefined exception code",
      "gateway path unavailable",
      "gateway target device failed to respond",
    ]);
    expect(parse({ fc: 3, start: 0, count: 1 }, "830600")).toMatchObject({ kind: "frame", reason: "exception response of 3 bytes, expected 2" });
  });

  const R3: ModbusRequest = { fc: 3, start: 10, count: 2 };
  it.each<[string, ModbusRequest, string, string, boolean]>([
    ["empty", R3, "", "empty PDU", false],
    ["another function, well formed", R3, "040400010002", "function code 0x04, expected 0x03 or 0x83", true],
    ["an unknown function", R3, "4100", "function code 0x41, expected 0x03 or 0x83", false],
    ["an exception for another function", R3, "8406", "function code 0x84, expected 0x03 or 0x83", true],
    ["no byte count", R3, "03", "PDU of 1 byte(s) is too short for function 0x03", false],
    ["byte count too high", R3, "0305000100", "byte count 5 implies a 7-byte PDU but it has 5 (truncated PDU or byte count too high)", false],
    ["an extra byte", R3, "03040001000200", "byte count 4 implies a 6-byte PDU but it has 7 (over-long PDU or byte count too low)", false],
    ["fewer registers than asked", R3, "03020001", "byte count 2, expected 4 for 2 registers", true],
    ["fewer bits than asked", { fc: 1, start: 0, count: 9 }, "010100", "byte count 1, expected 2 for 9 bits", true],
    ["a write echo of another address", { fc: 6, start: 1, value: 3 }, "0600020003", "echoed address 2, expected 1", true],
    ["a write echo of another value", { fc: 5, start: 1, value: true }, "0500010000", "echoed value 0x0000, expected 0xff00", true],
    ["a write echo of another quantity", { fc: 16, start: 1, values: [1, 2] }, "1000010003", "echoed quantity 0x0003, expected 0x0002", true],
    ["a short write echo", { fc: 16, start: 1, values: [1, 2] }, "10000100", "PDU of 4 bytes, expected 5", false],
  ])("%s: precise reason", (_name, req, pdu, reason, inSync) => {
    expect(parse(req, pdu)).toEqual({ ok: false, kind: "frame", reason, inSync });
  });

  it("a PDU over 253 bytes is refused", () => {
    const pdu = Buffer.alloc(256);
    pdu[0] = 3;
    pdu[1] = 254;
    expect(parseResponsePdu({ fc: 3, start: 0, count: 125 }, pdu, 0, 256)).toMatchObject({ kind: "frame", reason: "PDU of 256 bytes exceeds the 253-byte maximum" });
  });

  it("responsePduLength: from the function code and byte count", () => {
    expect(responsePduLength(hex("0304"), 0, 2)).toBe(6);
    expect(responsePduLength(hex("03"), 0, 1)).toBe(NEED_MORE);
    expect(responsePduLength(hex("83"), 0, 1)).toBe(2);
    expect(responsePduLength(hex("10"), 0, 1)).toBe(5);
    expect(responsePduLength(hex("2b"), 0, 1)).toBe(UNKNOWN_FC);
    expect(responsePduLength(hex(""), 0, 0)).toBe(NEED_MORE);
  });

  it("crc16: the reference frames", () => {
    expect(crc16(hex("010300000001"))).toBe(0x0a84); // on the wire: 84 0A
    expect(crc16(hex("11030006"), 1, 4)).toBe(crc16(hex("030006")));
    expect(crc16(hex(""))).toBe(0xffff);
  });
});

const arbRequest: fc.Arbitrary<ModbusRequest> = fc.oneof(
  fc.record({ fc: fc.constantFrom(1 as const, 2 as const), start: fc.integer({ min: 0, max: 1000 }), count: fc.integer({ min: 1, max: 2000 }) }),
  fc.record({ fc: fc.constantFrom(3 as const, 4 as const), start: fc.integer({ min: 0, max: 1000 }), count: fc.integer({ min: 1, max: 125 }) }),
  fc.record({ fc: fc.constant(5 as const), start: fc.integer({ min: 0, max: 3000 }), value: fc.boolean() }),
  fc.record({ fc: fc.constant(6 as const), start: fc.integer({ min: 0, max: 3000 }), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ fc: fc.constant(15 as const), start: fc.integer({ min: 0, max: 1000 }), values: fc.array(fc.boolean(), { minLength: 1, maxLength: 1968 }) }),
  fc.record({ fc: fc.constant(16 as const), start: fc.integer({ min: 0, max: 1000 }), values: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 123 }) }),
  fc.record({
    fc: fc.constant(23 as const),
    start: fc.integer({ min: 0, max: 1000 }),
    count: fc.integer({ min: 1, max: 125 }),
    writeStart: fc.integer({ min: 0, max: 1000 }),
    values: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 121 }),
  }),
);

describe("properties against the simulator's PDU handler", () => {
  it("every valid request is accepted by the simulator, and its answer parses to what the bank holds", () => {
    fc.assert(
      fc.property(arbRequest, fc.integer(), (req, seed) => {
        const bank = new RegisterBank({ coils: 4096, discreteInputs: 4096, holdingRegisters: 4096, inputRegisters: 4096 });
        for (let i = 0; i < 4096; i++) {
          bank.setRegister("hr", i, (i * 31 + seed) & 0xffff);
          bank.setRegister("ir", i, (i * 17 + seed) & 0xffff);
          bank.setBit("coil", i, ((i + seed) & 3) === 0);
          bank.setBit("di", i, ((i ^ seed) & 5) === 1);
        }
        expect(checkRequest(req)).toBeUndefined();
        const buf = Buffer.alloc(260);
        const pdu = buf.subarray(0, encodeRequestPdu(req, buf, 0));
        const res = handlePdu(bank, Buffer.from(pdu));
        const parsed = parseResponsePdu(req, res, 0, res.length);
        expect(parsed.ok).toBe(true);
        if (!parsed.ok) return;
        if (req.fc === 1) expect(parsed.value).toEqual(bank.getBits("coil", req.start, req.count));
        if (req.fc === 2) expect(parsed.value).toEqual(bank.getBits("di", req.start, req.count));
        if (req.fc === 3 || req.fc === 23) expect(parsed.value).toEqual(bank.getRegisters("hr", req.start, req.count));
        if (req.fc === 4) expect(parsed.value).toEqual(bank.getRegisters("ir", req.start, req.count));
        if (req.fc === 15) expect(bank.getBits("coil", req.start, req.values.length)).toEqual(req.values);
        if (req.fc === 16) expect(bank.getRegisters("hr", req.start, req.values.length)).toEqual(req.values);
      }),
      { numRuns: 300 },
    );
  });

  it("any bytes: never throws; a success has exactly the requested shape", () => {
    fc.assert(
      fc.property(arbRequest, fc.uint8Array({ maxLength: 260 }), (req, bytes) => {
        const r = parseResponsePdu(req, bytes, 0, bytes.length);
        if (!r.ok) return;
        if (req.fc === 1 || req.fc === 2 || req.fc === 3 || req.fc === 4 || req.fc === 23) {
          expect(r.value).toHaveLength(req.count);
        } else expect(r.value).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });
});
