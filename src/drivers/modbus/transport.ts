/**
 * The seam between the Modbus driver and the wire: one connection to one
 * server (TCP) or bus, carrying requests for one or more unit ids.
 */
import type { ReadFc, WriteFc } from "./plan.js";

/** A read request (a planned ReadRequest is one). */
export interface ReadPdu {
  readonly fc: ReadFc;
  readonly start: number;
  readonly count: number;
}

/** How a read settles: an error, or register words (FC3/4) or bits (FC1/2). */
export type ReadDone = (err: Error | undefined, value: number[] | boolean[] | undefined) => void;

export interface ModbusTransport {
  readonly isOpen: boolean;
  connect(): Promise<void>;
  close(): Promise<void>;
  /** Resolves with register words (FC3/4) or bits (FC1/2). */
  read(unit: number, fc: ReadFc, start: number, count: number, timeoutMs: number): Promise<number[] | boolean[]>;
  write(unit: number, fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], timeoutMs: number): Promise<void>;
  /**
   * Optional: `read` with a callback instead of a Promise (the TCP
   * transport's poll path: no Promise and no microtask per request). `done`
   * is called exactly once, possibly before readWith returns.
   */
  readWith?(unit: number, req: ReadPdu, timeoutMs: number, done: ReadDone): void;
  /** Called once when the connection drops. */
  onClose(cb: () => void): void;
}
