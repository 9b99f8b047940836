/**
 * Fuzzing the client from the server side: a raw `net` server answers each
 * request with what fast-check scripts (the valid answer, silence, random
 * bytes, a flipped byte, a cut or extended frame, a lying header field, a
 * split, a duplicate, a late answer, a close). Properties: no exception
 * escapes an event handler, every request settles within its timeout, a
 * success has the requested shape, nothing is left in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import net from "node:net";
import { RegisterBank, encodeMbap, encodeRtuFrame, expectedRequestLength, handlePdu } from "../../../simulators/modbus/index.js";
import { isCellioError } from "../../../src/infra/errors.js";
import type { ModbusRequest } from "../../../src/drivers/modbus/pdu-client.js";
import { type Framing, ModbusTcpClient } from "../../../src/drivers/modbus/tcp-client.js";

type Action =
  | { t: "valid" }
  | { t: "silent" }
  | { t: "random"; bytes: Uint8Array }
  | { t: "flip"; at: number; xor: number }
  | { t: "cut"; keep: number }
  | { t: "extend"; extra: Uint8Array }
  | { t: "field"; at: number; value: number }
  | { t: "split"; at: number; gapMs: number }
  | { t: "twice" }
  | { t: "late"; ms: number }
  | { t: "close" };

const arbAction: fc.Arbitrary<Action> = fc.oneof(
  fc.constant({ t: "valid" as const }),
  fc.constant({ t: "silent" as const }),
  fc.record({ t: fc.constant("random" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ t: fc.constant("flip" as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ t: fc.constant("cut" as const), keep: fc.nat() }),
  fc.record({ t: fc.constant("extend" as const), extra: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
  fc.record({ t: fc.constant("field" as const), at: fc.nat({ max: 7 }), value: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ t: fc.constant("split" as const), at: fc.nat(), gapMs: fc.integer({ min: 0, max: 12 }) }),
  fc.constant({ t: "twice" as const }),
  fc.record({ t: fc.constant("late" as const), ms: fc.integer({ min: 0, max: 60 }) }),
  fc.constant({ t: "close" as const }),
);

const arbRequest: fc.Arbitrary<ModbusRequest> = fc.oneof(
  fc.record({ fc: fc.constantFrom(1 as const, 2 as const), start: fc.nat({ max: 100 }), count: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ fc: fc.constantFrom(3 as const, 4 as const), start: fc.nat({ max: 100 }), count: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ fc: fc.constant(6 as const), start: fc.nat({ max: 100 }), value: fc.nat({ max: 0xffff }) }),
  fc.record({ fc: fc.constant(16 as const), start: fc.nat({ max: 100 }), values: fc.array(fc.nat({ max: 0xffff }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ fc: fc.constant(23 as const), start: fc.nat({ max: 100 }), count: fc.integer({ min: 1, max: 8 }), writeStart: fc.nat({ max: 100 }), values: fc.array(fc.nat({ max: 0xffff }), { minLength: 1, maxLength: 3 }) }),
);

/** A server that answers every request through the next scripted action. */
class ScriptedServer {
  readonly script: Action[] = [];
  private readonly server: net.Server;
  private readonly bank = new RegisterBank({ coils: 256, discreteInputs: 256, holdingRegisters: 256, inputRegisters: 256 });

