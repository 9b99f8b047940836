/**
 * The RTU bus's options, counters, members, transaction record and errors
 * (rtu-bus.ts, rtu-line.ts).
 */
import { CellioError, type ErrorCode } from "../../infra/errors.js";
import type { Logger } from "../../infra/logger.js";
import { quantityOf, type ModbusRequest } from "./pdu-client.js";

/** A user of the bus (one unit's transport): told when the port is lost under it. */
export interface RtuBusMember {
  onBusLost(why: string): void;
}

export interface RtuBusOptions {
  /** Requests waiting for the line, all units together; beyond it request() rejects (default 64). */
  readonly maxQueue?: number;
  /** Line silence that ends a frame of doubtful length (default: the gap, at least 20 ms: Node timers and ptys are coarse). */
  readonly frameSilenceMs?: number;
  readonly log?: Logger;
}

export interface RtuUnitStats {
  requests: number;
  timeouts: number;
  frameErrors: number;
  exceptions: number;
}

export interface RtuBusStats extends RtuUnitStats {
  responses: number;
  /** Bursts of bytes nobody waited for (late answers, noise, the tail of an over-long frame). */
  stale: number;
  /** Refused by request(): invalid, not open, queue full. */
  rejected: number;
  bytesIn: number;
  bytesOut: number;
  opens: number;
  /** Times the port failed under its users. */
  losses: number;
}

export class Txn {
  settled = false;
  /** Valid frames of other units or functions that arrived while this one waited (late answers), and the last one's origin. */
  skipped = 0;
  skippedFrom = "";
  sentAt = 0;
  deadline = 0;
  wireMs = 0;
  unlisten: () => void = () => undefined;
  constructor(
    readonly unit: number,
    readonly req: ModbusRequest,
    readonly timeoutMs: number,
    readonly frame: Buffer,
    readonly resolve: (v: unknown) => void,
    readonly reject: (e: Error) => void,
  ) {}

  /** Settles the caller's promise once: with `err`, or else with `value`. */
  settle(err: Error | undefined, value?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.unlisten();
    if (err) this.reject(err);
    else this.resolve(value);
  }
}

/** The error of a request of `t.unit` on the bus at `path`, naming the bus, unit, function and addresses. */
export function rtuError(path: string, code: ErrorCode, t: { unit: number; req: ModbusRequest }, msg: string, extra?: Record<string, unknown>): CellioError {
  const r = t.req;
  const where = `${path} unit ${t.unit} FC${r.fc} ${r.start}+${quantityOf(r)}`;
  return new CellioError(code, `${where}: ${msg}`, { bus: path, unit: t.unit, fc: r.fc, start: r.start, ...extra });
}
