/**
 * cellio's Modbus TCP client: one socket, MBAP framing (Modbus Messaging on
 * TCP/IP v1.0b) or RTU frames over TCP (a serial gateway), transaction
 * matching, per-request timeouts, a bounded queue and counters.
 *
 * - MBAP: 16-bit wrapping transaction ids; up to `maxInFlight` requests on
 *   the wire; a response is matched by tid, and one whose tid matches nothing
 *   in flight (a late answer) is dropped and counted as stale. A frame that
 *   leaves the byte stream in doubt (bad protocol id, a length field out of
 *   range or disagreeing with the PDU, bytes after a frame that cannot start
 *   a header, a frame still incomplete when its request times out) closes
 *   the socket: the caller reconnects.
 * - RTU over TCP: one request in flight, matched by unit id and function
 *   code, CRC-checked; after any doubt (bad frame, timeout, unexpected bytes)
 *   the next request waits until the line has been silent for `rtuSilenceMs`.
 *
 *   RTU has no transaction id: a late answer that arrives after that silence,
 *   while the next request to the same unit and function is in flight, is
 *   indistinguishable from its answer (the byte count catches a different
 *   quantity). Keep the timeout above the device's worst answer time.
 *
 * Socket handlers and timers never throw, every request settles: by its
 * answer, its timeout, or the close that rejects everything in flight. One
 * timer serves all deadlines. The socket reads into one preallocated 64 KiB
 * buffer (`onread`: no Buffer, no 'data' event per read); complete frames are
 * parsed in place there, only a frame split across reads is copied, into a
 * 260-byte (largest ADU) buffer that never grows.
 */
import net from "node:net";
import { CellioError, errorMessage, type ErrorCode } from "../../infra/errors.js";
import {
  type ModbusRequest,
  type PduResult,
  type ResponseOf,
  NEED_MORE,
  checkRequest,
  crc16,
  encodeRequestPdu,
  exceptionName,
  hex,
  parseResponsePdu,
  quantityOf,
  requestPduLength,
  responsePduLength,
} from "./pdu-client.js";

export type Framing = "mbap" | "rtu";

export interface ModbusTcpClientOptions {
  host: string;
  port: number;
  /** "mbap" (Modbus TCP, default) or "rtu" (RTU frames over TCP). */
  framing?: Framing;
  connectTimeoutMs?: number;
  /** Requests on the wire at once (MBAP only; default 1: strictly sequential). */
  maxInFlight?: number;
  /** Requests waiting for a free slot; beyond it request() rejects (default 64). */
  maxQueue?: number;
  /** TCP keepalive initial delay (default 10 s). */
  keepAliveMs?: number;
  /** RTU: line silence that ends a frame and resynchronises (default 20 ms). */
  rtuSilenceMs?: number;
  /** Called on every matched response with the round trip in µs. Keep it allocation-free. */
  onLatency?: (micros: number, fc: number) => void;
}

export interface ModbusClientStats {
  /** Requests sent. */
  requests: number;
  /** Frames matched to a request (good, exception or malformed). */
  responses: number;
  timeouts: number;
  exceptions: number;
  /** Exception responses by exception code (index = code). */
  readonly exceptionsByCode: Uint32Array;
  frameErrors: number;
  /** Responses that matched nothing in flight (late answers), discarded. */
  stale: number;
  /** Refused by request(): invalid, not connected, queue full. */
  rejected: number;
  bytesIn: number;
  bytesOut: number;
  connects: number;
  disconnects: number;
}

/** One request from submission to settlement. */
export class Txn {
  tid = -1;
  slot = -1;
  deadline = 0;
  sentAt = 0;
  staleAtSend = 0;
  constructor(
    readonly unit: number,
    readonly req: ModbusRequest,
    readonly timeoutMs: number,
    readonly resolve: (v: unknown) => void,
    readonly reject: (e: Error) => void,
  ) {}
}

