/**
 * cellio's Modbus TCP client: one socket, MBAP framing (Modbus Messaging on
 * TCP/IP v1.0b, tcp-mbap-receiver.ts) or RTU frames over TCP (a serial
 * gateway, tcp-rtu-receiver.ts), per-request timeouts, a bounded queue that
 * is FIFO per unit id and round-robin between unit ids (several units behind
 * one gateway share the connection fairly), and counters (tcp-txn.ts).
 *
 * - MBAP: 16-bit wrapping transaction ids; up to `maxInFlight` requests on
 *   the wire, matched by tid; a late answer is dropped and counted as stale.
 *   A frame that leaves the byte stream in doubt closes the socket: the
 *   caller reconnects.
 * - RTU over TCP: one request in flight, matched by unit id and function
 *   code, CRC-checked; after any doubt the next request waits until the line
 *   has been silent for `rtuSilenceMs`. RTU has no transaction id: keep the
 *   timeout above the device's worst answer time.
 *
 * Socket handlers and timers never throw, every request settles: by its
 * answer, its timeout, or the close that rejects everything in flight. One
 * timer (re-armed for the earliest deadline) serves all requests. The socket
 * reads into one preallocated 64 KiB buffer (`onread`: no Buffer, no 'data'
 * event per read); whole frames are parsed in place there.
 */
import net from "node:net";
import { CellioError, errorMessage, type ErrorCode } from "../../infra/errors.js";
import { type ModbusRequest, type PduResult, type ResponseOf, checkRequest, crc16, encodeRequestPdu, exceptionName, hex, quantityOf, requestPduLength } from "./pdu-client.js";
import { FairQueue } from "./fair-queue.js";
import { MBAP_HEADER, MbapReceiver } from "./tcp-mbap-receiver.js";
import { RtuReceiver } from "./tcp-rtu-receiver.js";
import { MAX_ADU, Txn, type ModbusClientStats, type ModbusTcpClientOptions, type TxnCallback } from "./tcp-txn.js";

export { MAX_ADU, Txn, type Framing, type ModbusClientStats, type ModbusTcpClientOptions, type TxnCallback } from "./tcp-txn.js";

export class ModbusTcpClient {
  readonly stats: ModbusClientStats = {
    requests: 0, responses: 0, timeouts: 0, exceptions: 0, exceptionsByCode: new Uint32Array(256), frameErrors: 0,
    stale: 0, rejected: 0, bytesIn: 0, bytesOut: 0, connects: 0, disconnects: 0,
  };
  readonly device: string;
  private sock: net.Socket | undefined;
  private open = false;
  private connectAbort: ((msg: string) => void) | undefined;
  private closeCb: (() => void) | undefined;
  private readonly slots: (Txn | undefined)[];
  private inFlightCount = 0;
  /** Waiting requests: FIFO per unit id, round-robin between unit ids (units behind one gateway share fairly). */
  private readonly queue: FairQueue<Txn>;
  /** Bumped whenever the socket is replaced or dropped: a receiver stops on a stale one. */
  generation = 0;
  private nextTid = 0;
  /** Where the socket reads into (onread). */
  private readonly inbuf = Buffer.allocUnsafe(64 * 1024);
  /** RTU: the frame being assembled. */
  private readonly rx = Buffer.allocUnsafe(MAX_ADU);
  private readonly mbap = new MbapReceiver(this);
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private corked: net.Socket | undefined;
  private readonly rtu: RtuReceiver | undefined;
  private readonly maxInFlight: number;
  private readonly deadlineFromSend: boolean;
  private readonly onTimerBound = (): void => this.guard(() => this.onTimer());
  private readonly uncorkBound = (): void => {
    this.corked?.uncork();
    this.corked = undefined;
  };

