import { describe, expect, it } from "vitest";
import { pcapPackets, pcapStartMs, type WirePacket } from "./pcap.js";
import { analyzeWire, coil0Written } from "./wire.js";

/** A pcap file built by hand: Ethernet, IPv4, TCP (with 12 bytes of options, as Linux sends) or UDP. */
class PcapBuilder {
  private readonly records: Buffer[] = [];

  constructor(
    private readonly nano = true,
    private readonly link = 1,
  ) {}

  tcp(tMs: number, src: number, dst: number, payload: Buffer): this {
    const tcp = Buffer.alloc(32);
    tcp.writeUInt16BE(src, 0);
    tcp.writeUInt16BE(dst, 2);
    tcp[12] = 8 << 4; // 32-byte header
    return this.ip(tMs, 6, Buffer.concat([tcp, payload]));
  }

  udp(tMs: number, src: number, dst: number, payload: Buffer): this {
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(src, 0);
    udp.writeUInt16BE(dst, 2);
    udp.writeUInt16BE(8 + payload.length, 4);
    return this.ip(tMs, 17, Buffer.concat([udp, payload]));
  }

  /** A frame that is not IPv4 (an IPv6 ethertype). */
  other(tMs: number): this {
    const eth = Buffer.alloc(14 + 40);
    eth.writeUInt16BE(0x86dd, 12);
    return this.record(tMs, eth);
  }

  private ip(tMs: number, proto: number, l4: Buffer): this {
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + l4.length, 2);
    ip[9] = proto;
    const link = Buffer.alloc(this.link === 1 ? 14 : 16);
    link.writeUInt16BE(0x0800, this.link === 1 ? 12 : 14);
    return this.record(tMs, Buffer.concat([link, ip, l4]));
  }

  private record(tMs: number, data: Buffer): this {
    const h = Buffer.alloc(16);
    const base = 1_700_000_000; // seconds: the file's times are absolute
    const sec = base + Math.floor(tMs / 1000);
    const fracMs = tMs - Math.floor(tMs / 1000) * 1000;
    h.writeUInt32LE(sec, 0);
    h.writeUInt32LE(Math.round(fracMs * (this.nano ? 1e6 : 1e3)), 4);
    h.writeUInt32LE(data.length, 8);
    h.writeUInt32LE(data.length, 12);
    this.records.push(h, data);
    return this;
  }

  build(): Buffer {
    const g = Buffer.alloc(24);
    g.writeUInt32LE(this.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
    g.writeUInt16LE(2, 4);
    g.writeUInt16LE(4, 6);
    g.writeUInt32LE(65535, 16);
    g.writeUInt32LE(this.link, 20);
    return Buffer.concat([g, ...this.records]);
  }
}

/** An MBAP frame: transaction id, unit 1, the PDU. */
function mbap(tid: number, pdu: number[]): Buffer {
  const b = Buffer.alloc(7 + pdu.length);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(pdu.length + 1, 4);
  b[6] = 1;
  Buffer.from(pdu).copy(b, 7);
  return b;
}

const readDi = (tid: number): Buffer => mbap(tid, [2, 0, 0, 0, 2]);
const readIr = (tid: number): Buffer => mbap(tid, [4, 0, 0, 0, 2]);
const answer = (tid: number): Buffer => mbap(tid, [2, 1, 1]);
const writeCoil0 = (tid: number, on: boolean): Buffer => mbap(tid, [5, 0, 0, on ? 0xff : 0, 0]);

const DEV0 = 5020;
const DEV1 = 5021;
const MARKER = 6000;
const CLIENT = 40000;
const layout = { ports: [DEV0, DEV1], markerPort: MARKER };

