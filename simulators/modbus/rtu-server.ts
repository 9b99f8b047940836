/**
 * Modbus RTU slave(s): `RtuSession` serves RTU frames arriving on any byte
 * stream (a serial port, or a TCP socket for RTU-over-TCP); the
 * `ModbusRtuSimServer` runs one session on a serial port path, answering
 * for several unit ids on one bus. Frames with a bad CRC are ignored, as a
 * real slave does; unit 0 is broadcast (writes executed, never answered).
 */
import { SerialPort } from "serialport";
import { CellioError, errorMessage } from "../../src/infra/errors.js";
import { RegisterBank } from "./bank.js";
import { FaultInjector } from "./faults.js";
import { OrderedSender, type ServerStats, newStats, serveRequest } from "./serve.js";
import { EXCEPTION, WRITE_FUNCTIONS, exceptionPdu, handlePdu } from "./pdu.js";
import { RtuFrameAssembler, type RtuFrame, encodeRtuFrame, malformRtuFrame, silenceMs } from "./rtu.js";

export type UnknownUnitPolicy = "ignore" | "gateway_exception";

export interface RtuSessionOptions {
  /** The bank of a unit id, or undefined when this slave does not hold it. */
  lookup(unit: number): RegisterBank | undefined;
  /** Every bank, for broadcast writes. */
  banks(): Iterable<RegisterBank>;
  faults: FaultInjector;
  stats: ServerStats;
  send(frame: Buffer): void;
  /** Line silence (ms) that ends a frame. */
  silenceMs: number;
  /**
   * Whether a gap between arrivals longer than `silenceMs` also starts a new
   * frame (serial lines: yes, default). Over TCP, arrival times say nothing
   * about the sender's timing, so only the silence timer ends a frame.
   */
  arrivalGaps?: boolean;
  /** Unknown unit ids: no answer (a bus; default) or exception 0x0B (a gateway). */
  unknownUnit?: UnknownUnitPolicy;
  now?: () => number;
}

export class RtuSession {
  private readonly assembler: RtuFrameAssembler;
  private readonly sender: OrderedSender;
  private readonly now: () => number;
  private silenceTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RtuSessionOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.assembler = new RtuFrameAssembler(opts.arrivalGaps === false ? Number.POSITIVE_INFINITY : opts.silenceMs);
    this.sender = new OrderedSender((f) => {
      opts.stats.responses += 1;
      opts.send(f);
    }, this.now);
  }

  /** Bytes from the line. Whole frames are answered synchronously, before this returns. */
  onData(chunk: Buffer): void {
    if (this.silenceTimer !== undefined) clearTimeout(this.silenceTimer);
    this.silenceTimer = undefined;
    const before = this.assembler.discardedBytes;
    for (const f of this.assembler.push(chunk, this.now())) this.handle(f);
    if (this.assembler.discardedBytes !== before) this.opts.stats.badFrames += 1;
    // Only a partial frame needs a timer: the silence that ends (or kills) it.
    if (this.assembler.pendingBytes > 0) this.silenceTimer = setTimeout(() => this.onSilence(), this.opts.silenceMs);
  }

  close(): void {
    if (this.silenceTimer !== undefined) clearTimeout(this.silenceTimer);
    this.silenceTimer = undefined;
    this.sender.cancel();
  }

  private onSilence(): void {
    this.silenceTimer = undefined;
    const before = this.assembler.discardedBytes;
    for (const f of this.assembler.flush()) this.handle(f);
    if (this.assembler.discardedBytes !== before) this.opts.stats.badFrames += 1;
  }

  private handle(f: RtuFrame): void {
    const { stats, faults } = this.opts;
    if (!f.ok) {
      stats.badFrames += 1;
      return;
    }
    stats.requests += 1;
    const fc = f.pdu[0] ?? 0;
    if (f.unit === 0) {
      if (WRITE_FUNCTIONS.has(fc)) for (const bank of this.opts.banks()) handlePdu(bank, f.pdu);
      return;
    }
    const bank = this.opts.lookup(f.unit);
    if (!bank) {
      stats.unknownUnit += 1;
      if (this.opts.unknownUnit === "gateway_exception") {
        stats.exceptions += 1;
        this.sender.push(encodeRtuFrame(f.unit, exceptionPdu(fc, EXCEPTION.GATEWAY_TARGET_FAILED)), 0);
      }
      return;
    }
    const r = serveRequest(faults, bank, f.unit, f.pdu, stats);
    if (!r) return;
    const a = r.decision.action;
    let frame: Buffer;
    switch (a.type) {
      case "garbage":
        frame = faults.randomBytes(r.pdu.length + 3);
        break;
      case "malform":
        frame = malformRtuFrame(f.unit, r.pdu, a.malformation);
        break;
      case "answer":
      case "exception":
      case "drop":
        frame = encodeRtuFrame(f.unit, r.pdu);
        break;
    }
    this.sender.push(frame, r.decision.delayMs);
  }
}

