import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseAddress, type ModbusAddress, type ModbusType } from "../../../src/drivers/modbus/address.js";
import { applyBit, decodeBits, decodeRegisters, encodeValue, registerBit } from "../../../src/drivers/modbus/codec.js";

function addr(text: string): ModbusAddress {
  const r = parseAddress(text);
  if (!r.ok) throw new Error(r.error);
  return r.address;
}

function encoded(a: ModbusAddress, v: number | boolean | string): number[] {
  const r = encodeValue(a, v);
  if (!r.ok) throw new Error(r.error);
  if (!("words" in r)) throw new Error("expected words");
  return r.words;
}

function encodeError(a: ModbusAddress, v: number | boolean | string): string {
  const r = encodeValue(a, v);
  if (r.ok) throw new Error(`encoded ${String(v)}: ${JSON.stringify(r)}`);
  return r.error;
}

/**
 * Oracle, written from the documented byte-order table rather than from the
 * codec: the wire carries the value's big-endian bytes A, B, C, ... in the
 * order given by the pattern (Telegraf-style patterns for 64-bit).
 */
const PATTERN: Record<string, Record<number, string>> = {
  AB: { 2: "AB" },
  BA: { 2: "BA" },
  ABCD: { 4: "ABCD", 8: "ABCDEFGH" },
  CDAB: { 4: "CDAB", 8: "GHEFCDAB" },
  BADC: { 4: "BADC", 8: "BADCFEHG" },
  DCBA: { 4: "DCBA", 8: "HGFEDCBA" },
};

function wireWords(bigEndian: Buffer, order: string): number[] {
  const pattern = PATTERN[order]![bigEndian.length]!;
  const bytes = [...pattern].map((ch) => bigEndian[ch.charCodeAt(0) - 65]!);
  const words: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);
  return words;
}

function beBytes(type: ModbusType, v: number | bigint): Buffer {
  const b = Buffer.alloc(type.endsWith("16") ? 2 : type.endsWith("32") ? 4 : 8);
  switch (type) {
    case "int16": b.writeInt16BE(Number(v)); break;
    case "uint16": b.writeUInt16BE(Number(v)); break;
    case "int32": b.writeInt32BE(Number(v)); break;
    case "uint32": b.writeUInt32BE(Number(v)); break;
    case "float32": b.writeFloatBE(Number(v)); break;
    case "float64": b.writeDoubleBE(Number(v)); break;
    case "int64": b.writeBigInt64BE(BigInt(v)); break;
    case "uint64": b.writeBigUInt64BE(BigInt(v)); break;
  }
  return b;
}

const ORDERS_16 = ["AB", "BA"] as const;
const ORDERS_32 = ["ABCD", "CDAB", "BADC", "DCBA"] as const;

describe("decodeRegisters: every byte order on a value with distinct bytes", () => {
  const cases: Array<[string, number[], number]> = [
    ["hr:0:uint16:AB", [0x0102], 0x0102],
    ["hr:0:uint16:BA", [0x0201], 0x0102],
    ["hr:0:uint32:ABCD", [0x0102, 0x0304], 0x01020304],
    ["hr:0:uint32:CDAB", [0x0304, 0x0102], 0x01020304],
    ["hr:0:uint32:BADC", [0x0201, 0x0403], 0x01020304],
    ["hr:0:uint32:DCBA", [0x0403, 0x0201], 0x01020304],
    ["hr:0:float32:ABCD", [0x3fc0, 0x0000], 1.5],
    ["hr:0:float32:CDAB", [0x0000, 0x3fc0], 1.5],
    ["hr:0:float32:BADC", [0xc03f, 0x0000], 1.5],
    ["hr:0:float32:DCBA", [0x0000, 0xc03f], 1.5],
    ["hr:0:uint64:ABCD", [0x0001, 0x0203, 0x0405, 0x0607], 0x0001020304050607],
    ["hr:0:uint64:CDAB", [0x0607, 0x0405, 0x0203, 0x0001], 0x0001020304050607],
    ["hr:0:uint64:BADC", [0x0100, 0x0302, 0x0504, 0x0706], 0x0001020304050607],
    ["hr:0:uint64:DCBA", [0x0706, 0x0504, 0x0302, 0x0100], 0x0001020304050607],
    ["hr:0:float64:ABCD", [0x4009, 0x21fb, 0x5444, 0x2d18], Math.PI],
    ["hr:0:float64:CDAB", [0x2d18, 0x5444, 0x21fb, 0x4009], Math.PI],
    ["hr:0:float64:BADC", [0x0940, 0xfb21, 0x4454, 0x182d], Math.PI],
    ["hr:0:float64:DCBA", [0x182d, 0x4454, 0xfb21, 0x0940], Math.PI],
  ];
  it.each(cases)("%s", (text, words, want) => {
    const a = addr(text);
    expect(decodeRegisters(a, words, 0)).toBe(want);
    expect(decodeRegisters(a, Uint16Array.from([0xdead, ...words, 0xbeef]), 1)).toBe(want);
    expect(encoded(a, want)).toEqual(words);
  });
});

