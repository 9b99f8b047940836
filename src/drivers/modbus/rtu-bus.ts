/**
 * One Modbus RTU master on one serial port, shared by every unit (device)
 * configured on that port (Modbus over Serial Line v1.02, 2.5).
 *
 * - Strictly one transaction on the line at a time. Waiting requests sit in a
 *   bounded queue, FIFO per unit id and round-robin between unit ids, so one
 *   unit's backlog never starves another.
 * - Before each request the line must have been quiet for the inter-frame
 *   gap since the end of the previous transaction (its last received byte,
 *   or its timeout); after any doubt (a bad frame, bytes nobody asked for)
 *   for the longer frame silence, so a frame's tail is never taken for the
 *   start of the next answer.
 * - A response is matched by unit id and function code and its CRC checked.
 *   It ends as soon as its own length (function code, byte count) is in and
 *   the CRC agrees; otherwise a silence on the line ends it (truncated,
 *   over-long, bad CRC, byte count that lies) and it fails with
 *   CELLIO_ERR_MODBUS_FRAME. The line is then in sync again. A whole valid
 *   frame from another unit or function (a late answer to a request that
 *   timed out) is skipped, and the request keeps waiting for its own answer.
 * - Each request has its own timeout, counted from the moment it is sent
 *   (queue time excluded, so a dead unit never makes the others time out),
 *   plus the time the request and its expected answer take on the wire at
 *   the baud rate. A frame that has started when the timeout strikes may
 *   finish (it ends at the next silence).
 * - The port opens when the first unit attaches and closes when the last
 *   detaches; a port that fails (unplugged adapter) fails everything pending
 *   and tells every attached unit, whose driver reconnects with backoff.
 *
 * Handlers and timers never throw; every request settles: with its answer,
 * its timeout, its cancellation, or the close of the port.
 */
import { SerialPort } from "serialport";
import { CellioError, errorMessage, type ErrorCode } from "../../infra/errors.js";
import { silentLogger, type Logger } from "../../infra/logger.js";
import { type ModbusRequest, type PduResult, type ResponseOf, checkRequest, crc16, encodeRequestPdu, exceptionName, hex, parseResponsePdu, quantityOf, requestPduLength } from "./pdu-client.js";
import { FairQueue } from "./fair-queue.js";
import { MAX_RTU_ADU, examineResponse, expectedResponseLength, frameLength, silenceReason } from "./rtu-frame.js";

import { Txn, type RtuBusMember, type RtuBusOptions, type RtuBusStats, type RtuUnitStats } from "./rtu-bus-types.js";

export { FairQueue } from "./fair-queue.js";
export type { RtuBusMember, RtuBusOptions, RtuBusStats, RtuUnitStats } from "./rtu-bus-types.js";
export { MAX_RTU_ADU, examineResponse, expectedResponseLength, frameLength, type Examined } from "./rtu-frame.js";
import { bitsPerChar, describeLine, type RtuBusSettings } from "./rtu-config.js";

// ---- the bus ------------------------------------------------------------------------

export class RtuBus {
  readonly stats: RtuBusStats = {
    requests: 0, responses: 0, timeouts: 0, frameErrors: 0, exceptions: 0, stale: 0, rejected: 0, bytesIn: 0, bytesOut: 0, opens: 0, losses: 0,
  };
  private readonly perUnit = new Map<number, RtuUnitStats>();
  private readonly members = new Set<RtuBusMember>();
  private readonly queue: FairQueue<Txn>;
  private readonly log: Logger;
  private readonly charMs: number;
  private gapMs: number;
  private port: SerialPort | undefined;
  private opening: Promise<void> | undefined;
  /** The previous port's close, still under way: a new open waits for it (the old port holds the lock). */
  private closing: Promise<void> | undefined;
  private lastOpenError = "";
  private current: Txn | undefined;
  private readonly rx = Buffer.alloc(MAX_RTU_ADU);
  private rxLen = 0;
  private lastRxAt = Number.NEGATIVE_INFINITY;
  /** End of the last thing on the line (request sent, byte received, timeout). */
  private lastActivityAt = Number.NEGATIVE_INFINITY;
  /** The line may still carry bytes of a frame nobody wants: wait for a full silence, not just the gap. */
  private doubt = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onTimerBound = (): void => this.guard(() => this.onTimer());

  constructor(
    readonly settings: RtuBusSettings,
    private readonly opts: RtuBusOptions = {},
  ) {
    this.queue = new FairQueue(opts.maxQueue ?? 64);
    this.log = opts.log ?? silentLogger();
    this.charMs = (bitsPerChar(settings) * 1000) / settings.baudRate;
    this.gapMs = settings.interFrameGapMs;
  }

  get path(): string {
    return this.settings.path;
  }

  get isOpen(): boolean {
    return this.port !== undefined;
  }

  get interFrameGapMs(): number {
    return this.gapMs;
  }

  /** Line silence that ends a frame of doubtful length. */
  get frameSilenceMs(): number {
    return this.opts.frameSilenceMs ?? Math.max(this.gapMs, 20);
  }