describe("pcapPackets", () => {
  it("reads TCP and UDP packets with times relative to the first, in both precisions and both link types it knows", () => {
    for (const [nano, link] of [
      [true, 1],
      [false, 1],
      [true, 113],
    ] as const) {
      const file = new PcapBuilder(nano, link).tcp(1000.5, CLIENT, DEV0, readDi(1)).other(1001).udp(1012.25, 1, MARKER, Buffer.from([1])).build();
      const ps = [...pcapPackets(file)];
      expect(ps.map((p) => [p.proto, p.src, p.dst, p.length])).toEqual([
        ["tcp", CLIENT, DEV0, 12],
        ["udp", 1, MARKER, 1],
      ]);
      expect(ps[0]!.t).toBe(0);
      expect(ps[1]!.t).toBeCloseTo(11.75, 6);
      expect([...ps[0]!.payload]).toEqual([...readDi(1)]);
    }
  });

  it("keeps nanoseconds apart on absolute times (no float rounding to a quarter µs)", () => {
    const file = new PcapBuilder().tcp(5000, CLIENT, DEV0, readDi(1)).tcp(5000.000001, CLIENT, DEV0, readDi(2)).build();
    const [a, b] = [...pcapPackets(file)];
    expect(b!.t - a!.t).toBeCloseTo(0.000001, 9);
  });

  it("gives the first packet's absolute time, the zero of every packet's t", () => {
    const base = 1_700_000_000_000; // the builder's zero, ms since 1970
    for (const nano of [true, false]) {
      const file = new PcapBuilder(nano).tcp(2500.25, CLIENT, DEV0, readDi(1)).tcp(2600, CLIENT, DEV0, readDi(2)).build();
      expect(pcapStartMs(file)).toBeCloseTo(base + 2500.25, 3);
      expect([...pcapPackets(file)][1]!.t).toBeCloseTo(99.75, 6);
    }
    expect(pcapStartMs(new PcapBuilder().build())).toBeUndefined();
    expect(() => pcapStartMs(Buffer.alloc(24))).toThrow(/magic/);
  });

  it("stops at a record cut short and rejects a file that is not pcap", () => {
    const file = new PcapBuilder().tcp(0, CLIENT, DEV0, readDi(1)).tcp(1, CLIENT, DEV0, readDi(2)).build();
    expect([...pcapPackets(file.subarray(0, file.length - 5))]).toHaveLength(1);
    expect(() => [...pcapPackets(Buffer.alloc(24))]).toThrow(/magic/);
    expect(() => [...pcapPackets(Buffer.alloc(10))]).toThrow(/header/);
  });
});

