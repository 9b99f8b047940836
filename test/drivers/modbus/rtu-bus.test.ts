/**
 * The RTU bus: the fair queue and response framing as pure code; the bus
 * itself on a real pseudo-terminal pair (socat) against the simulator's RTU
 * slave (`RtuSession`), which records when each request frame arrived and
 * when each answer left; and the modbus-rtu config checks.
 */
import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { SerialPort } from "serialport";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { type Decision, FaultInjector, type ServerStats, newStats, type Malformation } from "../../../simulators/modbus/faults.js";
import { encodeRtuFrame } from "../../../simulators/modbus/rtu.js";
import { RtuSession } from "../../../simulators/modbus/rtu-server.js";
import { FairQueue, RtuBus, examineResponse, expectedResponseLength, frameLength, type RtuBusOptions } from "../../../src/drivers/modbus/rtu-bus.js";
import { busSettingsOf, defaultInterFrameGapMs, type RtuBusSettings } from "../../../src/drivers/modbus/rtu-config.js";
import { ModbusRtuTransport, RtuBusRegistry } from "../../../src/drivers/modbus/transport-rtu.js";
import { loadConfigText } from "../../../src/config/load.js";
import { ConfigError } from "../../../src/config/issues.js";
import { CellioError } from "../../../src/infra/errors.js";
import { hasSocat, openPtyPair } from "../../helpers/pty.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- pure ----------------------------------------------------------------------------

describe("FairQueue", () => {
  it("is FIFO per key and round-robin between keys", () => {
    const q = new FairQueue<string>(100);
    for (const x of ["a1", "a2", "a3", "a4", "a5"]) q.push(1, x);
    q.push(2, "b1");
    q.push(3, "c1");
    q.push(2, "b2");
    expect(q.drain()).toEqual(["a1", "b1", "c1", "a2", "b2", "a3", "a4", "a5"]);
    expect(q.size).toBe(0);
  });

  it("serves a newcomer within one turn of every waiting key, however long another key's backlog", () => {
    const q = new FairQueue<string>(10_000);
    for (let i = 0; i < 1000; i++) q.push(1, `a${i}`);
    q.shift();
    q.push(2, "b");
    expect([q.shift(), q.shift()]).toEqual(["a1", "b"]);
  });

  it("between two turns of one key, every other waiting key is served exactly once (any pushes)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 60 }), (keys) => {
        const q = new FairQueue<{ key: number; seq: number }>(1000);
        keys.forEach((key, seq) => q.push(key, { key, seq }));
        const out = q.drain();
        expect(out).toHaveLength(keys.length);
        const left = new Map<number, number>();
        for (const k of keys) left.set(k, (left.get(k) ?? 0) + 1);
        for (let i = 0; i < out.length; i++) {
          const k = out[i]!.key;
          const waiting = [...left].filter(([key, n]) => key !== k && n > 0).map(([key]) => key);
          left.set(k, left.get(k)! - 1);
          const next = out.findIndex((x, j) => j > i && x.key === k);
          if (next < 0) continue;
          const between = out.slice(i + 1, next).map((x) => x.key);
          expect(between.sort()).toEqual(waiting.sort());
        }
        // FIFO inside each key.
        for (const k of new Set(keys)) {
          const seqs = out.filter((x) => x.key === k).map((x) => x.seq);
          expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        }
      }),
    );
  });

  it("is bounded, and removes from the middle without losing anyone's turn", () => {
    const q = new FairQueue<string>(3);
    expect(q.push(1, "a1")).toBe(true);
    expect(q.push(2, "b1")).toBe(true);
    expect(q.push(1, "a2")).toBe(true);
    expect(q.push(3, "c1")).toBe(false);
    expect(q.size).toBe(3);
    expect(q.remove(2, "b1")).toBe(true);
    expect(q.remove(2, "b1")).toBe(false);
    expect(q.push(3, "c1")).toBe(true);
    expect(q.drain()).toEqual(["a1", "c1", "a2"]);
  });
});

