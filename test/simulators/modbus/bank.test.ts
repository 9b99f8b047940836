import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { RegisterBank, WORD_ORDERS } from "../../../simulators/modbus/bank.js";
import { isCellioError } from "../../../src/infra/errors.js";

describe("RegisterBank", () => {
  it("defaults to 65536 of each and takes custom sizes", () => {
    const b = new RegisterBank();
    expect(b.coils.length).toBe(65536);
    expect(b.inputRegisters.length).toBe(65536);
    const s = new RegisterBank({ coils: 10, discreteInputs: 20, holdingRegisters: 30, inputRegisters: 40 });
    expect([s.coils.length, s.discreteInputs.length, s.holdingRegisters.length, s.inputRegisters.length]).toEqual([10, 20, 30, 40]);
    expect(() => new RegisterBank({ coils: 70000 })).toThrow(/coils/);
  });

  it("sets and gets bits and registers in the right area", () => {
    const b = new RegisterBank({ coils: 8, discreteInputs: 8, holdingRegisters: 8, inputRegisters: 8 });
    b.setBit("coil", 3, true);
    b.setBit("di", 4, 1);
    expect(b.getBit("coil", 3)).toBe(true);
    expect(b.getBit("di", 3)).toBe(false);
    expect(b.getBits("di", 3, 2)).toEqual([false, true]);
    b.setRegister("hr", 1, 0xbeef);
    b.setRegisters("ir", 2, [1, 2, 3]);
    expect(b.getRegister("hr", 1)).toBe(0xbeef);
    expect(b.getRegisters("ir", 1, 4)).toEqual([0, 1, 2, 3]);
    expect(b.getRegister("ir", 1)).toBe(0);
  });

  it("stores negative 16-bit values as two's complement and rejects non-16-bit values", () => {
    const b = new RegisterBank({ holdingRegisters: 4 });
    b.setInt16("hr", 0, -2);
    expect(b.getRegister("hr", 0)).toBe(0xfffe);
    expect(b.getInt16("hr", 0)).toBe(-2);
    expect(() => b.setRegister("hr", 0, 65536)).toThrow(/16-bit/);
    expect(() => b.setRegister("hr", 0, 1.5)).toThrow(/16-bit/);
  });

  it("rejects addresses outside the bank with CELLIO_ERR_SIM", () => {
    const b = new RegisterBank({ coils: 4, holdingRegisters: 4 });
    expect(() => b.setBit("coil", 4, true)).toThrow(/coil:4/);
    expect(() => b.getRegisters("hr", 3, 2)).toThrow(/hr:3/);
    expect(() => b.setFloat32("hr", 3, 1)).toThrow(/hr:3/);
    try {
      b.getRegister("hr", -1);
      expect.unreachable();
    } catch (e) {
      expect(isCellioError(e, "CELLIO_ERR_SIM")).toBe(true);
    }
  });

  it("lays out 32-bit values in every word order (1.0f = 0x3F800000)", () => {
    const b = new RegisterBank({ holdingRegisters: 4 });
    const words: Record<string, number[]> = {
      ABCD: [0x3f80, 0x0000],
      CDAB: [0x0000, 0x3f80],
      BADC: [0x803f, 0x0000],
      DCBA: [0x0000, 0x803f],
    };
    for (const order of WORD_ORDERS) {
      b.setFloat32("hr", 0, 1.0, order);
      expect(b.getRegisters("hr", 0, 2), order).toEqual(words[order]);
    }
    b.setUInt32("hr", 0, 0x11223344, "CDAB");
    expect(b.getRegisters("hr", 0, 2)).toEqual([0x3344, 0x1122]);
    b.setInt32("hr", 0, -1, "DCBA");
    expect(b.getRegisters("hr", 0, 2)).toEqual([0xffff, 0xffff]);
    expect(b.getInt32("hr", 0, "DCBA")).toBe(-1);
  });

  it("round-trips 32-bit values in every order", () => {
    const b = new RegisterBank({ inputRegisters: 2 });
    fc.assert(
      fc.property(fc.constantFrom(...WORD_ORDERS), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.float({ noNaN: true }), (order, i, f) => {
        b.setInt32("ir", 0, i, order);
        expect(b.getInt32("ir", 0, order)).toBe(i);
        b.setUInt32("ir", 0, i >>> 0, order);
        expect(b.getUInt32("ir", 0, order)).toBe(i >>> 0);
        b.setFloat32("ir", 0, f, order);
        expect(Object.is(b.getFloat32("ir", 0, order), Math.fround(f))).toBe(true);
      }),
    );
  });

  it("packs strings two characters per register, high byte first, NUL padded", () => {
    const b = new RegisterBank({ holdingRegisters: 8 });
    b.setString("hr", 0, "JOB1A", 4);
    expect(b.getRegisters("hr", 0, 4)).toEqual([0x4a4f, 0x4231, 0x4100, 0x0000]);
    expect(b.getString("hr", 0, 4)).toBe("JOB1A");
    b.setString("hr", 4, "TOOLONG", 2);
    expect(b.getString("hr", 4, 2)).toBe("TOOL");
  });

  it("fires onWrite for client writes only, and stops after unsubscribe", () => {
    const b = new RegisterBank({ coils: 16, holdingRegisters: 16 });
    const seen: [string, number, number][] = [];
    const off = b.onWrite((area, addr, count) => seen.push([area, addr, count]));
    b.setBit("coil", 1, true);
    b.setRegister("hr", 1, 5);
    expect(seen).toEqual([]);
    b.clientWriteCoils(2, [1, 0, 1]);
    b.clientWriteRegisters(4, [7, 8]);
    expect(seen).toEqual([
      ["coil", 2, 3],
      ["hr", 4, 2],
    ]);
    expect(b.getBits("coil", 2, 3)).toEqual([true, false, true]);
    expect(b.getRegisters("hr", 4, 2)).toEqual([7, 8]);
    off();
    b.clientWriteRegisters(0, [1]);
    expect(seen).toHaveLength(2);
  });
});
