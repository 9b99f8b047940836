import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { handlePdu, malformPdu } from "../../../simulators/modbus/pdu.js";

const pdu = (...bytes: number[]): Buffer => Buffer.from(bytes);
const hex = (b: Buffer): string => b.toString("hex");

function bank(): RegisterBank {
  const b = new RegisterBank({ coils: 100, discreteInputs: 100, holdingRegisters: 100, inputRegisters: 100 });
  b.setBits("coil", 0, [1, 0, 1, 1, 0, 0, 0, 0, 1]);
  b.setBits("di", 10, [0, 1]);
  b.setRegisters("hr", 0, [0x1234, 0xabcd]);
  b.setRegisters("ir", 5, [7]);
  return b;
}

describe("handlePdu reads", () => {
  it("FC1 packs coils LSB first", () => {
    expect(hex(handlePdu(bank(), pdu(0x01, 0, 0, 0, 9)))).toBe("01020d01");
  });
  it("FC2 reads discrete inputs", () => {
    expect(hex(handlePdu(bank(), pdu(0x02, 0, 10, 0, 2)))).toBe("020102");
  });
  it("FC3 reads holding registers big-endian", () => {
    expect(hex(handlePdu(bank(), pdu(0x03, 0, 0, 0, 2)))).toBe("03041234abcd");
  });
  it("FC4 reads input registers", () => {
    expect(hex(handlePdu(bank(), pdu(0x04, 0, 5, 0, 1)))).toBe("04020007");
  });
});

describe("handlePdu writes", () => {
  it("FC5 writes one coil and echoes the request; other values are exception 03", () => {
    const b = bank();
    expect(hex(handlePdu(b, pdu(0x05, 0, 50, 0xff, 0)))).toBe("050032ff00");
    expect(b.getBit("coil", 50)).toBe(true);
    expect(hex(handlePdu(b, pdu(0x05, 0, 50, 0, 0)))).toBe("0500320000");
    expect(b.getBit("coil", 50)).toBe(false);
    expect(hex(handlePdu(b, pdu(0x05, 0, 50, 0x12, 0x34)))).toBe("8503");
  });
  it("FC6 writes one register and echoes", () => {
    const b = bank();
    expect(hex(handlePdu(b, pdu(0x06, 0, 9, 0xbe, 0xef)))).toBe("060009beef");
    expect(b.getRegister("hr", 9)).toBe(0xbeef);
  });
  it("FC15 writes coils from LSB-first bytes", () => {
    const b = bank();
    expect(hex(handlePdu(b, pdu(0x0f, 0, 20, 0, 10, 2, 0b1100_1101, 0b01)))).toBe("0f0014000a");
    expect(b.getBits("coil", 20, 10)).toEqual([true, false, true, true, false, false, true, true, true, false]);
  });
  it("FC16 writes registers", () => {
    const b = bank();
    expect(hex(handlePdu(b, pdu(0x10, 0, 30, 0, 2, 4, 0, 1, 0xff, 0xfe)))).toBe("10001e0002");
    expect(b.getRegisters("hr", 30, 2)).toEqual([1, 0xfffe]);
  });
  it("FC23 writes before it reads", () => {
    const b = bank();
    // read hr 0..2, write hr 1 := 0x0042
    expect(hex(handlePdu(b, pdu(0x17, 0, 0, 0, 3, 0, 1, 0, 1, 2, 0, 0x42)))).toBe("1706123400420000");
  });
  it("fires onWrite with area, address and count", () => {
    const b = bank();
    const seen: unknown[] = [];
    b.onWrite((...a) => seen.push(a));
    handlePdu(b, pdu(0x0f, 0, 20, 0, 3, 1, 0));
    handlePdu(b, pdu(0x06, 0, 9, 0, 1));
    handlePdu(b, pdu(0x03, 0, 9, 0, 1));
    expect(seen).toEqual([
      ["coil", 20, 3],
      ["hr", 9, 1],
    ]);
  });
});

