/**
 * One Modbus RTU master on one serial port, shared by every unit (device)
 * configured on that port (Modbus over Serial Line v1.02, 2.5): the port's
 * life and the requests' way in. What happens on the line (the fair queue,
 * one transaction at a time, gaps, framing, timeouts) is rtu-line.ts.
 *
 * - The port opens when the first unit attaches and closes when the last
 *   detaches; a port that fails (unplugged adapter) fails everything pending
 *   and tells every attached unit, whose driver reconnects with backoff.
 * - A request is checked (unit id, timeout, PDU) and refused at once when the
 *   port is closed or the queue full; otherwise it is framed with its CRC and
 *   queued. An aborted signal cancels it.
 *
 * Handlers and timers never throw; every request settles: with its answer,
 * its timeout, its cancellation, or the close of the port.
 */
import { SerialPort } from "serialport";
import { roundMs } from "../../infra/clock.js";
import { CellioError, errorMessage, type ErrorCode } from "../../infra/errors.js";
import { silentLogger, type Logger } from "../../infra/logger.js";
import { type ModbusRequest, type ResponseOf, checkRequest, crc16, encodeRequestPdu, requestPduLength } from "./pdu-client.js";
import { Txn, rtuError, type RtuBusMember, type RtuBusOptions, type RtuBusStats, type RtuUnitStats } from "./rtu-bus-types.js";
import { describeLine, type RtuBusSettings } from "./rtu-config.js";
import { RtuLine } from "./rtu-line.js";

export { FairQueue } from "./fair-queue.js";
export type { RtuBusMember, RtuBusOptions, RtuBusStats, RtuUnitStats } from "./rtu-bus-types.js";
export { MAX_RTU_ADU, examineResponse, expectedResponseLength, frameLength, type Examined } from "./rtu-frame.js";

export class RtuBus {
  readonly stats: RtuBusStats = {
    requests: 0, responses: 0, timeouts: 0, frameErrors: 0, exceptions: 0, stale: 0, rejected: 0, bytesIn: 0, bytesOut: 0, opens: 0, losses: 0,
  };
  private readonly members = new Set<RtuBusMember>();
  private readonly line: RtuLine;
  private readonly log: Logger;
  private port: SerialPort | undefined;
  private opening: Promise<void> | undefined;
  /** The previous port's close, still under way: a new open waits for it (the old port holds the lock). */
  private closing: Promise<void> | undefined;
  private lastOpenError = "";

  constructor(
    readonly settings: RtuBusSettings,
    opts: RtuBusOptions = {},
  ) {
    this.log = opts.log ?? silentLogger();
    this.line = new RtuLine(settings, opts, this.stats, {
      isOpen: () => this.port !== undefined,
      write: (frame) => this.write(frame),
      guard: (fn) => this.guard(fn),
    });
  }

  get path(): string {
    return this.settings.path;
  }

  get isOpen(): boolean {
    return this.port !== undefined;
  }

  get interFrameGapMs(): number {
    return this.line.gapMs;
  }

  /** Line silence that ends a frame of doubtful length. */
  get frameSilenceMs(): number {
    return this.line.frameSilenceMs;
  }

  /** Requests waiting for the line (not counting the one on it). */
  get queued(): number {
    return this.line.queue.size;
  }

  /** A unit that needs a longer gap than the bus has so far gets it (the bus keeps the largest). */
  widenGap(ms: number): void {
    this.line.widenGap(ms);
  }

  unitStats(unit: number): RtuUnitStats {
    return this.line.unitStats(unit);
  }