describe("response frames", () => {
  const pdu = (...b: number[]): Buffer => Buffer.from(b);
  const ok = encodeRtuFrame(3, pdu(0x03, 4, 0x12, 0x34, 0x56, 0x78));

  it("a whole answer with a good CRC is a frame, as soon as its length is in", () => {
    expect(examineResponse(3, 3, ok, ok.length)).toEqual({ kind: "frame", need: 9 });
    expect(examineResponse(3, 3, ok, 2)).toEqual({ kind: "partial" });
    expect(examineResponse(3, 3, ok, 5)).toEqual({ kind: "partial", need: 9 });
    const exc = encodeRtuFrame(3, pdu(0x83, 0x02));
    expect(examineResponse(3, 3, exc, exc.length)).toEqual({ kind: "frame", need: 5 });
  });

  it("another unit id or function code is not this request's answer; a bad CRC waits for the silence", () => {
    expect(examineResponse(4, 3, ok, ok.length)).toMatchObject({ kind: "foreign", reason: "answer from unit 3, expected unit 4" });
    expect(examineResponse(3, 4, ok, ok.length)).toMatchObject({ kind: "foreign", reason: "function code 0x03, expected 0x04 or 0x84" });
    const bad = Buffer.from(ok);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    expect(examineResponse(3, 3, bad, bad.length)).toEqual({ kind: "bad_crc", need: 9 });
  });

  it("measures a whole valid frame of any unit, to skip a late answer exactly", () => {
    const other = encodeRtuFrame(9, pdu(0x01, 1, 0x05));
    const both = Buffer.concat([other, ok]);
    expect(frameLength(both, both.length)).toBe(other.length);
    expect(frameLength(both, 3)).toBe(0); // not all in yet
    const bad = Buffer.from(other);
    bad[1] = 0x42; // no such function code
    expect(frameLength(bad, bad.length)).toBe(-1);
  });

  it("knows the length of every good answer", () => {
    expect(expectedResponseLength({ fc: 1, start: 0, count: 9 })).toBe(7);
    expect(expectedResponseLength({ fc: 4, start: 0, count: 125 })).toBe(255);
    expect(expectedResponseLength({ fc: 16, start: 0, values: [1, 2] })).toBe(8);
  });
});

// ---- on a pty pair ---------------------------------------------------------------------

/** Records every request the slave decides on (unit, arrival time), then decides as usual. */
class RecordingFaults extends FaultInjector {
  constructor(private readonly events: SlaveEvent[]) {
    super({ random: seeded(7) });
  }
  override decide(unit: number): Decision {
    this.events.push({ kind: "req", unit, at: performance.now() });
    return super.decide(unit);
  }
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

interface SlaveEvent {
  readonly kind: "req" | "resp";
  readonly unit: number;
  readonly at: number;
}

interface Slave {
  readonly banks: Map<number, RegisterBank>;
  readonly faults: FaultInjector;
  readonly stats: ServerStats;
  readonly events: SlaveEvent[];
  requests(unit: number): number;
}

/** The simulator's RTU slave on one end of a pty pair, recording request arrivals and answer departures. */
async function startSlave(path: string, units: number[]): Promise<Slave> {
  const port = new SerialPort({ path, baudRate: 19200, parity: "even", autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  const banks = new Map(units.map((u) => [u, new RegisterBank()]));
  const events: SlaveEvent[] = [];
  const faults = new RecordingFaults(events);
  const stats = newStats();
  const session = new RtuSession({
    lookup: (u) => banks.get(u),
    banks: () => banks.values(),
    faults,
    stats,
    silenceMs: 5,
    send: (f) => {
      events.push({ kind: "resp", unit: f[0]!, at: performance.now() });
      port.write(f);
    },
  });
  port.on("data", (c: Buffer) => session.onData(c));
  cleanups.push(async () => {
    session.close();
    await new Promise<void>((resolve) => port.close(() => resolve()));
  });
  return { banks, faults, stats, events, requests: (u) => events.filter((e) => e.kind === "req" && e.unit === u).length };
}

interface Rig {
  readonly bus: RtuBus;
  readonly slave: Slave;
  readonly lost: string[];
}

/** A pty pair, the slave (units 1 and 2) on one end, an attached bus on the other. */
async function rig(settings: Partial<RtuBusSettings> = {}, opts: RtuBusOptions = {}): Promise<Rig> {
  const pty = await openPtyPair();
  cleanups.push(() => pty.close());
  const slave = await startSlave(pty.a, [1, 2]);
  const bus = new RtuBus({ path: pty.b, baudRate: 19200, parity: "even", dataBits: 8, stopBits: 1, interFrameGapMs: 2, ...settings }, opts);
  const lost: string[] = [];
  const member = { onBusLost: (why: string) => void lost.push(why) };
  await bus.attach(member);
  cleanups.push(() => bus.detach(member));
  return { bus, slave, lost };
}

const read = (bus: RtuBus, unit: number, start = 0, count = 2, timeoutMs = 200): Promise<number[]> =>
  bus.request(unit, { fc: 3, start, count }, timeoutMs);

async function failure(p: Promise<unknown>): Promise<CellioError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CellioError) return e;
    throw e;
  }
  throw new Error("expected the request to fail");
}