export interface ModbusRtuSimOptions {
  path: string;
  baudRate?: number;
  parity?: "none" | "even" | "odd";
  dataBits?: 7 | 8;
  stopBits?: 1 | 2;
  /** Unit id -> bank; a single bank is unit 1. */
  units: Map<number, RegisterBank> | RegisterBank;
  /** Silence that ends a frame; default 3.5 characters at the baud rate, at least 5 ms (Node timers are coarse). */
  silenceMs?: number;
  faults?: FaultInjector;
}

export class ModbusRtuSimServer {
  readonly faults: FaultInjector;
  readonly stats: ServerStats = newStats();
  private readonly units: Map<number, RegisterBank>;
  private port: SerialPort | undefined;
  private session: RtuSession | undefined;
  /** Last error the serial port reported (the server keeps running). */
  lastError: string | undefined;

  constructor(private readonly opts: ModbusRtuSimOptions) {
    this.units = opts.units instanceof RegisterBank ? new Map([[1, opts.units]]) : new Map(opts.units);
    for (const id of this.units.keys()) {
      if (!Number.isInteger(id) || id < 1 || id > 247) throw new CellioError("CELLIO_ERR_SIM", `RTU unit id ${id} must be 1..247`);
    }
    this.faults = opts.faults ?? new FaultInjector();
  }

  unitIds(): number[] {
    return [...this.units.keys()];
  }

  /** The bank of `unit` (default: the first unit). */
  bank(unit?: number): RegisterBank {
    const id = unit ?? this.unitIds()[0];
    const b = id === undefined ? undefined : this.units.get(id);
    if (!b) throw new CellioError("CELLIO_ERR_SIM", `RTU simulator on ${this.opts.path} has no unit ${String(unit)}`);
    return b;
  }

  async start(): Promise<void> {
    if (this.port) return;
    const baudRate = this.opts.baudRate ?? 9600;
    const port = new SerialPort({
      path: this.opts.path,
      baudRate,
      parity: this.opts.parity ?? "none",
      dataBits: this.opts.dataBits ?? 8,
      stopBits: this.opts.stopBits ?? 1,
      autoOpen: false,
    });
    await new Promise<void>((resolve, reject) =>
      port.open((err) =>
        err ? reject(new CellioError("CELLIO_ERR_SIM", `cannot open ${this.opts.path}: ${err.message}`, {}, { cause: err })) : resolve(),
      ),
    );
    const session = new RtuSession({
      lookup: (u) => this.units.get(u),
      banks: () => this.units.values(),
      faults: this.faults,
      stats: this.stats,
      send: (f) => void port.write(f),
      silenceMs: this.opts.silenceMs ?? Math.max(5, silenceMs(baudRate)),
    });
    port.on("data", (chunk: Buffer) => session.onData(chunk));
    port.on("error", (e: unknown) => (this.lastError = errorMessage(e)));
    this.port = port;
    this.session = session;
    this.stats.connections += 1;
    this.stats.activeConnections = 1;
  }

  async stop(): Promise<void> {
    const port = this.port;
    this.session?.close();
    this.port = undefined;
    this.session = undefined;
    this.stats.activeConnections = 0;
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }
}
