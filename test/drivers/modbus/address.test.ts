import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  formatAddress,
  isWritable,
  MODBUS_TYPES,
  parseAddress,
  typeWords,
  valueKind,
  type AddressBase,
  type ModbusAddress,
} from "../../../src/drivers/modbus/address.js";

function parsed(text: string, base: AddressBase = 0): ModbusAddress {
  const r = parseAddress(text, base);
  if (!r.ok) throw new Error(r.error);
  return r.address;
}

function error(text: string, base: AddressBase = 0): string {
  const r = parseAddress(text, base);
  if (r.ok) throw new Error(`"${text}" parsed: ${JSON.stringify(r.address)}`);
  return r.error;
}

describe("parseAddress: valid addresses", () => {
  const cases: Array<[string, ModbusAddress]> = [
    ["coil:10", { area: "coil", offset: 10, type: "bool", order: "AB", words: 1 }],
    ["di:0", { area: "di", offset: 0, type: "bool", order: "AB", words: 1 }],
    ["di:65535", { area: "di", offset: 65535, type: "bool", order: "AB", words: 1 }],
    ["hr:20", { area: "hr", offset: 20, type: "uint16", order: "AB", words: 1 }],
    ["hr:20:int16", { area: "hr", offset: 20, type: "int16", order: "AB", words: 1 }],
    ["ir:7:uint16:ba", { area: "ir", offset: 7, type: "uint16", order: "BA", words: 1 }],
    ["ir:100:float32:abcd", { area: "ir", offset: 100, type: "float32", order: "ABCD", words: 2 }],
    ["ir:100:float32", { area: "ir", offset: 100, type: "float32", order: "ABCD", words: 2 }],
    ["hr:1:int32:CDAB", { area: "hr", offset: 1, type: "int32", order: "CDAB", words: 2 }],
    ["hr:1:uint32:badc", { area: "hr", offset: 1, type: "uint32", order: "BADC", words: 2 }],
    ["hr:1:float64:dcba", { area: "hr", offset: 1, type: "float64", order: "DCBA", words: 4 }],
    ["hr:1:int64", { area: "hr", offset: 1, type: "int64", order: "ABCD", words: 4 }],
    ["HR:3:UINT64:CdAb", { area: "hr", offset: 3, type: "uint64", order: "CDAB", words: 4 }],
    ["hr:5.3", { area: "hr", offset: 5, type: "bool", order: "AB", bit: 3, words: 1 }],
    ["ir:5.15", { area: "ir", offset: 5, type: "bool", order: "AB", bit: 15, words: 1 }],
    ["hr:5.0", { area: "hr", offset: 5, type: "bool", order: "AB", bit: 0, words: 1 }],
    ["hr:0:string:10", { area: "hr", offset: 0, type: "string", order: "AB", length: 10, words: 5 }],
    ["ir:0:string:3:ba", { area: "ir", offset: 0, type: "string", order: "BA", length: 3, words: 2 }],
    ["hr:0:string:246", { area: "hr", offset: 0, type: "string", order: "AB", length: 246, words: 123 }],
    ["hr:65535", { area: "hr", offset: 65535, type: "uint16", order: "AB", words: 1 }],
    ["hr:65534:float32", { area: "hr", offset: 65534, type: "float32", order: "ABCD", words: 2 }],
    ["hr:65532:float64", { area: "hr", offset: 65532, type: "float64", order: "ABCD", words: 4 }],
    ["  hr:007  ", { area: "hr", offset: 7, type: "uint16", order: "AB", words: 1 }],
  ];
  it.each(cases)("%s", (text, want) => {
    expect(parsed(text)).toEqual(want);
  });
});

describe("parseAddress: errors name what is wrong", () => {
  const cases: Array<[string, string]> = [
    ["", 'unknown area ""'],
    ["xr:1", 'unknown area "xr" (expected coil, di, ir or hr)'],
    ["hr", 'missing the register number after "hr:"'],
    ["coil:", 'missing the bit number after "coil:"'],
    ["hr:-1", '"-1" is not a decimal register number'],
    ["hr:0x10", '"0x10" is not a decimal register number'],
    ["hr:1e3", '"1e3" is not a decimal register number'],
    ["hr:65536", "65536 is out of range (0..65535)"],
    ["coil:99999999999999999999", "is out of range (0..65535)"],
    ["coil:1.2", "coil is already a single bit"],
    ["di:1:int16", "di takes no type or order"],
    ["hr:1.16", 'bit "16" must be a number 0..15'],
    ["hr:1.", 'bit "" must be a number 0..15'],
    ["hr:1.a", 'bit "a" must be a number 0..15'],
    ["hr:1.2:int16", "a register bit (N.B) takes no type"],
    ["hr:1:float", 'unknown type "float" (expected int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)'],
    ["hr:1:", 'unknown type ""'],
    ["hr:1:bool", 'unknown type "bool"'],
    ["hr:1:int16:ABCD", "byte order ABCD does not apply to int16 (use AB or BA)"],
    ["hr:1:float32:AB", "byte order AB does not apply to float32 (use ABCD or CDAB or BADC or DCBA)"],
    ["hr:1:float64:BA", "byte order BA does not apply to float64"],
    ["hr:1:float32:ACBD", 'unknown byte order "ACBD" for float32'],
    ["hr:1:float32:abcd:x", 'unexpected "x" after the byte order'],
    ["hr:1:string", "string needs a length in bytes: hr:1:string:LEN"],
    ["hr:1:string:0", 'string length "0" must be 1..246 bytes'],
    ["hr:1:string:247", 'string length "247" must be 1..246 bytes'],
    ["hr:1:string:x", 'string length "x" must be 1..246 bytes'],
    ["hr:1:string:4:ABCD", "byte order ABCD does not apply to string (use AB or BA)"],
    ["hr:1:string:4:AB:x", 'unexpected "x" after the byte order'],
    ["hr:65535:float32", "float32 at 65535 spans 2 registers (65535..65536), past the last register 65535"],
    ["ir:65533:int64", "int64 at 65533 spans 4 registers (65533..65536)"],
    ["hr:65535:string:3", "string at 65535 spans 2 registers"],
  ];
  it.each(cases)("%j", (text, want) => {
    const e = error(text);
    expect(e).toContain(want);
    expect(e).toContain(`"${text}"`);
  });
});