describe("decodeRegisters / encodeValue: edges", () => {
  const cases: Array<[string, number[], number]> = [
    ["hr:0:int16", [0x0000], 0],
    ["hr:0:int16", [0xffff], -1],
    ["hr:0:int16", [0x8000], -32768],
    ["hr:0:int16", [0x7fff], 32767],
    ["hr:0:uint16", [0xffff], 65535],
    ["hr:0:int32", [0xffff, 0xffff], -1],
    ["hr:0:int32", [0x8000, 0x0000], -2147483648],
    ["hr:0:int32", [0x7fff, 0xffff], 2147483647],
    ["hr:0:int32:CDAB", [0xfffe, 0xffff], -2],
    ["hr:0:uint32", [0xffff, 0xffff], 4294967295],
    ["hr:0:int64", [0xffff, 0xffff, 0xffff, 0xffff], -1],
    ["hr:0:int64", [0x8000, 0, 0, 0], -(2 ** 63)],
    ["hr:0:int64", [0x0020, 0, 0, 0], 2 ** 53],
    ["hr:0:int64", [0x001f, 0xffff, 0xffff, 0xffff], 2 ** 53 - 1],
    ["hr:0:int64", [0xffe0, 0, 0, 1], -(2 ** 53 - 1)],
    ["hr:0:int64", [0xffe0, 0, 0, 0], -(2 ** 53)],
    ["hr:0:int64:DCBA", [0xfeff, 0xffff, 0xffff, 0xffff], -2],
    ["hr:0:uint64", [0x0020, 0, 0, 2], 2 ** 53 + 2],
    ["hr:0:uint64", [0xffff, 0xffff, 0xffff, 0xf800], 2 ** 64 - 2048],
    ["hr:0:float32", [0x8000, 0x0000], -0],
    ["hr:0:float32", [0x7f80, 0x0000], Infinity],
    ["hr:0:float32", [0xff80, 0x0000], -Infinity],
    ["hr:0:float32", [0x0000, 0x0001], 1.401298464324817e-45],
    ["hr:0:float32", [0x7f7f, 0xffff], 3.4028234663852886e38],
    ["hr:0:float64", [0x8000, 0, 0, 0], -0],
    ["hr:0:float64", [0xfff0, 0, 0, 0], -Infinity],
    ["hr:0:float64", [0x7fef, 0xffff, 0xffff, 0xffff], Number.MAX_VALUE],
  ];
  it.each(cases)("%s %j = %d", (text, words, want) => {
    const a = addr(text);
    expect(Object.is(decodeRegisters(a, words, 0), want)).toBe(true);
    expect(encoded(a, want)).toEqual(words);
  });

  it("NaN passes through floats both ways", () => {
    expect(decodeRegisters(addr("ir:0:float32"), [0x7fc0, 0], 0)).toBeNaN();
    expect(decodeRegisters(addr("ir:0:float32"), [0xffc0, 1], 0)).toBeNaN();
    expect(decodeRegisters(addr("ir:0:float64:DCBA"), [0, 0, 0, 0xf87f], 0)).toBeNaN();
    expect(decodeRegisters(addr("ir:0:float32"), encoded(addr("ir:0:float32"), NaN), 0)).toBeNaN();
    expect(decodeRegisters(addr("ir:0:float64"), encoded(addr("ir:0:float64"), NaN), 0)).toBeNaN();
  });

  it("64-bit integers beyond 2^53 decode to the nearest double, ties to even", () => {
    const u = addr("hr:0:uint64");
    expect(decodeRegisters(u, [0x0020, 0, 0, 1], 0)).toBe(2 ** 53); // 2^53+1: tie, to even
    expect(decodeRegisters(u, [0x0020, 0, 0, 3], 0)).toBe(2 ** 53 + 4); // 2^53+3: tie, to even
    expect(decodeRegisters(u, [0xffff, 0xffff, 0xffff, 0xffff], 0)).toBe(2 ** 64);
    const i = addr("hr:0:int64");
    expect(decodeRegisters(i, [0x7fff, 0xffff, 0xffff, 0xffff], 0)).toBe(2 ** 63);
    expect(decodeRegisters(i, [0xffdf, 0xffff, 0xffff, 0xffff], 0)).toBe(-(2 ** 53)); // -(2^53)-1: tie, to even
  });

  it("masks register numbers to 16 bits", () => {
    expect(decodeRegisters(addr("hr:0:int16"), [0x1ffff], 0)).toBe(-1);
  });
});