const SOCAT = hasSocat();
if (!SOCAT) console.warn("RTU bus tests on a pty skipped: socat is not on PATH (apt-get install socat)");

describe.skipIf(!SOCAT)("RtuBus on a pty pair", () => {
  it("reads and writes two units on one bus", async () => {
    const { bus, slave } = await rig();
    slave.banks.get(1)!.setRegisters("hr", 0, [11, 12]);
    slave.banks.get(2)!.setRegisters("hr", 0, [21, 22]);
    slave.banks.get(2)!.setBits("coil", 4, [true, false, true]);
    const [a, b, c] = await Promise.all([read(bus, 1), read(bus, 2), bus.request(2, { fc: 1, start: 4, count: 3 }, 200)]);
    expect(a).toEqual([11, 12]);
    expect(b).toEqual([21, 22]);
    expect(c).toEqual([true, false, true]);
    await bus.request(1, { fc: 16, start: 30, values: [7, 8, 9] }, 200);
    await bus.request(2, { fc: 5, start: 9, value: true }, 200);
    expect(slave.banks.get(1)!.getRegisters("hr", 30, 3)).toEqual([7, 8, 9]);
    expect(slave.banks.get(2)!.getBit("coil", 9)).toBe(true);
    expect(bus.stats).toMatchObject({ requests: 5, responses: 5, timeouts: 0, frameErrors: 0 });
  });

  it("puts one request on the line at a time, each after the inter-frame gap since the previous answer", async () => {
    const GAP = 15;
    const { bus, slave } = await rig({ interFrameGapMs: GAP });
    slave.faults.set({ kind: "latency", ms: 3 }); // room for a second request to sneak onto the line, if it could
    const all = Array.from({ length: 8 }, (_, i) => read(bus, 1 + (i % 2), i));
    await Promise.all(all);
    const ev = slave.events;
    expect(ev.map((e) => e.kind)).toEqual(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? "req" : "resp")));
    for (let i = 2; i < ev.length; i += 2) {
      // Both times are this process's clock: the request left the master at least GAP after the answer reached it.
      expect(ev[i]!.at - ev[i - 1]!.at, `gap before request ${i / 2}`).toBeGreaterThanOrEqual(GAP - 0.01);
    }
  });

  it("serves unit ids round-robin, so one unit's backlog does not hold back another", async () => {
    const { bus, slave } = await rig();
    await sleep(20); // the line has been quiet since the open: the first request goes out at once
    const all = [...Array.from({ length: 6 }, () => read(bus, 1)), read(bus, 2), read(bus, 2)];
    await Promise.all(all);
    const order = slave.events.filter((e) => e.kind === "req").map((e) => e.unit);
    expect(order).toEqual([1, 1, 2, 1, 2, 1, 1, 1]); // the first went out at once; then turns
  });

  it("a dead unit costs each request its own timeout from sending, never the others' (queue time is not counted)", async () => {
    const { bus, slave } = await rig();
    slave.faults.set({ kind: "noAnswer" }, { unit: 2 });
    slave.banks.get(1)!.setRegisters("hr", 0, [5, 6]);
    await sleep(20); // the first request goes out at once, the others wait their turn
    const dead = [read(bus, 2, 0, 2, 200), read(bus, 2, 0, 2, 200), read(bus, 2, 0, 2, 200)].map((p) => failure(p));
    // Waits behind two dead requests (~2 x 210 ms), far longer than its own 150 ms timeout: still answered.
    const alive = read(bus, 1, 0, 2, 150);
    await expect(alive).resolves.toEqual([5, 6]);
    for (const e of await Promise.all(dead)) {
      expect(e.code).toBe("CELLIO_ERR_MODBUS_TIMEOUT");
      expect(e.message).toMatch(/unit 2 FC3 0\+2: no answer within 200 ms/);
    }
    expect(slave.events.filter((e) => e.kind === "req").map((e) => e.unit)).toEqual([2, 2, 1, 2]);
    expect(bus.unitStats(2)).toMatchObject({ requests: 3, timeouts: 3 });
    expect(bus.unitStats(1)).toMatchObject({ requests: 1, timeouts: 0 });
  });

  it("a garbled answer fails its request with CELLIO_ERR_MODBUS_FRAME and the next transaction is fine", async () => {
    const { bus, slave } = await rig();
    slave.banks.get(1)!.setRegisters("hr", 0, [0x1234, 0x5678]);
    const cases: [Malformation | "garbage", RegExp][] = [
      ["bad_crc", /CRC mismatch: received 0x[0-9a-f]{4}, computed 0x[0-9a-f]{4}/],
      ["truncated", /truncated response: 8 of 9 bytes/],
      ["overlong", /over-long response: 10 bytes with a valid CRC, 9 expected/],
      ["byte_count_mismatch", /frame of 9 bytes has a valid CRC but its header announces 10/],
      ["garbage", /./],
    ];
    for (const [kind, reason] of cases) {
      if (kind === "garbage") slave.faults.set({ kind: "garbage" }, { unit: 1, count: 1 });
      else slave.faults.set({ kind: "malform", malformation: kind }, { unit: 1, count: 1 });
      const e = await failure(read(bus, 1));
      expect(e.code, kind).toBe("CELLIO_ERR_MODBUS_FRAME");
      expect(e.message, kind).toMatch(reason);
      expect(e.message, kind).toContain("unit 1 FC3 0+2");
      await expect(read(bus, 1), `the request after ${kind}`).resolves.toEqual([0x1234, 0x5678]);
    }
    expect(bus.unitStats(1).frameErrors).toBe(cases.length);
  });

  it("a valid frame that is not the answer (other unit id or function) is skipped: the request times out saying so", async () => {
    const { bus, slave } = await rig();
    slave.banks.get(1)!.setRegisters("hr", 0, [9, 9]);
    for (const [m, from] of [["wrong_unit_id", "unit 2 FC3"], ["wrong_function_code", "unit 1 FC4"]] as const) {
      slave.faults.set({ kind: "malform", malformation: m }, { unit: 1, count: 1 });
      const e = await failure(read(bus, 1, 0, 2, 150));
      expect(e.code, m).toBe("CELLIO_ERR_MODBUS_TIMEOUT");
      expect(e.message, m).toContain(`discarded meanwhile 1 valid frame(s), the last from ${from}`);
      await expect(read(bus, 1), `the request after ${m}`).resolves.toEqual([9, 9]);
    }
  });

  it("a late answer arriving during the next transaction is skipped, and that transaction gets its own answer", async () => {
    const { bus, slave } = await rig();
    slave.banks.get(1)!.setRegisters("hr", 0, [1, 2]);
    slave.banks.get(2)!.setRegisters("hr", 0, [3, 4]);
    // Unit 2 answers 300 ms late; unit 1's request goes out after unit 2's 20 ms timeout and is
    // answered right behind the late frame (the simulator keeps its answers in order). The late
    // answer is far behind the timeout: a timeout that fires late because this thread was stalled
    // waits a grace period for the port's pending bytes (rtu-line.ts), and at 60 ms a stall of a CI
    // machine once let unit 2's answer count.
    slave.faults.set({ kind: "latency", ms: 300 }, { unit: 2, count: 1 });
    const late = failure(read(bus, 2, 0, 2, 20));
    const next = read(bus, 1, 0, 2, 1000);
    expect((await late).code).toBe("CELLIO_ERR_MODBUS_TIMEOUT");
    await expect(next).resolves.toEqual([1, 2]);
    expect(bus.stats.stale).toBe(1);
    expect(bus.stats.frameErrors).toBe(0);
  });

  it("an exception answer is CELLIO_ERR_MODBUS_EXCEPTION with its code", async () => {
    const { bus, slave } = await rig();
    slave.faults.set({ kind: "exception", code: 2 }, { unit: 2, count: 1 });
    const e = await failure(read(bus, 2));
    expect(e.code).toBe("CELLIO_ERR_MODBUS_EXCEPTION");
    expect(e.details).toMatchObject({ exception: 2, unit: 2, fc: 3 });
    expect(e.message).toContain("illegal data address");
    await expect(read(bus, 2)).resolves.toEqual([0, 0]);
  });

  it("a late answer after a timeout is discarded as stale, not taken for the next request's", async () => {
    const { bus, slave } = await rig();
    slave.banks.get(1)!.setRegisters("hr", 0, [1, 1]);
    slave.faults.set({ kind: "latency", ms: 300 }, { unit: 1, count: 1 }); // far behind the timeout, as above
    expect((await failure(read(bus, 1, 0, 2, 20))).code).toBe("CELLIO_ERR_MODBUS_TIMEOUT");
    // The late answer arrives while the line is idle.
    for (const t0 = performance.now(); bus.stats.stale === 0 && performance.now() - t0 < 3000; ) await sleep(5);
    expect(bus.stats.stale).toBe(1);
    slave.banks.get(1)!.setRegisters("hr", 0, [2, 2]);
    await expect(read(bus, 1)).resolves.toEqual([2, 2]);
  });

  it("bounds the queue and cancels waiting requests of a closed unit without sending them", async () => {
    const { bus, slave } = await rig({}, { maxQueue: 2 });
    slave.faults.set({ kind: "noAnswer" }, { unit: 1 });
    await sleep(20);
    const ac = new AbortController();
    const onLine = failure(bus.request(1, { fc: 3, start: 0, count: 1 }, 300, ac.signal));
    const cancelled = failure(bus.request(1, { fc: 3, start: 1, count: 1 }, 300, ac.signal));
    slave.banks.get(2)!.setRegisters("hr", 0, [3, 4]);
    const other = read(bus, 2, 0, 2, 300);
    const full = await failure(read(bus, 2));
    expect(full.code).toBe("CELLIO_ERR_MODBUS_QUEUE_FULL");
    expect(bus.queued).toBe(2);
    ac.abort();
    expect((await onLine).message).toMatch(/cancelled while on the line/);
    expect((await cancelled).message).toMatch(/cancelled; not sent/);
    expect(bus.queued).toBe(1);
    // The other unit's request goes out once the cancelled one's timeout has freed the line.
    await expect(other).resolves.toEqual([3, 4]);
    expect(slave.events.filter((e) => e.kind === "req").map((e) => e.unit)).toEqual([1, 2]);
    expect(bus.unitStats(1).timeouts).toBe(1);
  });
});