describe("analyzeWire", () => {
  const packets = (b: PcapBuilder): Iterable<WirePacket> => pcapPackets(b.build());

  it("counts a poll's requests (within 3 ms) as one poll and times the polls' intervals per device", () => {
    const b = new PcapBuilder();
    for (const [i, t] of [0, 10.2, 20, 31.5].entries()) {
      b.tcp(t, CLIENT, DEV0, readDi(2 * i)).tcp(t + 0.8, CLIENT, DEV0, readIr(2 * i + 1)); // two reads, one poll
      b.tcp(t + 0.1, CLIENT + 1, DEV1, readDi(i));
    }
    const r = analyzeWire(packets(b), layout);
    expect(r.requests).toBe(12);
    expect(r.interval.count).toBe(6);
    expect(r.interval.max).toBeCloseTo(11.5, 6);
    expect(r.interval.p50).toBeCloseTo(10.2, 6); // 9.8, 9.8, 10.2, 10.2, 11.5, 11.5
    // 3 intervals over 31.5 ms on both devices; a device never polled has no rate
    const rates = analyzeWire(packets(b), { ...layout, ports: [DEV0, DEV1, DEV1 + 1] }).pollsPerSecond;
    expect(rates).toHaveLength(3);
    expect(rates[0]).toBeCloseTo(3000 / 31.5, 6);
    expect(rates[1]).toBeCloseTo(3000 / 31.5, 6);
    expect(rates[2]).toBe(0);
  });

  it("counts the poll intervals over 20 ms, and those a CPU stall overlapped", () => {
    const b = new PcapBuilder();
    // device 0: intervals 10, 25 (20 → 45), 10, 22 (55 → 77); device 1: 10, 10, 30 (20 → 50)
    for (const t of [0, 10, 20, 45, 55, 77]) b.tcp(t, CLIENT, DEV0, readDi(t));
    for (const t of [0, 10, 20, 50]) b.tcp(t + 0.1, CLIENT + 1, DEV1, readDi(t));
    const plain = analyzeWire(packets(b), { ...layout, pollFc: 2 });
    expect(plain.longIntervals).toBe(3);
    expect(plain.longDuringStall).toBeUndefined();
    // a stall 30 → 42 overlaps 20 → 45 and 20.1 → 50.1; one that ends at 55 does not reach into 55 → 77
    const stalls = [
      { at: 30, ms: 12 },
      { at: 53, ms: 2 },
    ];
    const r = analyzeWire(packets(b), { ...layout, pollFc: 2 }, stalls);
    expect([r.longIntervals, r.longDuringStall]).toEqual([3, 2]);
    expect(analyzeWire(packets(b), { ...layout, pollFc: 2 }, [{ at: 60, ms: 5 }]).longDuringStall).toBe(1);
    expect(analyzeWire(packets(b), { ...layout, pollFc: 2 }, []).longDuringStall).toBe(0);
  });

  it("with a pollFc, a poll is a request with that function code, however late its other reads follow", () => {
    const b = new PcapBuilder();
    // device 0: its second read 4.5 ms late in the second poll (two polls by the time rule), and a coil write
    for (const [i, t] of [0, 10, 20, 30].entries()) {
      b.tcp(t, CLIENT, DEV0, readDi(2 * i)).tcp(t + (i === 1 ? 4.5 : 0.8), CLIENT, DEV0, readIr(2 * i + 1));
      if (i === 2) b.tcp(25, CLIENT, DEV0, mbap(99, [5, 0, 0, 0xff, 0]));
    }
    const byTime = analyzeWire(packets(b), layout);
    expect(byTime.interval.count).toBe(5);
    const byFc = analyzeWire(packets(b), { ...layout, pollFc: 2 });
    expect(byFc.interval.count).toBe(3);
    expect([byFc.interval.p50, byFc.interval.max]).toEqual([10, 10]);
    expect(byFc.pollsPerSecond[0]).toBeCloseTo(100, 6);
    expect(byTime.pollsPerSecond[0]).toBeGreaterThan(100);
  });

  it("reads every frame of a segment that carries several (pipelined requests)", () => {
    const b = new PcapBuilder().tcp(0, CLIENT, DEV0, Buffer.concat([readDi(1), readIr(2)])).tcp(0.4, DEV0, CLIENT, Buffer.concat([answer(1), answer(2)]));
    const r = analyzeWire(packets(b), layout);
    expect(r.requests).toBe(2);
    expect(r.answers).toBe(2);
    expect(r.answer.max).toBeCloseTo(0.4, 6);
  });

  it("matches answers to requests by device and transaction id, and ignores answers nobody asked for", () => {
    const b = new PcapBuilder()
      .tcp(0, CLIENT, DEV0, readDi(7))
      .tcp(0.1, CLIENT + 1, DEV1, readDi(7))
      .tcp(0.3, DEV1, CLIENT + 1, answer(7))
      .tcp(0.9, DEV0, CLIENT, answer(7))
      .tcp(1, DEV0, CLIENT, answer(8));
    const r = analyzeWire(packets(b), layout);
    expect(r.answers).toBe(2);
    expect(r.answer.p50).toBeCloseTo(0.2, 6);
    expect(r.answer.max).toBeCloseTo(0.9, 6);
  });

  it("times a flip to the write that mirrors it, in two parts, and not to a write of the other value", () => {
    const b = new PcapBuilder()
      .tcp(0, CLIENT, DEV0, readDi(1))
      .udp(4, 1, MARKER, Buffer.from([1])) // flip to on
      .tcp(10, CLIENT, DEV0, readDi(2)) // the first poll after it
      .tcp(10.5, DEV0, CLIENT, answer(2))
      .tcp(11, CLIENT, DEV0, writeCoil0(3, false)) // a write of the old value does not mirror it
      .tcp(11.9, DEV0, CLIENT, answer(3)) // the last answer before the write
      .tcp(12.5, CLIENT, DEV0, writeCoil0(4, true))
      .tcp(13, CLIENT, DEV0, writeCoil0(5, true)); // counted once
    const r = analyzeWire(packets(b), layout);
    expect(r.mirror.count).toBe(1);
    expect(r.mirror.max).toBeCloseTo(8.5, 6);
    expect(r.mirrorWait.max).toBeCloseTo(6, 6);
    expect(r.mirrorCycle.max).toBeCloseTo(2.5, 6);
    expect(r.reaction.max).toBeCloseTo(0.6, 6);
  });

  it("knows a coil-0 write by FC05 and FC15, and nothing else", () => {
    expect(coil0Written(Buffer.from([5, 0, 0, 0xff, 0]))).toBe(true);
    expect(coil0Written(Buffer.from([5, 0, 0, 0, 0]))).toBe(false);
    expect(coil0Written(Buffer.from([5, 0, 1, 0xff, 0]))).toBeUndefined();
    expect(coil0Written(Buffer.from([15, 0, 0, 0, 3, 1, 0b101]))).toBe(true);
    expect(coil0Written(Buffer.from([15, 0, 0, 0, 3, 1, 0b110]))).toBe(false);
    expect(coil0Written(Buffer.from([15, 0, 1, 0, 3, 1, 0b111]))).toBeUndefined();
    expect(coil0Written(Buffer.from([6, 0, 0, 0, 1]))).toBeUndefined();
  });
});
