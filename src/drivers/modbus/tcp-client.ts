/**
 * cellio's Modbus TCP client: one socket, MBAP framing (Modbus Messaging on
 * TCP/IP v1.0b, tcp-mbap-receiver.ts) or RTU frames over TCP (a serial
 * gateway, tcp-rtu-receiver.ts), per-request timeouts, a bounded queue that
 * is FIFO per unit id and round-robin between unit ids (several units behind
 * one gateway share the connection fairly), and counters (tcp-txn.ts).
 *
 * This file is the request path: submit, send, match a response to its
 * request, complete, time out. Its base class (tcp-socket.ts) holds the
 * connection's state, options and counters, and its cold side: the socket's
 * life (connect, close) and the drop that fails what a lost socket carried.
 *
 * - MBAP: 16-bit wrapping transaction ids; up to `maxInFlight` requests on
 *   the wire, matched by tid; a late answer is dropped and counted as stale.
 *   With more than one, the frames of a tick are framed into one buffer and
 *   written together on the next tick (one write, one segment).
 *   A frame that leaves the byte stream in doubt closes the socket: the
 *   caller reconnects.
 * - RTU over TCP: one request in flight, matched by unit id and function
 *   code, CRC-checked; after any doubt the next request waits until the line
 *   has been silent for `rtuSilenceMs`. RTU has no transaction id: keep the
 *   timeout above the device's worst answer time.
 *
 * Socket handlers and timers never throw, every request settles: by its
 * answer, its timeout, or the close that rejects everything in flight. One
 * timer (re-armed for the earliest deadline) serves all requests. Whole
 * frames are parsed in place in the socket's read buffer.
 */
import { roundMs } from "../../infra/clock.js";
import { errorMessage, type ErrorCode } from "../../infra/errors.js";
import { type ModbusRequest, type PduResult, type ResponseOf, checkRequest, crc16, encodeRequestPdu, exceptionName, hex, requestPduLength } from "./pdu-client.js";
import { MBAP_HEADER, MbapReceiver } from "./tcp-mbap-receiver.js";
import { RtuReceiver } from "./tcp-rtu-receiver.js";
import { TcpClientSocket } from "./tcp-socket.js";
import { FrameStage } from "./tcp-stage.js";
import { MAX_ADU, Txn, type ModbusTcpClientOptions, type TxnCallback } from "./tcp-txn.js";
import { judgeAfterIo } from "../../infra/late-timer.js";

export { MAX_ADU, Txn, type Framing, type ModbusClientStats, type ModbusTcpClientOptions, type TxnCallback } from "./tcp-txn.js";

export class ModbusTcpClient extends TcpClientSocket {
  private nextTid = 0;
  /** RTU: the frame being assembled. */
  private readonly rx = Buffer.allocUnsafe(MAX_ADU);
  private readonly mbap = new MbapReceiver(this);
  /** Pipelined (maxInFlight > 1): this tick's frames, written together on the next. */
  private readonly stage: FrameStage | undefined;
  private readonly rtu: RtuReceiver | undefined;
  /**
   * The deadline timer. When it fires late (infra/late-timer.ts), the
   * decision waits for this turn's I/O: after a stall of this thread (a busy
   * core, a long task) libuv runs due timers before it reads the sockets, so
   * an answer that came in time would be taken for a timeout. An immediate
   * runs after the poll phase has read it, and expires only what was due
   * when the timer fired: a request that fell due later (in another stall,
   * before the immediate ran) waits for its own timer and its own poll
   * phase. On time, the decision is at once and strict: an answer after the
   * deadline is late.
   */
  private readonly onTimerFired = (): void => {
    const now = performance.now();
    const dueAt = this.timerAt;
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const firedAt = now + 0.5; // timers are ms-coarse
    judgeAfterIo(dueAt, () => this.guard(() => this.onTimer(firedAt)), now);
  };

  constructor(opts: ModbusTcpClientOptions) {
    super(opts);
    this.rtu = opts.framing === "rtu" ? new RtuReceiver(this, opts.rtuSilenceMs ?? 20) : undefined;
    this.stage = this.maxInFlight > 1 ? new FrameStage((sock) => sock === this.sock && this.open) : undefined;
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
    const size = this.rtu ? pduLen + 3 : MBAP_HEADER + pduLen;
    const stage = this.stage;
    const frame = stage ? stage.reserve(sock, size) : Buffer.allocUnsafe(size);
    try {
      this.frame(t, frame, stage ? stage.end - size : 0, pduLen);
    } catch (e) {
      stage?.unreserve(size); // no half-framed bytes go out with the others
      throw e;
    }
    let slot = 0;
    while (this.slots[slot] !== undefined) slot++;
    this.slots[slot] = t;
    t.slot = slot;
    this.inFlightCount += 1;
    t.staleAtSend = this.stats.stale;
    this.stats.requests += 1;
    this.stats.bytesOut += size;
    t.sentAt = performance.now();
    if (t.deadline === 0) this.setDeadline(t, t.sentAt);
    if (!stage) sock.write(frame);
  }

  private frame(t: Txn, frame: Buffer, at: number, pduLen: number): void {
    if (this.rtu) {
      frame[at] = t.unit;
      encodeRequestPdu(t.req, frame, at + 1);
      frame.writeUInt16LE(crc16(frame, at, pduLen + 1), at + pduLen + 1);
    } else {
      t.tid = this.allocTid();
      frame.writeUInt16BE(t.tid, at);
      frame.writeUInt16BE(0, at + 2);
      frame.writeUInt16BE(pduLen + 1, at + 4);
      frame[at + 6] = t.unit;
      encodeRequestPdu(t.req, frame, at + MBAP_HEADER);
    }
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

  protected override release(t: Txn): void {
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
  protected override onData(chunk: Buffer, end: number): void {
    this.stats.bytesIn += end;
    if (this.rtu) this.rtu.onData(chunk.subarray(0, end));
    else this.mbap.onData(chunk, end, this.generation);
  }

  private armTimer(deadline: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(this.onTimerFired, Math.max(0, deadline - performance.now()));
  }

  /** Expires the requests due at `now` (when the timer fired), then re-arms for the next deadline. */
  private onTimer(now: number): void {
    for (const t of this.slots) if (t && t.deadline <= now) this.timeout(t);
    const expired: Txn[] = [];
    for (const t of this.queue.items()) if (t.deadline !== 0 && t.deadline <= now) expired.push(t);
    for (const t of expired) {
      this.queue.remove(t.unit, t);
      this.stats.timeouts += 1;
      t.reject(this.error("CELLIO_ERR_MODBUS_TIMEOUT", t, `not sent within ${roundMs(t.timeoutMs)} ms (waited in the queue behind ${this.inFlightCount} in flight)`));
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
    t.reject(this.error("CELLIO_ERR_MODBUS_TIMEOUT", t, `no answer within ${roundMs(t.timeoutMs)} ms${note}`));
  }

  protected override resetReceivers(): void {
    this.mbap.reset();
    this.rtu?.reset();
  }

  /** @internal Runs `fn`; an exception (a bug, or a throwing callback) drops the connection instead of escaping an event handler. */
  override guard(fn: () => unknown): void {
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
