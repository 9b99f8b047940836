/**
 * Every request of one device goes through here: its unit id and timeout,
 * the busy policy (exception 06 "server busy" and 05 "acknowledge": a short
 * pause and a retry, a bounded number of times, never past the request's
 * budget), and the device's counters (requests, errors by kind, exception
 * codes, busy retries, latency).
 */
import { isCellioError } from "../../infra/errors.js";
import { Histogram } from "../../loop/histogram.js";
import type { ReadFc, WriteFc } from "./plan.js";
import type { ModbusTransport, ReadDone, ReadPdu } from "./transport.js";

/** Per-device counters; `ModbusTcpDriver.stats()` returns a snapshot of them. */
export interface ModbusDeviceStats {
  /** Requests sent, retries included. */
  requests: number;
  /** Requests answered with data (or a write confirmation). */
  ok: number;
  /** Failed requests by kind. */
  errors: { timeout: number; exception: number; frame: number; closed: number; other: number };
  /** Exception answers by exception code (1..11; busy answers that were retried included). */
  exceptionsByCode: Record<number, number>;
  /** Retries after exception 06 (busy) or 05 (acknowledge). */
  busyRetries: number;
  /** Connections re-made after the first (RTU: re-attachments to the bus). */
  reconnects: number;
  /** Connect attempts that failed (watchdog arming included). */
  connectFailures: number;
  /** Watchdog arming: successful arms and failures (write or read-back). */
  watchdogArms: number;
  watchdogFailures: number;
  /** Outputs whose read-back (`verify: true`) did not match. */
  verifyFailures: number;
  /** Round trip of each request that got an answer. */
  readonly latency: Histogram;
}

export function newDeviceStats(): ModbusDeviceStats {
  return {
    requests: 0,
    ok: 0,
    errors: { timeout: 0, exception: 0, frame: 0, closed: 0, other: 0 },
    exceptionsByCode: {},
    busyRetries: 0,
    reconnects: 0,
    connectFailures: 0,
    watchdogArms: 0,
    watchdogFailures: 0,
    verifyFailures: 0,
    latency: new Histogram(),
  };
}

export interface RequesterOptions {
  readonly unit: number;
  readonly timeoutMs: number;
  readonly busyRetries: number;
  readonly busyPauseMs: number;
}

const BUSY = 0x06;
const ACKNOWLEDGE = 0x05;