describe("parseAddress: address_base 1", () => {
  it("sends N-1 on the wire", () => {
    expect(parsed("hr:1", 1).offset).toBe(0);
    expect(parsed("coil:1", 1).offset).toBe(0);
    expect(parsed("hr:40.2", 1)).toMatchObject({ offset: 39, bit: 2 });
    expect(parsed("hr:65536", 1).offset).toBe(65535);
    expect(parsed("hr:65535:float32", 1).offset).toBe(65534);
  });
  it("refuses 0 and anything past 65536", () => {
    expect(error("hr:0", 1)).toContain("0 does not exist with address_base 1");
    expect(error("coil:0", 1)).toContain("0 does not exist with address_base 1");
    expect(error("hr:65537", 1)).toContain("65537 is out of range (1..65536)");
    expect(error("hr:65536:float32", 1)).toContain("past the last register 65536");
  });
});

describe("formatAddress", () => {
  it("spells out type and order in the device's numbering", () => {
    expect(formatAddress(parsed("hr:20"))).toBe("hr:20:uint16:AB");
    expect(formatAddress(parsed("ir:3:float32:cdab"))).toBe("ir:3:float32:CDAB");
    expect(formatAddress(parsed("hr:5.3"))).toBe("hr:5.3");
    expect(formatAddress(parsed("coil:9"))).toBe("coil:9");
    expect(formatAddress(parsed("hr:0:string:5"))).toBe("hr:0:string:5:AB");
    expect(formatAddress(parsed("hr:10", 1), 1)).toBe("hr:10:uint16:AB");
    expect(formatAddress(parsed("hr:10", 1))).toBe("hr:9:uint16:AB");
  });

  const arbAddressText = fc.oneof(
    fc.tuple(fc.constantFrom("coil", "di"), fc.integer({ min: 1, max: 65535 })).map(([a, n]) => `${a}:${n}`),
    fc
      .tuple(fc.constantFrom("ir", "hr"), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 15 }))
      .map(([a, n, b]) => `${a}:${n}.${b}`),
    fc
      .tuple(fc.constantFrom("ir", "hr"), fc.integer({ min: 1, max: 65532 }), fc.constantFrom(...MODBUS_TYPES), fc.nat(3))
      .map(([a, n, t, o]) => {
        const orders = typeWords(t) === 1 ? ["AB", "BA"] : ["ABCD", "CDAB", "BADC", "DCBA"];
        return `${a}:${n}:${t}:${orders[o % orders.length]}`;
      }),
    fc
      .tuple(fc.constantFrom("ir", "hr"), fc.integer({ min: 1, max: 65000 }), fc.integer({ min: 1, max: 246 }), fc.constantFrom("AB", "BA"))
      .map(([a, n, len, o]) => `${a}:${n}:string:${len}:${o}`),
  );

  it("round trips through parseAddress in both numberings", () => {
    fc.assert(
      fc.property(arbAddressText, fc.constantFrom<AddressBase>(0, 1), (text, base) => {
        const a = parsed(text, base);
        expect(formatAddress(a, base)).toBe(text);
        expect(parsed(formatAddress(a, base), base)).toEqual(a);
      }),
    );
  });

  it("never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const r = parseAddress(text);
        if (r.ok) expect(r.address.offset + r.address.words - 1).toBeLessThanOrEqual(65535);
        else expect(r.error).toMatch(/^invalid Modbus address/);
      }),
    );
  });
});

describe("valueKind and isWritable", () => {
  it.each([
    ["coil:1", "bool"],
    ["hr:1.1", "bool"],
    ["hr:1:string:2", "string"],
    ["hr:1:float32", "float"],
    ["hr:1:float64", "float"],
    ["hr:1", "int"],
    ["ir:1:int64", "int"],
  ])("%s is %s", (text, kind) => {
    expect(valueKind(parsed(text))).toBe(kind);
  });

  it("only coils and holding registers are writable", () => {
    expect(isWritable("coil")).toBe(true);
    expect(isWritable("hr")).toBe(true);
    expect(isWritable("di")).toBe(false);
    expect(isWritable("ir")).toBe(false);
  });
});