  constructor(private readonly framing: Framing) {
    this.server = net.createServer({ noDelay: true }, (s) => this.serve(s));
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return (this.server.address() as net.AddressInfo).port;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private serve(sock: net.Socket): void {
    let buf = Buffer.alloc(0);
    sock.on("error", () => {});
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const len = this.framing === "mbap" ? (buf.length >= 6 ? 6 + buf.readUInt16BE(4) : undefined) : expectedRequestLength(buf);
        if (typeof len !== "number" || buf.length < len) return;
        const frame = buf.subarray(0, len);
        buf = buf.subarray(len);
        const valid =
          this.framing === "mbap"
            ? encodeMbap(frame.readUInt16BE(0), frame[6]!, handlePdu(this.bank, Buffer.from(frame.subarray(7))))
            : encodeRtuFrame(frame[0]!, handlePdu(this.bank, Buffer.from(frame.subarray(1, len - 2))));
        this.answer(sock, valid, this.script.shift() ?? { t: "valid" });
      }
    });
  }

  private answer(sock: net.Socket, valid: Buffer, a: Action): void {
    const send = (b: Uint8Array): void => void (!sock.destroyed && sock.write(b));
    const later = (ms: number, b: Uint8Array): void => void setTimeout(() => send(b), ms);
    switch (a.t) {
      case "valid":
        return send(valid);
      case "silent":
        return;
      case "random":
        return send(a.bytes);
      case "flip": {
        const b = Buffer.from(valid);
        b[a.at % b.length]! ^= a.xor;
        return send(b);
      }
      case "cut":
        return send(valid.subarray(0, a.keep % valid.length));
      case "extend":
        return send(Buffer.concat([valid, a.extra]));
      case "field": {
        const b = Buffer.from(valid);
        b[a.at % b.length] = a.value;
        return send(b);
      }
      case "split":
        send(valid.subarray(0, a.at % valid.length));
        return later(a.gapMs, valid.subarray(a.at % valid.length));
      case "twice":
        send(valid);
        return send(valid);
      case "late":
        return later(a.ms, valid);
      case "close":
        sock.destroy();
        return;
    }
  }
}

const TIMEOUT_MS = 30;
/** Timers are coarse and the machine may be busy: how late a settlement may be. */
const SLACK_MS = 150;

function shapeOk(req: ModbusRequest, v: unknown): boolean {
  if (req.fc === 1 || req.fc === 2) return Array.isArray(v) && v.length === req.count && v.every((b) => typeof b === "boolean");
  if (req.fc === 3 || req.fc === 4 || req.fc === 23) return Array.isArray(v) && v.length === req.count && v.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff);
  return v === undefined;
}

describe.each([
  ["mbap", 1],
  ["mbap", 4],
  ["rtu", 1],
] as const)("fuzzed answers (%s, maxInFlight %i)", (framing, maxInFlight) => {
  let server: ScriptedServer;
  let port = 0;
  const escaped: unknown[] = [];
  const onEscape = (e: unknown): void => void escaped.push(e);
  beforeAll(async () => {
    server = new ScriptedServer(framing);
    port = await server.start();
    process.on("uncaughtException", onEscape);
    process.on("unhandledRejection", onEscape);
  });
  afterAll(async () => {
    process.off("uncaughtException", onEscape);
    process.off("unhandledRejection", onEscape);
    await server.stop();
  });

  it("every request settles within its timeout; no exception escapes; nothing stays in flight", { timeout: 120_000 }, async () => {
    let worstMs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(arbAction, arbRequest), { minLength: 1, maxLength: 8 }), async (steps) => {
        const c = new ModbusTcpClient({ host: "127.0.0.1", port, framing, maxInFlight, rtuSilenceMs: 5 });
        server.script.length = 0;
        server.script.push(...steps.map(([a]) => a));
        try {
          await c.connect();
          const run = async ([, req]: [Action, ModbusRequest]): Promise<void> => {
            if (maxInFlight === 1 && !c.isOpen) await c.connect();
            const t0 = performance.now();
            try {
              const v = await c.request(1, req, TIMEOUT_MS);
              expect(shapeOk(req, v)).toBe(true);
            } catch (e) {
              expect(isCellioError(e)).toBe(true);
            }
            const took = performance.now() - t0;
            worstMs = Math.max(worstMs, took);
            expect(took).toBeLessThan(TIMEOUT_MS + SLACK_MS);
          };
          if (maxInFlight === 1) for (const s of steps) await run(s);
          else await Promise.all(steps.map(run));
          expect(c.inFlight + c.queued).toBe(0);
        } finally {
          await c.close();
        }
      }),
      { numRuns: framing === "rtu" ? 60 : 80 },
    );
    expect(escaped).toEqual([]);
    console.log(`fuzz ${framing} maxInFlight ${maxInFlight}: slowest settlement ${worstMs.toFixed(1)} ms (timeout ${TIMEOUT_MS} ms)`);
  });
});
