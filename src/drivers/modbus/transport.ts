/**
 * The seam between the Modbus driver and the wire: one connection to one
 * server (TCP) or bus, carrying requests for one or more unit ids.
 */
import type { ReadFc, WriteFc } from "./plan.js";

export interface ModbusTransport {
  readonly isOpen: boolean;
  connect(): Promise<void>;
  close(): Promise<void>;
  /** Resolves with register words (FC3/4) or bits (FC1/2). */
  read(unit: number, fc: ReadFc, start: number, count: number, timeoutMs: number): Promise<number[] | boolean[]>;
  write(unit: number, fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], timeoutMs: number): Promise<void>;
  /** Called once when the connection drops. */
  onClose(cb: () => void): void;
}
