/**
 * Modbus TCP simulator: MBAP framing (Modbus Messaging on TCP/IP v1.0b) over
 * node:net, or RTU framing over TCP (an RTU-over-TCP gateway) with
 * `framing: "rtu"`. Requests are answered synchronously in the socket's data
 * handler; only an injected latency puts a response on a timer (per
 * connection, in order). Frames may be split across chunks and several
 * frames may share one chunk (pipelining clients).
 */
import net from "node:net";
import { CellioError } from "../../src/infra/errors.js";
import { RegisterBank } from "./bank.js";
import { FaultInjector, type Malformation } from "./faults.js";
import { OrderedSender, type ServerStats, newStats, serveRequest } from "./serve.js";
import { CommWatchdog, type CommWatchdogOptions } from "./watchdog.js";
import { EXCEPTION, exceptionPdu, malformPdu } from "./pdu.js";
import { RtuSession, type UnknownUnitPolicy } from "./rtu-server.js";

/** MBAP header length: transaction id, protocol id, length, unit id. */
export const MBAP_HEADER = 7;
/** Largest MBAP length field: unit id + a 253-byte PDU. */
const MAX_MBAP_LENGTH = 254;

export function encodeMbap(tid: number, unit: number, pdu: Uint8Array, protocolId = 0, lengthField = pdu.length + 1): Buffer {
  const f = Buffer.alloc(MBAP_HEADER + pdu.length);
  f.writeUInt16BE(tid & 0xffff, 0);
  f.writeUInt16BE(protocolId & 0xffff, 2);
  f.writeUInt16BE(lengthField & 0xffff, 4);
  f[6] = unit & 0xff;
  f.set(pdu, MBAP_HEADER);
  return f;
}

/**
 * A response ADU with malformation `m`:
 * wrong_transaction_id (tid + 1), wrong_protocol_id (1), wrong_unit_id
 * (unit + 1), length_too_long / length_too_short (length field +1 / -1, same
 * bytes), truncated (last byte left off, header unchanged), and the PDU-level
 * ones of `malformPdu` with a consistent length field. bad_crc: unchanged.
 */
export function malformMbapFrame(tid: number, unit: number, pdu: Buffer, m: Malformation): Buffer {
  switch (m) {
    case "wrong_transaction_id":
      return encodeMbap(tid + 1, unit, pdu);
    case "wrong_protocol_id":
      return encodeMbap(tid, unit, pdu, 1);
    case "wrong_unit_id":
      return encodeMbap(tid, unit + 1, pdu);
    case "length_too_long":
      return encodeMbap(tid, unit, pdu, 0, pdu.length + 2);
    case "length_too_short":
      return encodeMbap(tid, unit, pdu, 0, pdu.length);
    case "truncated": {
      const f = encodeMbap(tid, unit, pdu);
      return f.subarray(0, f.length - 1);
    }
    case "wrong_function_code":
    case "overlong":
    case "byte_count_mismatch":
      return encodeMbap(tid, unit, malformPdu(pdu, m));
    case "bad_crc":
      return encodeMbap(tid, unit, pdu);
  }
}

export interface ModbusTcpSimOptions {
  /** Listen address; loopback by default. */
  host?: string;
  /** 0 = ephemeral. */
  port: number;
  /** Unit id -> bank; a single bank answers every unit id (a device that ignores the unit id). */
  units: Map<number, RegisterBank> | RegisterBank;
  /** "mbap" (Modbus TCP, default) or "rtu" (RTU frames over TCP, as an RTU-over-TCP gateway). */
  framing?: "mbap" | "rtu";
  /** Requests to unknown unit ids: no answer (default) or exception 0x0B. */
  unknownUnit?: UnknownUnitPolicy;
  /** RTU framing only: silence (ms) that ends a partial frame; default 50. */
  rtuSilenceMs?: number;
  faults?: FaultInjector;
}

export class ModbusTcpSimServer {
  readonly faults: FaultInjector;
  readonly stats: ServerStats = newStats();
  private readonly single: RegisterBank | undefined;
  private readonly units: Map<number, RegisterBank>;
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | undefined;
  private readonly watchdogs = new Map<RegisterBank, CommWatchdog>();

  constructor(private readonly opts: ModbusTcpSimOptions) {
    this.single = opts.units instanceof RegisterBank ? opts.units : undefined;
    this.units = new Map<number, RegisterBank>(opts.units instanceof RegisterBank ? [] : opts.units);
    this.faults = opts.faults ?? new FaultInjector();
    this.faults.onDisconnect(() => this.disconnectAll());
  }

  unitIds(): number[] {
    return this.single ? [] : [...this.units.keys()];
  }

  /** The bank of `unit` (default: the single bank, or the first unit). */
  bank(unit?: number): RegisterBank {
    const b = this.single ?? this.units.get(unit ?? this.unitIds()[0] ?? -1);
    if (!b) throw new CellioError("CELLIO_ERR_SIM", `Modbus TCP simulator has no unit ${String(unit)}`);
    return b;
  }