describe("strings", () => {
  it("two characters per register, high byte first (AB) or low byte first (BA)", () => {
    expect(encoded(addr("hr:0:string:4"), "ABC")).toEqual([0x4142, 0x4300]);
    expect(encoded(addr("hr:0:string:4:BA"), "ABC")).toEqual([0x4241, 0x0043]);
    expect(decodeRegisters(addr("hr:0:string:4"), [0x4142, 0x4300], 0)).toBe("ABC");
    expect(decodeRegisters(addr("hr:0:string:4:BA"), [0x4241, 0x0043], 0)).toBe("ABC");
  });
  it("strips trailing NULs only, and ignores the pad byte of an odd length", () => {
    expect(decodeRegisters(addr("hr:0:string:6"), [0x4100, 0x4200, 0x0000], 0)).toBe("A\0B");
    expect(decodeRegisters(addr("hr:0:string:3"), [0x4142, 0x43ff], 0)).toBe("ABC");
    expect(decodeRegisters(addr("hr:0:string:4"), [0, 0], 0)).toBe("");
    expect(decodeRegisters(addr("hr:0:string:2"), [0xe9ff], 0)).toBe("\u00e9\u00ff");
  });
  it("pads with NULs and refuses what does not fit", () => {
    expect(encoded(addr("hr:0:string:6"), "")).toEqual([0, 0, 0]);
    expect(encoded(addr("hr:0:string:3"), "abc")).toEqual([0x6162, 0x6300]);
    expect(encodeError(addr("hr:0:string:3"), "abcd")).toBe("string of 4 characters does not fit in 3 bytes");
    expect(encodeError(addr("hr:0:string:8"), "a€")).toContain('character "€" at 1 does not fit in one byte');
  });
});

describe("bits", () => {
  it("decodeBits reads a bit of a coil/di window", () => {
    expect(decodeBits([false, true], 1)).toBe(true);
    expect(decodeBits([false, true], 0)).toBe(false);
    expect(() => decodeBits([true], 1)).toThrow(RangeError);
  });
  it("register bits: 0 is the least significant", () => {
    expect(decodeRegisters(addr("hr:0.0"), [0x0001], 0)).toBe(true);
    expect(decodeRegisters(addr("hr:0.15"), [0x8000], 0)).toBe(true);
    expect(decodeRegisters(addr("hr:0.14"), [0x8000], 0)).toBe(false);
    expect(decodeRegisters(addr("hr:3.3"), [0, 0x0008], 1)).toBe(true);
    expect(registerBit(0b1010, 1)).toBe(true);
    expect(registerBit(0b1010, 2)).toBe(false);
  });
  it("applyBit sets and clears one bit and keeps the rest", () => {
    expect(applyBit(0x0000, 0, true)).toBe(0x0001);
    expect(applyBit(0x0000, 15, true)).toBe(0x8000);
    expect(applyBit(0xffff, 15, false)).toBe(0x7fff);
    expect(applyBit(0xffff, 0, false)).toBe(0xfffe);
    expect(applyBit(0x00f0, 4, true)).toBe(0x00f0);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 15 }), fc.boolean(), (w, b, v) => {
        const out = applyBit(w, b, v);
        expect(registerBit(out, b)).toBe(v);
        expect(out & ~(1 << b) & 0xffff).toBe(w & ~(1 << b) & 0xffff);
      }),
    );
  });
  it("bool addresses encode to a bit", () => {
    expect(encodeValue(addr("coil:1"), true)).toEqual({ ok: true, bit: true });
    expect(encodeValue(addr("hr:1.2"), false)).toEqual({ ok: true, bit: false });
    expect(encodeError(addr("coil:1"), 1)).toBe("expected a boolean, got number 1");
  });
});