  constructor(private readonly opts: ModbusTcpClientOptions) {
    this.device = `${opts.host}:${opts.port}`;
    this.maxInFlight = opts.maxInFlight ?? 1;
    this.deadlineFromSend = opts.timeoutFrom === "send";
    const rtu = opts.framing === "rtu";
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1 || this.maxInFlight > 1024 || (rtu && this.maxInFlight !== 1)) {
      throw new CellioError("CELLIO_ERR_CONFIG", `${this.device}: maxInFlight ${this.maxInFlight} must be 1..1024 (1 for RTU framing)`);
    }
    this.slots = new Array<Txn | undefined>(this.maxInFlight).fill(undefined);
    this.queue = new FairQueue(opts.maxQueue ?? 64);
    this.rtu = rtu ? new RtuReceiver(this, opts.rtuSilenceMs ?? 20) : undefined;
  }

  get isOpen(): boolean {
    return this.open;
  }
  get inFlight(): number {
    return this.inFlightCount;
  }
  get queued(): number {
    return this.queue.size;
  }

  /** Called when the connection drops other than by close() or connect(). */
  onClose(cb: () => void): void {
    this.closeCb = cb;
  }

  /** Opens the socket (closing any previous one, which rejects what it carried). */
  connect(): Promise<void> {
    if (this.sock) this.drop("connection replaced by a new connect()", "CELLIO_ERR_MODBUS_CLOSED", false);
    const { host, port } = this.opts;
    const ms = this.opts.connectTimeoutMs ?? 3000;
    const keepAlive = this.opts.keepAliveMs ?? 10_000;
    return new Promise<void>((resolve, reject) => {
      // onread: the kernel's bytes land in one preallocated buffer, no Buffer and no 'data' event per chunk.
      const onread = {
        buffer: this.inbuf,
        callback: (n: number): boolean => {
          this.guard(() => sock === this.sock && this.onData(this.inbuf, n));
          return true;
        },
      };
      const sock = net.connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: keepAlive, onread });
      this.sock = sock;
      let settled = false;
      let lastError = "";
      const fail = (msg: string, code: ErrorCode = "CELLIO_ERR_MODBUS_CONNECT"): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.connectAbort = undefined;
        if (this.sock === sock) this.sock = undefined;
        sock.destroy();
        reject(new CellioError(code, `connect ${this.device}: ${msg}`, { device: this.device }));
      };
      const timer = setTimeout(() => fail(`no connection within ${ms} ms`), ms);
      this.connectAbort = (msg) => fail(msg, "CELLIO_ERR_MODBUS_CLOSED");
      sock.once("connect", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.connectAbort = undefined;
        this.open = true;
        this.stats.connects += 1;
        sock.setNoDelay(true);
        sock.setKeepAlive(true, keepAlive);
        resolve();
      });
      sock.on("error", (e: Error) => {
        lastError = e.message;
        fail(e.message);
      });
      sock.on("close", () =>
        this.guard(() => {
          fail(lastError || "connection closed while connecting");
          const why = lastError ? `connection closed by the server (${lastError})` : "connection closed by the server";
          if (this.sock === sock) this.drop(why, "CELLIO_ERR_MODBUS_CLOSED", true);
        }),
      );
    });
  }

  /** Closes the socket; everything in flight or queued rejects with CELLIO_ERR_MODBUS_CLOSED. */
  close(): Promise<void> {
    const sock = this.sock;
    this.drop("connection closed by the client", "CELLIO_ERR_MODBUS_CLOSED", false);
    if (!sock || sock.closed) return Promise.resolve();
    return new Promise((resolve) => sock.once("close", () => resolve()));
  }

  /** Sends `req` to `unit`; settles within `timeoutMs` (queue time included). */
  request<R extends ModbusRequest>(unit: number, req: R, timeoutMs: number): Promise<ResponseOf<R>> {
    return new Promise<ResponseOf<R>>((resolve, reject) => {
      this.submit(unit, req, timeoutMs, (err, value) => (err ? reject(err) : resolve(value as ResponseOf<R>)));
    });
  }

  /**
   * `request` with a callback instead of a Promise (the poll path: no
   * Promise, no microtask per request). `done` is called exactly once: at
   * once when the request is refused (invalid, not connected, queue full),
   * else from the socket's or the timer's handler.
   */
  submit(unit: number, req: ModbusRequest, timeoutMs: number, done: TxnCallback): void {
    const bad =
      checkRequest(req) ??
      (!Number.isInteger(unit) || unit < (this.rtu ? 1 : 0) || unit > (this.rtu ? 247 : 255)
        ? `unit id ${unit} is outside ${this.rtu ? "1..247 (RTU)" : "0..255"}`
        : !(timeoutMs > 0 && Number.isFinite(timeoutMs))
          ? `timeout ${timeoutMs} ms is not a positive number`
          : undefined);
    if (bad !== undefined) return this.refuse("CELLIO_ERR_MODBUS_REQUEST", unit, req, bad, done);
    if (!this.open) return this.refuse("CELLIO_ERR_MODBUS_CLOSED", unit, req, "not connected", done);
    const canSend = this.inFlightCount < this.maxInFlight && this.queue.size === 0 && !this.rtu?.busy;
    if (!canSend && this.queue.size >= this.queue.capacity) {
      return this.refuse("CELLIO_ERR_MODBUS_QUEUE_FULL", unit, req, `${this.queue.size} requests already waiting`, done);
    }
    const t = new Txn(unit, req, timeoutMs, done);
    if (canSend) this.send(t);
    else {
      if (!this.deadlineFromSend) this.setDeadline(t, performance.now());
      this.queue.push(unit, t);
    }
  }

  // ---- internals shared with the RTU receiver ----------------------------------

  /** `where` of error messages: device, unit, function, addresses. */
  where(t: { unit: number; req: ModbusRequest }): string {
    const r = t.req;
    const rw = r.fc === 23 ? ` write ${r.writeStart}+${r.values.length}` : "";
    return `${this.device} unit ${t.unit} FC${r.fc} ${r.fc === 23 ? "read " : ""}${r.start}+${quantityOf(r)}${rw}`;
  }

  error(code: ErrorCode, t: { unit: number; req: ModbusRequest }, msg: string, extra?: Record<string, unknown>): CellioError {
    return new CellioError(code, `${this.where(t)}: ${msg}`, { device: this.device, unit: t.unit, fc: t.req.fc, start: t.req.start, ...extra });
  }

  current(): Txn | undefined {
    return this.slots[0];
  }

  /** Frees `t`'s slot and settles it with a parsed response; an out-of-sync frame drops (MBAP) or resyncs (RTU). */
  complete(t: Txn, r: PduResult<unknown>): void {
    this.release(t);
    this.stats.responses += 1;
    if (this.opts.onLatency) {
      try {
        this.opts.onLatency((performance.now() - t.sentAt) * 1000, t.req.fc);
      } catch {
        // a metrics hook must not break the transaction
      }
    }
    if (r.ok) {
      t.resolve(r.value);
    } else if (r.kind === "exception") {
      this.stats.exceptions += 1;
      this.stats.exceptionsByCode[r.code & 0xff]! += 1;
      const name = exceptionName(r.code);
      t.reject(this.error("CELLIO_ERR_MODBUS_EXCEPTION", t, `exception ${hex(r.code)} (${name})`, { exception: r.code, exceptionName: name }));
    } else {
      this.stats.frameErrors += 1;
      if (r.inSync) t.reject(this.error("CELLIO_ERR_MODBUS_FRAME", t, r.reason));
      else if (this.rtu) {
        t.reject(this.error("CELLIO_ERR_MODBUS_FRAME", t, r.reason));
        this.rtu.resync();
      } else {
        t.reject(this.error("CELLIO_ERR_MODBUS_FRAME", t, `${r.reason}; connection dropped to resynchronise`));
        this.drop(`connection dropped after a framing error on another transaction (${r.reason})`, "CELLIO_ERR_MODBUS_CLOSED", true);
        return;
      }
    }
    this.pump();
  }

  /** Fails `t` with a framing error found before its PDU could be parsed. */
  failFrame(t: Txn, reason: string): void {
    this.complete(t, { ok: false, kind: "frame", reason, inSync: false });
  }

  /** Sends queued requests while slots are free. */
  pump(): void {
    while (this.open && this.queue.size > 0 && this.inFlightCount < this.maxInFlight && !this.rtu?.busy) this.send(this.queue.shift()!);
  }

  // ---- private ------------------------------------------------------------------

  private refuse(code: ErrorCode, unit: number, req: ModbusRequest, msg: string, done: TxnCallback): void {
    this.stats.rejected += 1;
    done(this.error(code, { unit, req }, msg), undefined);
  }

  private send(t: Txn): void {
    const sock = this.sock!;
    const pduLen = requestPduLength(t.req);
    let frame: Buffer;
    if (this.rtu) {
      frame = Buffer.allocUnsafe(pduLen + 3);
      frame[0] = t.unit;
      encodeRequestPdu(t.req, frame, 1);
      frame.writeUInt16LE(crc16(frame, 0, pduLen + 1), pduLen + 1);
    } else {
      frame = Buffer.allocUnsafe(MBAP_HEADER + pduLen);
      t.tid = this.allocTid();
      frame.writeUInt16BE(t.tid, 0);
      frame.writeUInt16BE(0, 2);
      frame.writeUInt16BE(pduLen + 1, 4);
      frame[6] = t.unit;
      encodeRequestPdu(t.req, frame, MBAP_HEADER);
    }
    let slot = 0;
    while (this.slots[slot] !== undefined) slot++;
    this.slots[slot] = t;
    t.slot = slot;
    this.inFlightCount += 1;
    t.staleAtSend = this.stats.stale;
    this.stats.requests += 1;
    this.stats.bytesOut += frame.length;
    if (this.maxInFlight > 1 && this.corked === undefined) {
      sock.cork(); // requests submitted in one tick leave in one segment
      this.corked = sock;
      process.nextTick(this.uncorkBound);
    }
    t.sentAt = performance.now();
    if (t.deadline === 0) this.setDeadline(t, t.sentAt);
    sock.write(frame);
  }

  private setDeadline(t: Txn, from: number): void {
    t.deadline = from + t.timeoutMs;
    if (t.deadline < this.timerAt) this.armTimer(t.deadline);
  }

  private allocTid(): number {
    for (;;) {
      const tid = this.nextTid;
      this.nextTid = (tid + 1) & 0xffff;
      if (this.slotOfTid(tid) < 0) return tid;
    }
  }

  private slotOfTid(tid: number): number {
    for (let i = 0; i < this.slots.length; i++) if (this.slots[i]?.tid === tid) return i;
    return -1;
  }

  private release(t: Txn): void {
    if (t.slot >= 0 && this.slots[t.slot] === t) {
      this.slots[t.slot] = undefined;
      this.inFlightCount -= 1;
    }
    t.slot = -1;
  }

  /** @internal The request in flight with transaction id `tid`. */
  txnOfTid(tid: number): Txn | undefined {
    return this.slots[this.slotOfTid(tid)];
  }

  /** Bytes `chunk[0, end)` from the socket. */
  private onData(chunk: Buffer, end: number): void {
    this.stats.bytesIn += end;
    if (this.rtu) this.rtu.onData(chunk.subarray(0, end));
    else this.mbap.onData(chunk, end, this.generation);
  }

  /** The byte stream cannot be trusted: fail the culprit (or everything in flight) and drop the connection. */
  /** @internal */
  streamError(reason: string, culprit: Txn | undefined): void {
    this.stats.frameErrors += 1;
    if (culprit) {
      this.release(culprit);
      this.stats.responses += 1;
      culprit.reject(this.error("CELLIO_ERR_MODBUS_FRAME", culprit, `${reason}; connection dropped to resynchronise`));
      this.drop(`connection dropped after a framing error on another transaction (${reason})`, "CELLIO_ERR_MODBUS_CLOSED", true);
    } else {
      this.drop(`unreadable response stream (${reason}); connection dropped to resynchronise`, "CELLIO_ERR_MODBUS_FRAME", true);
    }
  }

  private armTimer(deadline: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(this.onTimerBound, Math.max(0, deadline - performance.now()));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now() + 0.5; // timers are ms-coarse
    for (const t of this.slots) if (t && t.deadline <= now) this.timeout(t);
    const expired: Txn[] = [];
    for (const t of this.queue.items()) if (t.deadline !== 0 && t.deadline <= now) expired.push(t);
    for (const t of expired) {
      this.queue.remove(t.unit, t);
      this.stats.timeouts += 1;
      t.reject(this.error("CELLIO_ERR_MODBUS_TIMEOUT", t, `not sent within ${t.timeoutMs} ms (waited in the queue behind ${this.inFlightCount} in flight)`));
    }
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.slots) if (t && t.deadline < next) next = t.deadline;
    for (const t of this.queue.items()) if (t.deadline !== 0 && t.deadline < next) next = t.deadline;
    if (next < this.timerAt) this.armTimer(next);
    this.pump();
  }

  private timeout(t: Txn): void {
    if (!this.slots.includes(t)) return; // settled by an earlier timeout's drop
    if (this.rtu) {
      this.rtu.timeout(t);
      return;
    }
    if (!this.mbap.stuck(t)) this.timeoutNoAnswer(t);
  }

  /** @internal */
  timeoutNoAnswer(t: Txn): void {
    this.release(t);
    this.stats.timeouts += 1;
    const stale = this.stats.stale - t.staleAtSend;
    const note = stale > 0 ? `; ${stale} unmatched response(s) discarded meanwhile` : "";
    t.reject(this.error("CELLIO_ERR_MODBUS_TIMEOUT", t, `no answer within ${t.timeoutMs} ms${note}`));
  }

  /** Closes the socket; rejects in-flight requests with `code` and queued ones with CLOSED. */
  private drop(reason: string, code: ErrorCode, notify: boolean): void {
    const sock = this.sock;
    const wasOpen = this.open;
    this.sock = undefined;
    this.open = false;
    this.connectAbort?.(reason);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.generation += 1;
    this.mbap.reset();
    this.rtu?.reset();
    for (const t of this.slots) {
      if (!t) continue;
      this.release(t);
      t.reject(this.error(code, t, reason));
    }
    for (const t of this.queue.drain()) t.reject(this.error("CELLIO_ERR_MODBUS_CLOSED", t, `${reason}; not sent`));
    if (sock) sock.destroy();
    if (wasOpen) this.stats.disconnects += 1;
    if (notify && wasOpen) this.guard(() => this.closeCb?.());
  }

  /** @internal Runs `fn`; an exception (a bug, or a throwing callback) drops the connection instead of escaping an event handler. */
  guard(fn: () => unknown): void {
    try {
      fn();
    } catch (e) {
      if (this.sock) this.drop(`internal error: ${errorMessage(e)}`, "CELLIO_ERR_MODBUS_FRAME", true);
    }
  }

  /** Buffer for the RTU receiver (the same preallocated ADU). */
  get rxBuffer(): Buffer {
    return this.rx;
  }
}