  /** Requests waiting for the line (not counting the one on it). */
  get queued(): number {
    return this.queue.size;
  }

  /** A unit that needs a longer gap than the bus has so far gets it (the bus keeps the largest). */
  widenGap(ms: number): void {
    if (ms > this.gapMs) this.gapMs = ms;
  }

  unitStats(unit: number): RtuUnitStats {
    let s = this.perUnit.get(unit);
    if (!s) {
      s = { requests: 0, timeouts: 0, frameErrors: 0, exceptions: 0 };
      this.perUnit.set(unit, s);
    }
    return s;
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
    if (this.queue.size >= this.queue.capacity) {
      return this.refuse("CELLIO_ERR_MODBUS_QUEUE_FULL", unit, req, `${this.queue.size} requests already wait for the line`);
    }
    return new Promise<ResponseOf<R>>((resolve, reject) => {
      const len = requestPduLength(req);
      const frame = Buffer.allocUnsafe(len + 3);
      frame[0] = unit;
      encodeRequestPdu(req, frame, 1);
      frame.writeUInt16LE(crc16(frame, 0, len + 1), len + 1);
      const t = new Txn(unit, req, timeoutMs, frame, resolve as (v: unknown) => void, reject);
      if (signal) {
        const onAbort = (): void => this.guard(() => this.cancel(t));
        signal.addEventListener("abort", onAbort, { once: true });
        t.unlisten = () => signal.removeEventListener("abort", onAbort);
      }
      this.queue.push(unit, t);
      this.pump();
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
    port.on("data", (chunk: Buffer) => this.guard(() => port === this.port && this.onData(chunk)));
    port.on("error", (e: unknown) => this.guard(() => port === this.port && this.lose(errorMessage(e))));
    port.on("close", () => this.guard(() => port === this.port && this.lose("port closed")));
    this.port = port;
    this.lastOpenError = "";
    this.lastActivityAt = performance.now();
    this.doubt = false;
    this.stats.opens++;
    this.log.info({ line: describeLine(s), gapMs: round(this.gapMs) }, "serial bus open");
  }

  private async closePort(why: string): Promise<void> {
    const port = this.port;
    this.port = undefined;
    this.failAll(why);
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
    this.failAll(`${this.path}: ${why}`);
    void this.release(port);
    const members = [...this.members];
    this.members.clear();
    for (const m of members) this.guard(() => m.onBusLost(`${this.path}: ${why}`));
  }

  private failAll(why: string): void {
    this.clearTimer();
    const t = this.current;
    this.current = undefined;
    this.rxLen = 0;
    if (t) this.settle(t, this.error("CELLIO_ERR_MODBUS_CLOSED", t, why));
    for (const q of this.queue.drain()) this.settle(q, this.error("CELLIO_ERR_MODBUS_CLOSED", q, `${why}; not sent`));
  }

  // ---- the line ---------------------------------------------------------------------

  /** Sends the next request once the line has been quiet long enough. */
  private pump(): void {
    if (!this.port || this.current || this.queue.size === 0) return;
    const readyAt = this.lastActivityAt + (this.doubt ? this.frameSilenceMs : this.gapMs);
    const now = performance.now();
    if (now < readyAt) {
      this.arm(readyAt);
      return;
    }
    this.send(this.queue.shift()!, now);
  }

  private send(t: Txn, now: number): void {
    this.current = t;
    this.rxLen = 0;
    this.doubt = false;
    t.sentAt = now;
    t.wireMs = (t.frame.length + expectedResponseLength(t.req)) * this.charMs;
    t.deadline = now + t.wireMs + t.timeoutMs;
    this.lastActivityAt = now + t.frame.length * this.charMs;
    this.stats.requests++;
    this.unitStats(t.unit).requests++;
    this.stats.bytesOut += t.frame.length;
    this.arm(t.deadline);
    const port = this.port!;
    port.write(t.frame, (err: Error | null | undefined) => {
      if (err) this.guard(() => port === this.port && this.lose(`write failed: ${err.message}`));
    });
  }

  private onData(chunk: Buffer): void {
    const now = performance.now();
    this.stats.bytesIn += chunk.length;
    this.lastRxAt = now;
    this.lastActivityAt = Math.max(this.lastActivityAt, now);
    const t = this.current;
    if (!t) {
      // Nobody waits for these bytes: a late answer, noise, the tail of a bad frame.
      if (!this.doubt) this.stats.stale++;
      this.doubt = true;
      this.pump();
      return;
    }
    const room = this.rx.length - this.rxLen;
    this.rxLen += chunk.copy(this.rx, this.rxLen);
    if (chunk.length > room) {
      this.doubt = true;
      this.finish(t, frameError(`more than ${MAX_RTU_ADU} bytes without a complete frame`));
      return;
    }
    this.examine(t, now);
  }

  /** Settles `t` when its answer is complete; skips whole valid frames that are not its answer. */
  private examine(t: Txn, now: number): void {
    for (;;) {
      const e = examineResponse(t.unit, t.req.fc, this.rx, this.rxLen);
      switch (e.kind) {
        case "partial":
        case "bad_crc":
          // The rest may be on its way: the next silence decides.
          this.arm(now + this.frameSilenceMs);
          return;
        case "frame":
          if (this.rxLen > e.need) {
            this.stats.stale++;
            this.doubt = true;
          }
          this.finish(t, parseResponsePdu(t.req, this.rx, 1, e.need - 3));
          return;
        case "foreign": {
          const n = frameLength(this.rx, this.rxLen);
          if (n === 0) {
            this.arm(now + this.frameSilenceMs); // a frame from someone else, not all in yet
            return;
          }
          if (n < 0) {
            this.doubt = true; // garbage: its tail may still be coming
            this.finish(t, frameError(e.reason));
            return;
          }
          // A whole, valid frame that does not answer this request: a late answer to an
          // earlier one (or a unit answering with the wrong id). Not ours: skip it, keep waiting.
          this.stats.stale++;
          t.skipped++;
          t.skippedFrom = `unit ${this.rx[0]!} FC${this.rx[1]! & 0x7f}`;
          this.rx.copyWithin(0, n, this.rxLen);
          this.rxLen -= n;
          if (this.rxLen === 0) {
            this.arm(t.deadline);
            return;
          }
        }
      }
    }
  }

  private onTimer(): void {
    this.timer = undefined;
    const t = this.current;
    if (!t) {
      this.pump();
      return;
    }
    const now = performance.now();
    if (this.rxLen > 0) {
      // A frame has started: only a silence ends it, timeout or not.
      if (now - this.lastRxAt < this.frameSilenceMs) this.arm(this.lastRxAt + this.frameSilenceMs);
      else this.finish(t, frameError(silenceReason(t.unit, t.req.fc, this.rx, this.rxLen, this.frameSilenceMs)));
      return;
    }
    if (now < t.deadline) {
      this.arm(t.deadline); // the timer fired early
      return;
    }
    this.current = undefined;
    this.lastActivityAt = Math.max(this.lastActivityAt, now);
    this.stats.timeouts++;
    this.unitStats(t.unit).timeouts++;
    const wire = t.wireMs >= 0.5 ? ` (+${round(t.wireMs)} ms on the wire at ${this.settings.baudRate} baud)` : "";
    const skipped =
      t.skipped > 0 ? `; discarded meanwhile ${t.skipped} valid frame(s), the last from ${t.skippedFrom} (a late answer, or a unit answering with the wrong id)` : "";
    this.settle(t, this.error("CELLIO_ERR_MODBUS_TIMEOUT", t, `no answer within ${t.timeoutMs} ms${wire}${skipped}`));
    this.pump();
  }

  private finish(t: Txn, r: PduResult<unknown>): void {
    this.clearTimer();
    this.current = undefined;
    this.rxLen = 0;
    this.stats.responses++;
    if (r.ok) {
      this.settle(t, undefined, r.value);
    } else if (r.kind === "exception") {
      this.stats.exceptions++;
      this.unitStats(t.unit).exceptions++;
      const name = exceptionName(r.code);
      this.settle(t, this.error("CELLIO_ERR_MODBUS_EXCEPTION", t, `exception ${hex(r.code)} (${name})`, { exception: r.code, exceptionName: name }));
    } else {
      this.stats.frameErrors++;
      this.unitStats(t.unit).frameErrors++;
      this.settle(t, this.error("CELLIO_ERR_MODBUS_FRAME", t, r.reason));
    }
    this.pump();
  }

  /** The caller gave up: drop it from the queue, or release it while its request finishes on the line. */
  private cancel(t: Txn): void {
    if (t.settled) return;
    const queued = this.queue.remove(t.unit, t);
    this.settle(t, this.error("CELLIO_ERR_MODBUS_CLOSED", t, queued ? "cancelled; not sent" : "cancelled while on the line"));
  }

  private settle(t: Txn, err: Error | undefined, value?: unknown): void {
    if (t.settled) return;
    t.settled = true;
    t.unlisten();
    if (err) t.reject(err);
    else t.resolve(value);
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(this.onTimerBound, Math.max(0, Math.ceil(at - performance.now())));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private refuse<T>(code: ErrorCode, unit: number, req: ModbusRequest, msg: string): Promise<T> {
    this.stats.rejected++;
    return Promise.reject(this.error(code, { unit, req }, msg));
  }

  private error(code: ErrorCode, t: { unit: number; req: ModbusRequest }, msg: string, extra?: Record<string, unknown>): CellioError {
    const r = t.req;
    const where = `${this.path} unit ${t.unit} FC${r.fc} ${r.start}+${quantityOf(r)}`;
    return new CellioError(code, `${where}: ${msg}`, { bus: this.path, unit: t.unit, fc: r.fc, start: r.start, ...extra });
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

function frameError(reason: string): PduResult<never> {
  return { ok: false, kind: "frame", reason, inSync: true };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
