/**
 * The Modbus TCP client's options, counters and transaction record.
 */
import type { ModbusRequest } from "./pdu-client.js";

/** Largest ADU: MBAP header + 253-byte PDU (an RTU ADU is at most 256). */
export const MAX_ADU = 260;

export type Framing = "mbap" | "rtu";

export interface ModbusTcpClientOptions {
  host: string;
  port: number;
  /** "mbap" (Modbus TCP, default) or "rtu" (RTU frames over TCP). */
  framing?: Framing;
  connectTimeoutMs?: number;
  /** Requests on the wire at once (MBAP only; default 1: strictly sequential). */
  maxInFlight?: number;
  /**
   * Where a request's timeout starts: "submit" (default: queue time counts, a
   * request settles within its timeout) or "send" (a connection shared by
   * several unit ids: a dead unit never makes the others time out in the queue).
   */
  timeoutFrom?: "submit" | "send";
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

/** How a request settles: an error, or the response value (bits, words, or undefined for a write). */
export type TxnCallback = (err: Error | undefined, value: unknown) => void;

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
    private readonly done: TxnCallback,
  ) {}

  resolve(value: unknown): void {
    this.settle(undefined, value);
  }

  reject(err: Error): void {
    this.settle(err, undefined);
  }

  /**
   * The caller's callback runs synchronously (no Promise, no microtask per
   * request). What it throws is the caller's bug, not the connection's: it
   * is rethrown outside the socket's handler instead of dropping the socket.
   */
  private settle(err: Error | undefined, value: unknown): void {
    try {
      this.done(err, value);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}