const MBAP_HEADER = 7;
/** Largest ADU: MBAP header + 253-byte PDU (an RTU ADU is at most 256). */
export const MAX_ADU = 260;

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
  private readonly queue: Txn[] = [];
  private nextTid = 0;
  /** Where the socket reads into (onread). */
  private readonly inbuf = Buffer.allocUnsafe(64 * 1024);
  /** One frame split across reads is completed here. */
  private readonly rx = Buffer.allocUnsafe(MAX_ADU);
  private rxLen = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private corked: net.Socket | undefined;
  private readonly rtu: RtuReceiver | undefined;
  private readonly maxInFlight: number;
  private readonly onTimerBound = (): void => this.guard(() => this.onTimer());
  private readonly uncorkBound = (): void => {
    this.corked?.uncork();
    this.corked = undefined;
  };

  constructor(private readonly opts: ModbusTcpClientOptions) {
    this.device = `${opts.host}:${opts.port}`;
    this.maxInFlight = opts.maxInFlight ?? 1;
    const rtu = opts.framing === "rtu";
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1 || this.maxInFlight > 1024 || (rtu && this.maxInFlight !== 1)) {
      throw new CellioError("CELLIO_ERR_CONFIG", `${this.device}: maxInFlight ${this.maxInFlight} must be 1..1024 (1 for RTU framing)`);
    }
    this.slots = new Array<Txn | undefined>(this.maxInFlight).fill(undefined);
    this.rtu = rtu ? new RtuReceiver(this, opts.rtuSilenceMs ?? 20) : undefined;
  }

  get isOpen(): boolean {
    return this.open;
  }
  get inFlight(): number {
    return this.inFlightCount;
  }
  get queued(): number {
    return this.queue.length;
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
          this.guard(() => sock === this.sock && this.onData(sock, this.inbuf, n));
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
    const bad =
      checkRequest(req) ??
      (!Number.isInteger(unit) || unit < (this.rtu ? 1 : 0) || unit > (this.rtu ? 247 : 255)
        ? `unit id ${unit} is outside ${this.rtu ? "1..247 (RTU)" : "0..255"}`
        : !(timeoutMs > 0 && Number.isFinite(timeoutMs))
          ? `timeout ${timeoutMs} ms is not a positive number`
          : undefined);
    if (bad !== undefined) return this.refuse("CELLIO_ERR_MODBUS_REQUEST", unit, req, bad);
    if (!this.open) return this.refuse("CELLIO_ERR_MODBUS_CLOSED", unit, req, "not connected");
    const canSend = this.inFlightCount < this.maxInFlight && this.queue.length === 0 && !this.rtu?.busy;
    if (!canSend && this.queue.length >= (this.opts.maxQueue ?? 64)) {
      return this.refuse("CELLIO_ERR_MODBUS_QUEUE_FULL", unit, req, `${this.queue.length} requests already waiting`);
    }
    return new Promise<ResponseOf<R>>((resolve, reject) => {
      const t = new Txn(unit, req, timeoutMs, resolve as (v: unknown) => void, reject);
      t.deadline = performance.now() + timeoutMs;
      if (t.deadline < this.timerAt) this.armTimer(t.deadline);
      if (canSend) this.send(t);
      else this.queue.push(t);
    });
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
    while (this.open && this.queue.length > 0 && this.inFlightCount < this.maxInFlight && !this.rtu?.busy) this.send(this.queue.shift()!);
  }

  // ---- private ------------------------------------------------------------------

  private refuse<T>(code: ErrorCode, unit: number, req: ModbusRequest, msg: string): Promise<T> {
    this.stats.rejected += 1;
    return Promise.reject(this.error(code, { unit, req }, msg));
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
    sock.write(frame);
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

  /** Bytes `chunk[0, end)` from the socket. */
  private onData(sock: net.Socket, chunk: Buffer, end: number): void {
    this.stats.bytesIn += end;
    if (this.rtu) {
      this.rtu.onData(chunk.subarray(0, end));
      return;
    }
    let off = 0;
    // Finish a frame split across chunks: copy just the bytes it still needs.
    while (this.rxLen > 0) {
      const need = this.rxLen < MBAP_HEADER ? MBAP_HEADER : this.frameLength(this.rx, 0);
      if (need < 0) return;
      if (this.rxLen === need) {
        this.rxLen = 0;
        if (!this.headerFollows(this.rx, 0, chunk, off, end)) return;
        this.onFrame(this.rx, 0, need);
        if (sock !== this.sock) return;
        break;
      }
      if (off === end) return;
      const take = Math.min(need - this.rxLen, end - off);
      chunk.copy(this.rx, this.rxLen, off, off + take);
      this.rxLen += take;
      off += take;
    }
    // Whole frames in place, without copying.
    while (end - off >= MBAP_HEADER) {
      const need = this.frameLength(chunk, off);
      if (need < 0) return;
      if (end - off < need) break;
      if (!this.headerFollows(chunk, off, chunk, off + need, end)) return;
      this.onFrame(chunk, off, need);
      if (sock !== this.sock) return;
      off += need;
    }
    if (off < end) this.rxLen = chunk.copy(this.rx, 0, off, end);
  }

  /** ADU length announced by the MBAP header at `off`; -1 after dropping the connection for a bad header. */
  private frameLength(buf: Buffer, off: number): number {
    const pid = buf.readUInt16BE(off + 2);
    const len = buf.readUInt16BE(off + 4);
    if (pid === 0 && len >= 2 && len <= MAX_ADU - 6) return 6 + len;
    const tid = buf.readUInt16BE(off);
    const why =
      pid !== 0
        ? `protocol id ${pid}, expected 0 (tid ${hex(tid, 4)}, length ${len})`
        : `MBAP length field ${len} is outside 2..${MAX_ADU - 6} (tid ${hex(tid, 4)})`;
    this.streamError(why, this.slots[this.slotOfTid(tid)]);
    return -1;
  }

  /**
   * Whether the bytes at `next` (if any) can start an MBAP header. A frame cut
   * short borrows the first bytes of the frame after it and still looks whole;
   * the misaligned rest gives it away, so check before delivering the frame at
   * `buf[off]`. False after dropping the connection.
   */
  private headerFollows(buf: Buffer, off: number, chunk: Buffer, next: number, end: number): boolean {
    const avail = end - next;
    if (avail < 3) return true;
    const pid = avail >= 4 ? chunk.readUInt16BE(next + 2) : chunk[next + 2]! << 8;
    const len = avail >= 6 ? chunk.readUInt16BE(next + 4) : 2;
    if (pid === 0 && len >= 2 && len <= MAX_ADU - 6) return true;
    const why = `the bytes after this frame do not start an MBAP header (protocol id ${pid}, length ${len}): frame cut short or its length field too short`;
    this.streamError(why, this.slots[this.slotOfTid(buf.readUInt16BE(off))]);
    return false;
  }

  private onFrame(buf: Buffer, off: number, total: number): void {
    const t = this.slots[this.slotOfTid(buf.readUInt16BE(off))];
    if (!t) {
      this.stats.stale += 1;
      return;
    }
    const unit = buf[off + 6]!;
    if (unit !== t.unit) {
      const pdu = total - MBAP_HEADER;
      const inSync = responsePduLength(buf, off + MBAP_HEADER, pdu) === pdu;
      this.complete(t, { ok: false, kind: "frame", reason: `unit id ${unit}, expected ${t.unit}`, inSync });
      return;
    }
    const r = parseResponsePdu(t.req, buf, off + MBAP_HEADER, total - MBAP_HEADER);
    this.complete(t, !r.ok && r.kind === "frame" && !r.inSync ? { ...r, reason: `${r.reason}; MBAP length field ${total - 6}` } : r);
  }

  /** The byte stream cannot be trusted: fail the culprit (or everything in flight) and drop the connection. */
  private streamError(reason: string, culprit: Txn | undefined): void {
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
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const t = this.queue[i]!;
      if (t.deadline > now) continue;
      this.queue.splice(i, 1);
      this.stats.timeouts += 1;
      t.reject(this.error("CELLIO_ERR_MODBUS_TIMEOUT", t, `not sent within ${t.timeoutMs} ms (waited in the queue behind ${this.inFlightCount} in flight)`));
    }
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.slots) if (t && t.deadline < next) next = t.deadline;
    for (const t of this.queue) if (t.deadline < next) next = t.deadline;
    if (next < this.timerAt) this.armTimer(next);
    this.pump();
  }

  private timeout(t: Txn): void {
    if (!this.slots.includes(t)) return; // settled by an earlier timeout's drop
    if (this.rtu) {
      this.rtu.timeout(t);
      return;
    }
    if (this.rxLen > 0) {
      // A partial frame that is stuck: truncated, or its length field lies.
      const tid = this.rxLen >= 2 ? this.rx.readUInt16BE(0) : -1;
      const owner = this.slots[this.slotOfTid(tid)];
      if (owner === undefined || owner === t) {
        const announced = this.rxLen >= 6 ? String(6 + this.rx.readUInt16BE(4)) : "?";
        const why = `incomplete response: ${this.rxLen} of ${announced} bytes received within ${t.timeoutMs} ms (truncated frame or length field too long)`;
        this.streamError(why, owner);
        return;
      }
    }
    this.timeoutNoAnswer(t);
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
    this.rxLen = 0;
    this.rtu?.reset();
    for (const t of this.slots) {
      if (!t) continue;
      this.release(t);
      t.reject(this.error(code, t, reason));
    }
    for (const t of this.queue.splice(0)) t.reject(this.error("CELLIO_ERR_MODBUS_CLOSED", t, `${reason}; not sent`));
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

/**
 * RTU frames over TCP: the response to the one request in flight, assembled
 * from chunks into the client's receive buffer. Its length follows from the
 * unit id, function code and byte count; a wrong unit id or function code
 * fails at once, a bad CRC waits for the silence to tell an over-long frame
 * from a corrupted one, a partial frame fails at the silence. Until the line
 * is silent after a doubt (`busy`), nothing is sent.
 */
class RtuReceiver {
  private len = 0;
  private resyncing = false;
  /** Expected frame length while collecting the rest of a frame whose CRC failed; 0 otherwise. */
  private crcHold = 0;
  /** The next bytes during this resync are a late answer (after a timeout), to be counted as stale. */
  private countLate = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onSilenceBound = (): void => this.host.guard(() => this.onSilence());

  constructor(
    private readonly host: ModbusTcpClient,
    private readonly silenceMs: number,
  ) {}

  get busy(): boolean {
    return this.resyncing || this.crcHold > 0;
  }

  onData(chunk: Buffer): void {
    const rx = this.host.rxBuffer;
    const t = this.host.current();
    if (this.crcHold > 0) {
      this.len += chunk.copy(rx, this.len);
    } else if (this.resyncing || !t) {
      // Bytes nobody waits for (a late answer, noise) count once per resync; the rest of a bad frame does not.
      if (!this.resyncing || this.countLate) this.host.stats.stale += 1;
      this.countLate = false;
      this.resyncing = true;
    } else {
      const room = rx.length - this.len;
      this.len += chunk.copy(rx, this.len);
      this.check(t, chunk.length > room);
      return;
    }
    this.armSilence();
  }

  private check(t: Txn, overflow: boolean): void {
    const rx = this.host.rxBuffer;
    const fc = t.req.fc;
    if (rx[0] !== t.unit) return this.fail(t, `unit id ${rx[0]!}, expected ${t.unit}`);
    if (this.len >= 2 && rx[1] !== fc && rx[1] !== (fc | 0x80)) return this.fail(t, `function code ${hex(rx[1]!)}, expected ${hex(fc)} or ${hex(fc | 0x80)}`);
    const pdu = this.len >= 2 ? responsePduLength(rx, 1, this.len - 1) : NEED_MORE;
    if (pdu === NEED_MORE || this.len < pdu + 3) {
      if (overflow) return this.fail(t, `more than ${rx.length} bytes without a complete frame`);
      return this.armSilence();
    }
    const need = pdu + 3;
    if (crc16(rx, 0, need - 2) !== rx.readUInt16LE(need - 2)) {
      this.crcHold = need;
      return this.armSilence();
    }
    const extra = this.len > need || overflow;
    this.len = 0;
    if (extra) {
      this.host.stats.stale += 1;
      this.resync();
    } else if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.host.complete(t, parseResponsePdu(t.req, rx, 1, pdu));
  }

  private fail(t: Txn, reason: string): void {
    this.resync();
    this.host.failFrame(t, reason);
  }

  /** Discard everything until the line is silent. */
  resync(): void {
    this.len = 0;
    this.crcHold = 0;
    this.resyncing = true;
    this.countLate = false;
    this.armSilence();
  }

  timeout(t: Txn): void {
    if (this.len > 0 || this.crcHold > 0) return this.fail(t, `incomplete response: ${this.len} bytes received within ${t.timeoutMs} ms`);
    this.host.timeoutNoAnswer(t);
    this.resync(); // a late answer must not be taken for the next request's
    this.countLate = true;
  }

  reset(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.len = 0;
    this.crcHold = 0;
    this.resyncing = false;
  }

  private armSilence(): void {
    if (this.timer !== undefined) this.timer.refresh();
    else this.timer = setTimeout(this.onSilenceBound, this.silenceMs);
  }

  private onSilence(): void {
    this.timer = undefined;
    const rx = this.host.rxBuffer;
    const t = this.host.current();
    const len = this.len;
    const need = this.crcHold > 0 ? this.crcHold : len >= 2 ? responsePduLength(rx, 1, len - 1) + 3 : 0;
    const wasHolding = this.crcHold > 0;
    this.reset();
    if (t && len > 0) {
      const crcOk = len >= 4 && crc16(rx, 0, len - 2) === rx.readUInt16LE(len - 2);
      let reason: string;
      if (wasHolding && crcOk && len > need) reason = `over-long response: ${len} bytes with a valid CRC, ${need} expected`;
      else if (wasHolding) reason = `CRC mismatch: received ${hex(rx.readUInt16LE(need - 2), 4)}, computed ${hex(crc16(rx, 0, need - 2), 4)}`;
      else if (crcOk) reason = `frame of ${len} bytes has a valid CRC but its header announces ${need} (byte count wrong)`;
      else reason = `truncated response: ${len} of ${need > 2 ? need : "?"} bytes, then ${this.silenceMs} ms of silence`;
      this.host.complete(t, { ok: false, kind: "frame", reason, inSync: true }); // the silence has resynchronised the line
      return;
    }
    this.host.pump();
  }
}