describe.skipIf(!SOCAT)("ModbusRtuTransport", () => {
  it("units share the port: closing one unit leaves the others running; the last one closes the port", async () => {
    const pty = await openPtyPair();
    cleanups.push(() => pty.close());
    const slave = await startSlave(pty.a, [1, 2]);
    slave.banks.get(2)!.setRegisters("ir", 4, [42]);
    const reg = new RtuBusRegistry();
    const settings = { path: pty.b, baudRate: 19200, parity: "even" as const, dataBits: 8 as const, stopBits: 1 as const, interFrameGapMs: 2 };
    const t1 = new ModbusRtuTransport(reg.bus(settings), 1);
    const t2 = new ModbusRtuTransport(reg.bus(settings), 2);
    expect(t1.bus).toBe(t2.bus);
    cleanups.push(() => t1.close(), () => t2.close());
    await Promise.all([t1.connect(), t2.connect()]);
    expect(t1.bus.stats.opens).toBe(1);
    await t1.close();
    expect(t1.isOpen).toBe(false);
    expect(t2.isOpen).toBe(true);
    await expect(t2.read(2, 4, 4, 1, 200)).resolves.toEqual([42]);
    await expect(t1.read(1, 3, 0, 1, 200)).rejects.toMatchObject({ code: "CELLIO_ERR_MODBUS_CLOSED" });
    await t2.write(2, 6, 7, [99], 200);
    expect(slave.banks.get(2)!.getRegister("hr", 7)).toBe(99);
    await t2.close();
    expect(t2.bus.isOpen).toBe(false);
    await t1.connect();
    expect(t1.bus.stats.opens).toBe(2);
  });

  it("a port that cannot be opened is CELLIO_ERR_MODBUS_CONNECT", async () => {
    const bus = new RtuBus({ path: "/nonexistent/ttyCELLIO", baudRate: 9600, parity: "none", dataBits: 8, stopBits: 2, interFrameGapMs: 4 });
    const t = new ModbusRtuTransport(bus, 1);
    const e = await failure(t.connect());
    expect(e.code).toBe("CELLIO_ERR_MODBUS_CONNECT");
    expect(e.message).toContain("/nonexistent/ttyCELLIO");
    expect(t.isOpen).toBe(false);
  });

  it("the loss of the port (socat gone) fails the request and tells every unit", async () => {
    const pty = await openPtyPair();
    cleanups.push(() => pty.close());
    await startSlave(pty.a, [1, 2]);
    const bus = new RtuBusRegistry().bus({ path: pty.b, baudRate: 19200, parity: "even", dataBits: 8, stopBits: 1, interFrameGapMs: 2 });
    const units = [new ModbusRtuTransport(bus, 1), new ModbusRtuTransport(bus, 2)];
    const closed: number[] = [];
    for (const u of units) {
      u.onClose(() => closed.push(u.unit));
      cleanups.push(() => u.close());
      await u.connect();
    }
    await pty.close();
    // The port notices at the latest when the request is written (EIO); sometimes sooner, on its own.
    const e = await failure(units[0]!.read(1, 3, 0, 1, 5000));
    expect(e.code).toBe("CELLIO_ERR_MODBUS_CLOSED");
    expect(e.message).toContain(pty.b);
    expect(closed.sort()).toEqual([1, 2]);
    expect(units.map((u) => u.isOpen)).toEqual([false, false]);
    expect(bus.stats.losses).toBe(1);
    // The drivers reconnect with backoff; the port is gone, so that fails (and says which port).
    expect((await failure(units[1]!.connect())).code).toBe("CELLIO_ERR_MODBUS_CONNECT");
  });
});

