import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  RtuFrameAssembler,
  type RtuFrame,
  crc16,
  encodeRtuFrame,
  expectedRequestLength,
  hasValidCrc,
  malformRtuFrame,
  silenceMs,
} from "../../../simulators/modbus/rtu.js";

const h = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ""), "hex");

/** Reference CRC: the bitwise algorithm of the spec (Modbus over Serial Line 6.2.2), not the table. */
function crcBitwise(buf: Uint8Array): number {
  let crc = 0xffff;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

const good = (f: RtuFrame): string => (f.ok ? `${f.unit}:${f.pdu.toString("hex")}` : `bad:${f.adu.toString("hex")}`);

describe("crc16", () => {
  it("matches published frames", () => {
    // Read 10 holding registers from unit 1: 01 03 00 00 00 0A C5 CD
    expect(encodeRtuFrame(1, h("0300 0000 0a")).toString("hex")).toBe("01030000000ac5cd");
    // Read 1 holding register from unit 1: 01 03 00 00 00 01 84 0A
    expect(encodeRtuFrame(1, h("03 0000 0001")).toString("hex")).toBe("010300000001840a");
    expect(crc16(Buffer.alloc(0))).toBe(0xffff);
  });
  it("agrees with the bitwise algorithm", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(crc16(b)).toBe(crcBitwise(b));
      }),
    );
  });
  it("hasValidCrc spots any single-byte change", () => {
    const f = encodeRtuFrame(7, h("10 0001 0002 04 0001 0002"));
    expect(hasValidCrc(f)).toBe(true);
    for (let i = 0; i < f.length; i++) {
      const g = Buffer.from(f);
      g[i]! ^= 0x01;
      expect(hasValidCrc(g)).toBe(false);
    }
    expect(hasValidCrc(h("0103ff"))).toBe(false);
  });
});

describe("silenceMs", () => {
  it("is 3.5 characters of 11 bits, fixed 1.75 ms above 19200 baud", () => {
    expect(silenceMs(9600)).toBeCloseTo(4.0104, 3);
    expect(silenceMs(19200)).toBeCloseTo(2.005, 3);
    expect(silenceMs(115200)).toBe(1.75);
  });
});

describe("expectedRequestLength", () => {
  it("knows fixed and byte-counted requests and says when it cannot tell", () => {
    expect(expectedRequestLength(h("01"))).toBeUndefined();
    expect(expectedRequestLength(h("0103"))).toBe(8);
    expect(expectedRequestLength(h("0110000000"))).toBeUndefined();
    expect(expectedRequestLength(h("01100000000204"))).toBe(13);
    expect(expectedRequestLength(h("010f0000000a02"))).toBe(11);
    expect(expectedRequestLength(h("0117000000020000000204"))).toBe(17);
    expect(expectedRequestLength(h("012b0e"))).toBe("unknown");
  });
});

describe("RtuFrameAssembler", () => {
  const read = encodeRtuFrame(1, h("03 0000 0002"));
  const write = encodeRtuFrame(2, h("10 0010 0002 04 1111 2222"));

  it("assembles a frame from byte-by-byte reads", () => {
    const a = new RtuFrameAssembler(5);
    const out: RtuFrame[] = [];
    for (let i = 0; i < write.length; i++) out.push(...a.push(write.subarray(i, i + 1), i * 0.1));
    expect(out.map(good)).toEqual(["2:10001000020411112222"]);
    expect(a.pendingBytes).toBe(0);
  });

  it("splits several frames in one chunk", () => {
    const a = new RtuFrameAssembler(5);
    expect(a.push(Buffer.concat([read, write, read]), 0).map(good)).toEqual(["1:0300000002", "2:10001000020411112222", "1:0300000002"]);
  });

  it("emits the same frames however the stream is cut", () => {
    const stream = Buffer.concat([read, write, read, write]);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 10 }), (cuts) => {
        const a = new RtuFrameAssembler(5);
        const points = [0, ...cuts.sort((x, y) => x - y), stream.length];
        const out: RtuFrame[] = [];
        for (let i = 1; i < points.length; i++) out.push(...a.push(stream.subarray(points[i - 1], points[i]), 0));
        expect(out.map(good)).toEqual(["1:0300000002", "2:10001000020411112222", "1:0300000002", "2:10001000020411112222"]);
      }),
    );
  });

  it("discards a partial frame after a silence and starts over", () => {
    const a = new RtuFrameAssembler(4);
    expect(a.push(read.subarray(0, 5), 0)).toEqual([]);
    expect(a.push(read, 10).map(good)).toEqual(["1:0300000002"]);
    expect(a.discardedBytes).toBe(5);
  });

  it("reports a bad CRC and drops everything pending with it", () => {
    const a = new RtuFrameAssembler(4);
    const bad = Buffer.from(read);
    bad[7]! ^= 0xff;
    expect(a.push(Buffer.concat([bad, read]), 0).map(good)).toEqual([`bad:${bad.toString("hex")}`]);
    expect(a.pendingBytes).toBe(0);
  });

  it("ends a frame of unknown length at the silence (flush)", () => {
    const a = new RtuFrameAssembler(4);
    const custom = encodeRtuFrame(3, h("41 0102"));
    expect(a.push(custom, 0)).toEqual([]);
    expect(a.flush().map(good)).toEqual(["3:410102"]);
    expect(a.flush()).toEqual([]);
    a.push(read.subarray(0, 3), 0);
    expect(a.flush()).toEqual([]); // a known frame cut short is no frame
    expect(a.discardedBytes).toBe(3);
  });
});

describe("malformRtuFrame", () => {
  const pdu = h("03 02 1234");
  it("builds each malformation exactly", () => {
    const ok = encodeRtuFrame(1, pdu);
    expect(malformRtuFrame(1, pdu, "wrong_unit_id").toString("hex")).toBe(encodeRtuFrame(2, pdu).toString("hex"));
    expect(malformRtuFrame(1, pdu, "truncated").toString("hex")).toBe(ok.subarray(0, ok.length - 1).toString("hex"));
    const badCrc = malformRtuFrame(1, pdu, "bad_crc");
    expect(badCrc.subarray(0, 5)).toEqual(ok.subarray(0, 5));
    expect(badCrc.readUInt16LE(5)).toBe(ok.readUInt16LE(5) ^ 0xffff);
    expect(malformRtuFrame(1, pdu, "byte_count_mismatch").toString("hex")).toBe(encodeRtuFrame(1, h("0303 1234")).toString("hex"));
    expect(malformRtuFrame(1, pdu, "overlong").toString("hex")).toBe(encodeRtuFrame(1, h("0302 1234 00")).toString("hex"));
    expect(malformRtuFrame(1, pdu, "wrong_function_code").toString("hex")).toBe(encodeRtuFrame(1, h("0402 1234")).toString("hex"));
    expect(malformRtuFrame(1, pdu, "wrong_transaction_id")).toEqual(ok);
  });
});