function exceptionCode(e: unknown): number | undefined {
  if (!isCellioError(e, "CELLIO_ERR_MODBUS_EXCEPTION")) return undefined;
  const c = e.details.exception;
  return typeof c === "number" ? c : undefined;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export class DeviceRequester {
  readonly stats = newDeviceStats();

  constructor(
    private readonly transport: ModbusTransport,
    private readonly opts: RequesterOptions,
  ) {}

  read(fc: ReadFc, start: number, count: number, budgetMs = this.opts.timeoutMs): Promise<number[] | boolean[]> {
    return this.run((t) => this.transport.read(this.opts.unit, fc, start, count, t), budgetMs);
  }

  /**
   * `read` with a callback, for the poll path: the first attempt costs no
   * Promise when the transport has `readWith`, and no closure: the call is
   * made once per request of the plan and reused. Busy retries and failures
   * take the Promise path, so `done` then comes later, never at once.
   */
  readPlanned(call: PlannedRead): void {
    const transport = this.transport;
    if (!transport.readWith) {
      const { fc, start, count } = call.pdu;
      this.read(fc, start, count).then(
        (v) => call.done(undefined, v),
        (e: unknown) => call.done(asError(e), undefined),
      );
      return;
    }
    call.first = performance.now();
    this.stats.requests++;
    transport.readWith(this.opts.unit, call.pdu, this.opts.timeoutMs, call.settle);
  }

  /** The transport's answer to a planned read's first attempt. */
  settlePlanned(call: PlannedRead, err: Error | undefined, value: number[] | boolean[] | undefined): void {
    if (!err) {
      call.done(undefined, this.answered(value!, call.first));
      return;
    }
    const transport = this.transport;
    const { unit, timeoutMs } = this.opts;
    const { fc, start, count } = call.pdu;
    const first = call.first;
    const send = (t: number): Promise<number[] | boolean[]> => transport.read(unit, fc, start, count, t);
    this.retry(send, err, first, first + timeoutMs).then(
      (v) => call.done(undefined, v),
      (e: unknown) => call.done(asError(e), undefined),
    );
  }

  write(fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], budgetMs = this.opts.timeoutMs): Promise<void> {
    return this.run((t) => this.transport.write(this.opts.unit, fc, start, values, t), budgetMs);
  }

  /**
   * One request; on busy/acknowledge a pause and a retry while retries are
   * left and the budget (from the first attempt) allows a retry of at least
   * 1 ms. The first attempt costs one `then`, no async frame (the poll path).
   */
  private run<T>(send: (timeoutMs: number) => Promise<T>, budgetMs: number): Promise<T> {
    const first = performance.now();
    const budget = Math.min(budgetMs, this.opts.timeoutMs);
    this.stats.requests++;
    // the budget itself, not `deadline - first`: that float difference is not the budget
    return send(budget).then(
      (v) => this.answered(v, first),
      (e: unknown) => this.retry(send, e, first, first + budget),
    );
  }

  private answered<T>(v: T, t0: number): T {
    this.stats.ok++;
    this.stats.latency.recordMs(performance.now() - t0);
    return v;
  }

  private async retry<T>(send: (timeoutMs: number) => Promise<T>, error: unknown, t0: number, deadline: number): Promise<T> {
    let e = error;
    for (let attempt = 0; ; attempt++) {
      const code = exceptionCode(e);
      this.count(e, code, t0);
      if ((code !== BUSY && code !== ACKNOWLEDGE) || attempt >= this.opts.busyRetries) throw e;
      const pause = this.opts.busyPauseMs;
      if (deadline - performance.now() - pause < 1) throw e;
      this.stats.busyRetries++;
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      t0 = performance.now();
      this.stats.requests++;
      try {
        return this.answered(await send(Math.max(1, deadline - t0)), t0);
      } catch (next) {
        e = next;
      }
    }
  }

  private count(e: unknown, code: number | undefined, t0: number): void {
    const err = this.stats.errors;
    if (code !== undefined) {
      err.exception++;
      this.stats.exceptionsByCode[code] = (this.stats.exceptionsByCode[code] ?? 0) + 1;
      this.stats.latency.recordMs(performance.now() - t0);
    } else if (isCellioError(e, "CELLIO_ERR_MODBUS_TIMEOUT")) err.timeout++;
    else if (isCellioError(e, "CELLIO_ERR_MODBUS_FRAME")) err.frame++;
    else if (isCellioError(e, "CELLIO_ERR_MODBUS_CLOSED") || isCellioError(e, "CELLIO_ERR_MODBUS_CONNECT")) err.closed++;
    else err.other++; // an invalid request, a full queue

  }
}

/** A copy of `s` with plain numbers (the histogram stays shared: read it, do not record into it). */
export function snapshotStats(s: ModbusDeviceStats): ModbusDeviceStats {
  return { ...s, errors: { ...s.errors }, exceptionsByCode: { ...s.exceptionsByCode } };
}

/**
 * One read of a poll's plan (poll.ts), made once and reused from poll to
 * poll: what the request path needs of it without a closure per request.
 * A poll never reuses it while its last attempt is still due.
 */
export class PlannedRead {
  /** When the current read's first attempt was sent (latency, the busy-retry budget). */
  first = 0;
  /** The transport's callback for this read, bound once. */
  readonly settle: ReadDone;

  constructor(
    readonly pdu: ReadPdu,
    /** Where the outcome goes: the poll's callback for this request. */
    readonly done: ReadDone,
    requester: DeviceRequester,
  ) {
    this.settle = (err, value) => requester.settlePlanned(this, err, value);
  }
}