// ---- config ----------------------------------------------------------------------------

function cell(devices: string): string {
  return `version: 1
cell: { id: rtu }
cycle: { period_ms: 100, input_budget_ms: 50, output_budget_ms: 20 }
devices:
${devices}`;
}

function issuesOf(yaml: string): string[] {
  try {
    loadConfigText(yaml, "c.yaml");
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.line}: ${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

describe("modbus-rtu config", () => {
  it("fills in the Modbus defaults: 19200 baud, even parity, 8 data bits, 1 stop bit, unit 1, gap 3.5 characters", () => {
    const { config } = loadConfigText(cell(`  drive:\n    protocol: modbus-rtu\n    serial: { path: /dev/ttyUSB0 }\n    points: { speed: { address: "hr:1" } }\n`));
    const dev = config.devices["drive"]!;
    if (dev.protocol !== "modbus-rtu") throw new Error("not rtu");
    expect(dev.serial).toEqual({ path: "/dev/ttyUSB0", baud_rate: 19200, parity: "even", data_bits: 8, stop_bits: 1 });
    expect(dev.unit_id).toBe(1);
    const s = busSettingsOf(dev);
    expect(s.interFrameGapMs).toBeCloseTo((3.5 * 11 * 1000) / 19200, 6); // 11 bits: start, 8 data, parity, stop
    expect(defaultInterFrameGapMs({ baudRate: 115200, dataBits: 8, parity: "even", stopBits: 1 })).toBe(1.75);
    expect(defaultInterFrameGapMs({ baudRate: 9600, dataBits: 8, parity: "none", stopBits: 2 })).toBeCloseTo(4.0104, 3);
  });

  it("devices on one path with different line settings: an error at the second, naming the first and its line", () => {
    const issues = issuesOf(
      cell(`  a:
    protocol: modbus-rtu
    serial: { path: /dev/ttyUSB0, baud_rate: 9600 }
    points: { x: { address: "hr:1" } }
  b:
    protocol: modbus-rtu
    unit_id: 2
    serial: { path: /dev/ttyUSB0, parity: none, stop_bits: 2 }
    points: { y: { address: "hr:1" } }
`),
    );
    expect(issues).toEqual([
      "12: devices.b.serial: serial port /dev/ttyUSB0 is also used by device a (line 7) with other settings: baud_rate 19200 here, 9600 on a, parity none here, even on a, stop_bits 2 here, 1 on a; devices on one bus must use the same line settings",
    ]);
  });

  it("two devices with the same unit id on one path: an error; on different paths: fine", () => {
    const dev = (n: string, path: string): string =>
      `  ${n}:\n    protocol: modbus-rtu\n    serial: { path: ${path} }\n    unit_id: 7\n    points: { x: { address: "coil:1" } }\n`;
    expect(issuesOf(cell(dev("a", "/dev/ttyS0") + dev("b", "/dev/ttyS0")))).toEqual([
      "13: devices.b.unit_id: unit id 7 on /dev/ttyS0 is already device a (line 5); every device on one bus needs its own unit id",
    ]);
    expect(issuesOf(cell(dev("a", "/dev/ttyS0") + dev("b", "/dev/ttyS1")))).toEqual([]);
  });

  it("refuses 7 data bits (Modbus ASCII) and unit ids outside 1..247", () => {
    const seven = issuesOf(cell(`  a:\n    protocol: modbus-rtu\n    serial: { path: /dev/ttyS0, data_bits: 7 }\n    points: {}\n`));
    expect(seven).toEqual(["7: devices.a.serial.data_bits: Modbus RTU sends 8 data bits per character (7 is Modbus ASCII, which cellio does not speak)"]);
    const unit = issuesOf(cell(`  a:\n    protocol: modbus-rtu\n    serial: { path: /dev/ttyS0 }\n    unit_id: 248\n    points: {}\n`));
    expect(unit).toHaveLength(1);
    expect(unit[0]).toMatch(/^8: devices\.a\.unit_id: /);
  });

  it("the bus of a path takes the largest gap any of its devices asks for", () => {
    const reg = new RtuBusRegistry();
    const base = { path: "/dev/ttyX", baudRate: 19200, parity: "even" as const, dataBits: 8 as const, stopBits: 1 as const };
    const bus = reg.bus({ ...base, interFrameGapMs: 2 });
    expect(reg.bus({ ...base, interFrameGapMs: 10 })).toBe(bus);
    reg.bus({ ...base, interFrameGapMs: 4 });
    expect(bus.interFrameGapMs).toBe(10);
    expect(() => reg.bus({ ...base, baudRate: 9600, interFrameGapMs: 2 })).toThrow(/used with 19200 8E1 and with 9600 8E1/);
  });
});