  /**
   * Gives `unit` (default: the single bank, or the first unit) a
   * communication watchdog (watchdog.ts): armed by a client's write of its
   * register, restarted by every request the unit gets (Modbus TCP framing).
   */
  watchdog(opts: CommWatchdogOptions, unit?: number): CommWatchdog {
    const bank = this.bank(unit);
    this.watchdogs.get(bank)?.stop();
    const w = new CommWatchdog(bank, opts);
    this.watchdogs.set(bank, w);
    return w;
  }

  async start(): Promise<{ port: number }> {
    if (this.server) throw new CellioError("CELLIO_ERR_SIM", "Modbus TCP simulator already started");
    const server = net.createServer({ noDelay: true }, (s) => this.onConnection(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.port, this.opts.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return { port: (server.address() as net.AddressInfo).port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.disconnectAll();
    for (const w of this.watchdogs.values()) w.stop();
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private lookup(unit: number): RegisterBank | undefined {
    return this.single ?? this.units.get(unit);
  }

  private disconnectAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private onConnection(sock: net.Socket): void {
    if (this.faults.shouldRefuse()) {
      this.stats.refused += 1;
      sock.destroy();
      return;
    }
    this.stats.connections += 1;
    this.stats.activeConnections += 1;
    this.sockets.add(sock);
    const send = (f: Buffer): void => {
      if (!sock.destroyed) sock.write(f);
    };
    const handler = this.opts.framing === "rtu" ? this.rtuHandler(send) : this.mbapHandler(sock, send);
    sock.on("data", (chunk: Buffer) => {
      sock.cork(); // one write for all the answers to one chunk
      try {
        handler.onData(chunk);
      } finally {
        sock.uncork();
      }
    });
    sock.on("error", () => {}); // a client that vanishes (ECONNRESET) is not our error; "close" follows
    sock.on("close", () => {
      handler.close();
      this.sockets.delete(sock);
      this.stats.activeConnections -= 1;
    });
  }

  private rtuHandler(send: (f: Buffer) => void): { onData(c: Buffer): void; close(): void } {
    return new RtuSession({
      lookup: (u) => this.lookup(u),
      banks: () => (this.single ? [this.single] : this.units.values()),
      faults: this.faults,
      stats: this.stats,
      send,
      silenceMs: this.opts.rtuSilenceMs ?? 50,
      arrivalGaps: false,
      unknownUnit: this.opts.unknownUnit ?? "ignore",
    });
  }

  private mbapHandler(sock: net.Socket, send: (f: Buffer) => void): { onData(c: Buffer): void; close(): void } {
    const sender = new OrderedSender((f) => {
      this.stats.responses += 1;
      send(f);
    });
    let pending: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      let buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (buf.length >= MBAP_HEADER) {
        const length = buf.readUInt16BE(4);
        if (length < 2 || length > MAX_MBAP_LENGTH) {
          // No way to find the next frame boundary: close, as real devices do.
          this.stats.badFrames += 1;
          sock.destroy();
          return;
        }
        if (buf.length < 6 + length) break;
        const frame = buf.subarray(0, 6 + length);
        buf = buf.subarray(6 + length);
        if (frame.readUInt16BE(2) !== 0) {
          this.stats.badFrames += 1; // not Modbus: discard the frame
          continue;
        }
        this.handleMbap(frame.readUInt16BE(0), frame[6]!, Buffer.from(frame.subarray(MBAP_HEADER)), sender);
      }
      pending = buf;
    };
    return { onData, close: () => sender.cancel() };
  }

  private handleMbap(tid: number, unit: number, req: Buffer, sender: OrderedSender): void {
    this.stats.requests += 1;
    const bank = this.lookup(unit);
    if (!bank) {
      this.stats.unknownUnit += 1;
      if (this.opts.unknownUnit === "gateway_exception") {
        this.stats.exceptions += 1;
        sender.push(encodeMbap(tid, unit, exceptionPdu(req[0] ?? 0, EXCEPTION.GATEWAY_TARGET_FAILED)), 0);
      }
      return;
    }
    const r = serveRequest(this.faults, bank, unit, req, this.stats);
    if (!r) return;
    if (this.watchdogs.size > 0) this.watchdogs.get(bank)?.kick();
    const a = r.decision.action;
    let frame: Buffer;
    switch (a.type) {
      case "garbage":
        frame = this.faults.randomBytes(MBAP_HEADER + r.pdu.length);
        break;
      case "malform":
        frame = malformMbapFrame(tid, unit, r.pdu, a.malformation);
        break;
      case "answer":
      case "exception":
      case "drop":
        frame = encodeMbap(tid, unit, r.pdu);
        break;
    }
    sender.push(frame, r.decision.delayMs);
  }
}