  /** Opens the port unless it is open; the member stays attached until detach() or the port's loss. */
  async attach(member: RtuBusMember): Promise<void> {
    this.members.add(member);
    try {
      await this.open();
    } catch (e) {
      this.members.delete(member);
      throw e;
    }
    if (!this.members.has(member)) {
      if (this.members.size === 0) await this.closePort(`${this.path}: closed, no unit uses it`);
      throw new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${this.path}: detached while the port was opening`, { bus: this.path });
    }
  }

  /** The last member to leave closes the port (everything still pending fails with CELLIO_ERR_MODBUS_CLOSED). */
  async detach(member: RtuBusMember): Promise<void> {
    if (!this.members.delete(member)) return;
    if (this.members.size === 0) await this.closePort(`${this.path}: closed, no unit uses it`);
  }

  /**
   * Queues `req` for `unit`. Settles within the request's timeout once sent;
   * an aborted `signal` cancels it (a request already on the line keeps the
   * line busy until its answer or timeout, but its caller is released at once).
   */
  request<R extends ModbusRequest>(unit: number, req: R, timeoutMs: number, signal?: AbortSignal): Promise<ResponseOf<R>> {
    const bad =
      checkRequest(req) ??
      (!Number.isInteger(unit) || unit < 1 || unit > 247
        ? `unit id ${unit} is outside 1..247`
        : !(timeoutMs > 0 && Number.isFinite(timeoutMs))
          ? `timeout ${timeoutMs} ms is not a positive number`
          : undefined);
    if (bad !== undefined) return this.refuse("CELLIO_ERR_MODBUS_REQUEST", unit, req, bad);
    if (!this.port) return this.refuse("CELLIO_ERR_MODBUS_CLOSED", unit, req, "port not open");
    if (signal?.aborted) return this.refuse("CELLIO_ERR_MODBUS_CLOSED", unit, req, "cancelled before it was queued");
    const queue = this.line.queue;
    if (queue.size >= queue.capacity) {
      return this.refuse("CELLIO_ERR_MODBUS_QUEUE_FULL", unit, req, `${queue.size} requests already wait for the line`);
    }
    return new Promise<ResponseOf<R>>((resolve, reject) => {
      const len = requestPduLength(req);
      const frame = Buffer.allocUnsafe(len + 3);
      frame[0] = unit;
      encodeRequestPdu(req, frame, 1);
      frame.writeUInt16LE(crc16(frame, 0, len + 1), len + 1);
      const t = new Txn(unit, req, timeoutMs, frame, resolve as (v: unknown) => void, reject);
      if (signal) {
        const onAbort = (): void => this.guard(() => this.line.cancel(t));
        signal.addEventListener("abort", onAbort, { once: true });
        t.unlisten = () => signal.removeEventListener("abort", onAbort);
      }
      this.line.enqueue(t);
    });
  }

  // ---- port -------------------------------------------------------------------------

  private open(): Promise<void> {
    if (this.port) return Promise.resolve();
    this.opening ??= this.openPort().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async openPort(): Promise<void> {
    await this.closing;
    const s = this.settings;
    let port: SerialPort;
    try {
      port = await openSerialPort(s);
    } catch (e) {
      const msg = `cannot open ${s.path}: ${errorMessage(e)}`;
      if (msg !== this.lastOpenError) this.log.warn({ err: msg }, "serial port open failed");
      this.lastOpenError = msg;
      throw new CellioError("CELLIO_ERR_MODBUS_CONNECT", msg, { bus: s.path }, { cause: e });
    }
    port.on("data", (chunk: Buffer) => this.guard(() => port === this.port && this.line.onData(chunk)));
    port.on("error", (e: unknown) => this.guard(() => port === this.port && this.lose(errorMessage(e))));
    port.on("close", () => this.guard(() => port === this.port && this.lose("port closed")));
    this.port = port;
    this.lastOpenError = "";
    this.line.opened(performance.now());
    this.stats.opens++;
    this.log.info({ line: describeLine(s), gapMs: roundMs(this.line.gapMs) }, "serial bus open");
  }

  private async closePort(why: string): Promise<void> {
    const port = this.port;
    this.port = undefined;
    this.line.failAll(why);
    if (!port) return;
    this.log.debug("serial bus closed");
    await this.release(port);
  }

  /** Closes `port`; a port that failed may never call back, so this waits at most a second. */
  private release(port: SerialPort): Promise<void> {
    const closing = closeSerialPort(port).finally(() => {
      if (this.closing === closing) this.closing = undefined;
    });
    this.closing = closing;
    return closing;
  }

  /** The port failed under its users: fail everything, tell every member (their drivers reconnect). */
  private lose(why: string): void {
    const port = this.port;
    if (!port) return;
    this.port = undefined;
    this.stats.losses++;
    this.log.warn({ err: why }, "serial bus lost");
    this.line.failAll(`${this.path}: ${why}`);
    void this.release(port);
    const members = [...this.members];
    this.members.clear();
    for (const m of members) this.guard(() => m.onBusLost(`${this.path}: ${why}`));
  }

  /** Puts `frame` on the wire for the line; a failed write loses the port. */
  private write(frame: Buffer): void {
    const port = this.port!;
    port.write(frame, (err: Error | null | undefined) => {
      if (err) this.guard(() => port === this.port && this.lose(`write failed: ${err.message}`));
    });
  }

  private refuse<T>(code: ErrorCode, unit: number, req: ModbusRequest, msg: string): Promise<T> {
    this.stats.rejected++;
    return Promise.reject(rtuError(this.path, code, { unit, req }, msg));
  }

  /** Runs `fn`; an exception (a bug) closes the port instead of escaping an event handler. */
  private guard(fn: () => unknown): void {
    try {
      fn();
    } catch (e) {
      this.lose(`internal error: ${errorMessage(e)}`);
    }
  }
}

/** Opens the serial port with the bus's line settings. */
function openSerialPort(s: RtuBusSettings): Promise<SerialPort> {
  const port = new SerialPort({ path: s.path, baudRate: s.baudRate, parity: s.parity, dataBits: s.dataBits, stopBits: s.stopBits, autoOpen: false });
  return new Promise((resolve, reject) => port.open((err) => (err ? reject(err) : resolve(port))));
}

/** Closes `port`; a port that failed may never call back, so this waits at most a second. */
function closeSerialPort(port: SerialPort): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!port.isOpen) return resolve();
    const bound = setTimeout(resolve, 1000);
    bound.unref();
    port.close(() => {
      clearTimeout(bound);
      resolve();
    });
  });
}
