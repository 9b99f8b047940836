/**
 * The RTU bus's options, counters, members and transaction record (rtu-bus.ts).
 */
import type { Logger } from "../../infra/logger.js";
import type { ModbusRequest } from "./pdu-client.js";

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
}