describe("handlePdu exceptions", () => {
  it("01 for unsupported function codes", () => {
    expect(hex(handlePdu(bank(), pdu(0x2b, 0x0e, 1, 0)))).toBe("ab01");
    expect(hex(handlePdu(bank(), pdu(0x16, 0, 0, 0, 0, 0, 0)))).toBe("9601");
  });
  it("02 for ranges outside the bank", () => {
    const b = bank();
    expect(hex(handlePdu(b, pdu(0x03, 0, 99, 0, 2)))).toBe("8302");
    expect(hex(handlePdu(b, pdu(0x01, 0, 100, 0, 1)))).toBe("8102");
    expect(hex(handlePdu(b, pdu(0x06, 0, 100, 0, 1)))).toBe("8602");
    expect(hex(handlePdu(b, pdu(0x10, 0, 99, 0, 2, 4, 0, 1, 0, 2)))).toBe("9002");
    expect(hex(handlePdu(b, pdu(0x17, 0, 0, 0, 1, 0, 100, 0, 1, 2, 0, 0)))).toBe("9702");
    expect(b.getRegister("hr", 99)).toBe(0); // nothing written
  });
  it("03 for zero or too large quantities and inconsistent byte counts", () => {
    const b = new RegisterBank();
    expect(hex(handlePdu(b, pdu(0x03, 0, 0, 0, 0)))).toBe("8303");
    expect(hex(handlePdu(b, pdu(0x03, 0, 0, 0, 126)))).toBe("8303");
    expect(hex(handlePdu(b, pdu(0x03, 0, 0, 0, 125))).slice(0, 4)).toBe("03fa");
    expect(hex(handlePdu(b, pdu(0x01, 0, 0, 0x07, 0xd1)))).toBe("8103"); // 2001 bits
    expect(hex(handlePdu(b, pdu(0x02, 0, 0, 0x07, 0xd0))).slice(0, 4)).toBe("02fa"); // 2000 bits ok
    expect(hex(handlePdu(b, pdu(0x10, 0, 0, 0, 2, 3, 0, 1, 0)))).toBe("9003"); // byte count != 2*qty
    const tooMany = Array.from({ length: 248 }, () => 0);
    expect(hex(handlePdu(b, pdu(0x10, 0, 0, 0, 124, 248, ...tooMany)))).toBe("9003");
    expect(hex(handlePdu(b, pdu(0x0f, 0, 0, 0x07, 0xb1, 247, ...tooMany.slice(0, 247))))).toBe("8f03"); // 1969 bits
    expect(hex(handlePdu(b, pdu(0x03, 0, 0)))).toBe("8303"); // short PDU
  });
  it("03 comes before 02 (quantity is checked first)", () => {
    expect(hex(handlePdu(bank(), pdu(0x03, 0xff, 0xff, 0, 0)))).toBe("8303");
  });
});

describe("handlePdu never throws", () => {
  it("answers any PDU with a response or an exception of the same function", () => {
    const b = new RegisterBank({ coils: 300, discreteInputs: 300, holdingRegisters: 300, inputRegisters: 300 });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 253 }), (bytes) => {
        const res = handlePdu(b, Buffer.from(bytes));
        expect(res[0]! & 0x7f).toBe(bytes[0]! & 0x7f);
        if (res[0]! & 0x80) expect(res.length).toBe(2);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("malformPdu", () => {
  it("changes function code, length or byte count as documented", () => {
    const res = Buffer.from("03041234abcd", "hex");
    expect(hex(malformPdu(res, "wrong_function_code"))).toBe("04041234abcd");
    expect(hex(malformPdu(Buffer.from("8302", "hex"), "wrong_function_code"))).toBe("8402");
    expect(hex(malformPdu(res, "overlong"))).toBe("03041234abcd00");
    expect(hex(malformPdu(res, "byte_count_mismatch"))).toBe("03051234abcd");
    expect(hex(malformPdu(Buffer.from("0600010002", "hex"), "byte_count_mismatch"))).toBe("0600010002");
    expect(hex(malformPdu(res, "wrong_transaction_id"))).toBe("03041234abcd");
    expect(hex(res)).toBe("03041234abcd"); // input untouched
  });
});