describe("encodeValue: refusals", () => {
  const cases: Array<[string, number | boolean | string, string]> = [
    ["hr:0:int16", 40000, "40000 is out of range for int16 (-32768..32767)"],
    ["hr:0:int16", -32769, "-32769 is out of range for int16"],
    ["hr:0:uint16", -1, "-1 is out of range for uint16 (0..65535)"],
    ["hr:0:uint16", 65536, "65536 is out of range for uint16"],
    ["hr:0:int32", 2147483648, "out of range for int32"],
    ["hr:0:uint32", 4294967296, "out of range for uint32"],
    ["hr:0:uint32", -1, "out of range for uint32"],
    ["hr:0:int64", 2 ** 63, "out of range for int64 (-2^63..2^63-1)"],
    ["hr:0:uint64", 2 ** 64, "out of range for uint64 (0..2^64-1)"],
    ["hr:0:uint64", -1, "out of range for uint64"],
    ["hr:0:int16", 1.5, "1.5 is not an integer (int16 takes whole numbers; round first)"],
    ["hr:0:int64", 0.5, "0.5 is not an integer"],
    ["hr:0:int16", NaN, "NaN cannot be written to int16"],
    ["hr:0:uint32", Infinity, "Infinity cannot be written to uint32"],
    ["hr:0:int64", -Infinity, "-Infinity cannot be written to int64"],
    ["hr:0:float32", 1e39, "1e+39 is out of range for float32"],
    ["hr:0:float32", -1e39, "out of range for float32"],
    ["hr:0:int16", true, "expected a number for int16, got boolean true"],
    ["hr:0:float32", "1.5", 'expected a number for float32, got string "1.5"'],
    ["hr:0:string:4", 12, "expected a string, got number 12"],
  ];
  it.each(cases)("%s ← %j", (text, v, want) => {
    expect(encodeError(addr(text), v)).toContain(want);
  });

  it("accepts the limits and -0", () => {
    expect(encoded(addr("hr:0:int64"), -(2 ** 63))).toEqual([0x8000, 0, 0, 0]);
    expect(encoded(addr("hr:0:int16"), -0)).toEqual([0]);
    expect(encoded(addr("hr:0:float32"), 3.4028235e38)).toEqual([0x7f7f, 0xffff]);
    expect(encoded(addr("hr:0:float32"), 1.1)).toEqual([0x3f8c, 0xcccd]);
  });
});

describe("misuse throws (the planner checks lengths first)", () => {
  it("bit areas and short windows", () => {
    expect(() => decodeRegisters(addr("coil:0"), [1], 0)).toThrow(TypeError);
    expect(() => decodeRegisters(addr("hr:0:float32"), [1], 0)).toThrow(RangeError);
    expect(() => decodeRegisters(addr("hr:0:float32"), [1, 2, 3], 2)).toThrow(RangeError);
  });
});

describe("properties: encode matches the documented layout and decode inverts it", () => {
  const intArb: Record<"int16" | "uint16" | "int32" | "uint32", fc.Arbitrary<number>> = {
    int16: fc.integer({ min: -32768, max: 32767 }),
    uint16: fc.integer({ min: 0, max: 65535 }),
    int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    uint32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  };
  for (const type of ["int16", "uint16", "int32", "uint32"] as const) {
    const orders = type.endsWith("16") ? ORDERS_16 : ORDERS_32;
    for (const order of orders) {
      it(`${type}:${order}`, () => {
        const a = addr(`hr:0:${type}:${order}`);
        fc.assert(
          fc.property(intArb[type], (v) => {
            const words = encoded(a, v);
            expect(words).toEqual(wireWords(beBytes(type, v), order));
            expect(decodeRegisters(a, words, 0)).toBe(v);
          }),
        );
      });
    }
  }

  for (const [type, min, max] of [
    ["int64", -(2n ** 63n), 2n ** 63n - 1n],
    ["uint64", 0n, 2n ** 64n - 1n],
  ] as const) {
    for (const order of ORDERS_32) {
      it(`${type}:${order}`, () => {
        const a = addr(`hr:0:${type}:${order}`);
        const edges = fc.constantFrom(min, max, 0n, 1n, -1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n);
        const arb = fc.oneof(fc.bigInt({ min, max }), edges.filter((b) => b >= min && b <= max));
        fc.assert(
          fc.property(arb, (big) => {
            const words = wireWords(beBytes(type, big), order);
            const want = Number(big);
            expect(decodeRegisters(a, words, 0)).toBe(want);
            const r = encodeValue(a, want);
            if (BigInt(want) > max) {
              expect(r.ok).toBe(false);
            } else {
              expect(r).toEqual({ ok: true, words: wireWords(beBytes(type, BigInt(want)), order) });
              expect(decodeRegisters(a, encoded(a, want), 0)).toBe(want);
            }
          }),
        );
      });
    }
  }

  for (const [type, arb] of [
    ["float32", fc.float()],
    ["float64", fc.double()],
  ] as const) {
    for (const order of ORDERS_32) {
      it(`${type}:${order}`, () => {
        const a = addr(`hr:0:${type}:${order}`);
        fc.assert(
          fc.property(arb, (v) => {
            const words = encoded(a, v);
            if (!Number.isNaN(v)) expect(words).toEqual(wireWords(beBytes(type, v), order));
            expect(Object.is(decodeRegisters(a, words, 0), v)).toBe(true);
          }),
        );
      });
    }
  }

  for (const order of ORDERS_16) {
    it(`string:${order}`, () => {
      const latin1 = fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c));
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 246 }), fc.string({ unit: latin1, maxLength: 246 }), (len, s) => {
          const a = addr(`hr:0:string:${len}:${order}`);
          const r = encodeValue(a, s);
          if (s.length > len) expect(r.ok).toBe(false);
          else expect(decodeRegisters(a, encoded(a, s), 0)).toBe(s);
        }),
      );
    });
  }
});
