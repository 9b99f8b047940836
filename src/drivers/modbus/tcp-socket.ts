/**
 * The connection under the Modbus TCP client (tcp-client.ts): its options
 * (checked here), counters and transaction table; the socket's life
 * (connect with its timeout and TCP keepalive, close); and what a lost
 * socket or an unreadable byte stream does to the transactions it carried
 * (drop, streamError). Error messages name the device, unit, function and
 * addresses (where, error).
 *
 * The socket reads into one preallocated 64 KiB buffer (`onread`: no Buffer,
 * no 'data' event per read) and hands the bytes to the client's `onData`.
 * The request path (submit, send, match, complete, timeouts) is the
 * subclass, ModbusTcpClient: one object holds the state, so that path reads
 * these fields and calls its own methods directly.
 */
import net from "node:net";
import { CellioError, type ErrorCode } from "../../infra/errors.js";
import { judgeAfterIo } from "../../infra/late-timer.js";
import { FairQueue } from "./fair-queue.js";
import { type ModbusRequest, quantityOf } from "./pdu-client.js";
import type { ModbusClientStats, ModbusTcpClientOptions, Txn } from "./tcp-txn.js";

export abstract class TcpClientSocket {
  readonly stats: ModbusClientStats = {
    requests: 0, responses: 0, timeouts: 0, exceptions: 0, exceptionsByCode: new Uint32Array(256), frameErrors: 0,
    stale: 0, rejected: 0, bytesIn: 0, bytesOut: 0, connects: 0, disconnects: 0,
  };
  readonly device: string;
  protected sock: net.Socket | undefined;
  protected open = false;
  private connectAbort: ((msg: string) => void) | undefined;
  private closeCb: (() => void) | undefined;
  /** Bumped whenever the socket is replaced or dropped: a receiver stops on a stale one. */
  generation = 0;
  /** Where the socket reads into (onread). */
  private readonly inbuf = Buffer.allocUnsafe(64 * 1024);
  /** The requests on the wire, by slot (`maxInFlight` slots). */
  protected readonly slots: (Txn | undefined)[];
  protected inFlightCount = 0;
  /** Waiting requests: FIFO per unit id, round-robin between unit ids (units behind one gateway share fairly). */
  protected readonly queue: FairQueue<Txn>;
  protected timer: NodeJS.Timeout | undefined;
  protected timerAt = Number.POSITIVE_INFINITY;
  protected readonly maxInFlight: number;
  protected readonly deadlineFromSend: boolean;

  constructor(protected readonly opts: ModbusTcpClientOptions) {
    this.device = `${opts.host}:${opts.port}`;
    this.maxInFlight = opts.maxInFlight ?? 1;
    this.deadlineFromSend = opts.timeoutFrom === "send";
    const rtu = opts.framing === "rtu";
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1 || this.maxInFlight > 1024 || (rtu && this.maxInFlight !== 1)) {
      throw new CellioError("CELLIO_ERR_CONFIG", `${this.device}: maxInFlight ${this.maxInFlight} must be 1..1024 (1 for RTU framing)`);
    }
    this.slots = new Array<Txn | undefined>(this.maxInFlight).fill(undefined);
    this.queue = new FairQueue(opts.maxQueue ?? 64);
  }

  /** @internal Runs `fn`; an exception (a bug, or a throwing callback) drops the connection instead of escaping an event handler. */
  abstract guard(fn: () => unknown): void;

  /** Bytes `chunk[0, end)` from the socket. */
  protected abstract onData(chunk: Buffer, end: number): void;

  /** Frees `t`'s slot. */
  protected abstract release(t: Txn): void;

  /** Forgets any partial frame (MBAP) or resync (RTU): the socket they came from is gone. */
  protected abstract resetReceivers(): void;

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
      let pending: NodeJS.Immediate | undefined;
      const fail = (msg: string, code: ErrorCode = "CELLIO_ERR_MODBUS_CONNECT"): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (pending !== undefined) clearImmediate(pending);
        this.connectAbort = undefined;
        if (this.sock === sock) this.sock = undefined;
        sock.destroy();
        reject(new CellioError(code, `connect ${this.device}: ${msg}`, { device: this.device }));
      };
      // A late timer (this thread was stalled) judges after this turn's I/O: a connect that
      // completed in time has its 'connect' event queued behind the stall (infra/late-timer.ts).
      const dueAt = performance.now() + ms;
      const timer = setTimeout(() => {
        pending = judgeAfterIo(dueAt, () => fail(`no connection within ${ms} ms`));
      }, ms);
      this.connectAbort = (msg) => fail(msg, "CELLIO_ERR_MODBUS_CLOSED");
      sock.once("connect", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (pending !== undefined) clearImmediate(pending);
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

  /** `where` of error messages: device, unit, function, addresses. */
  where(t: { unit: number; req: ModbusRequest }): string {
    const r = t.req;
    const rw = r.fc === 23 ? ` write ${r.writeStart}+${r.values.length}` : "";
    return `${this.device} unit ${t.unit} FC${r.fc} ${r.fc === 23 ? "read " : ""}${r.start}+${quantityOf(r)}${rw}`;
  }

  error(code: ErrorCode, t: { unit: number; req: ModbusRequest }, msg: string, extra?: Record<string, unknown>): CellioError {
    return new CellioError(code, `${this.where(t)}: ${msg}`, { device: this.device, unit: t.unit, fc: t.req.fc, start: t.req.start, ...extra });
  }

  /** Closes the socket; rejects in-flight requests with `code` and queued ones with CLOSED. */
  protected drop(reason: string, code: ErrorCode, notify: boolean): void {
    const sock = this.sock;
    const wasOpen = this.open;
    this.sock = undefined;
    this.open = false;
    this.connectAbort?.(reason);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.generation += 1;
    this.resetReceivers();
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

  /** @internal The byte stream cannot be trusted: fail the culprit (or everything in flight) and drop the connection. */
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
}
