/**
 * ModbusTransport for one device on a Modbus TCP connection (tcp-connection.ts),
 * which it may share with other unit ids behind the same gateway.
 *
 * connect() attaches the device to its connection (the first one opens the
 * socket); close() detaches it (the last one closes the socket). Dropping one
 * device (after its timeouts, say) never disturbs the others on the
 * connection. The client survives reconnects, so its counters cover the
 * connection's whole life.
 */
import { CellioError } from "../../infra/errors.js";
import type { ReadFc, WriteFc } from "./plan.js";
import type { ModbusRequest } from "./pdu-client.js";
import type { ModbusClientStats, TxnCallback } from "./tcp-txn.js";
import { TcpConnection, type TcpConnectionMember, type TcpConnectionOptions } from "./tcp-connection.js";
import type { ModbusTransport, ReadDone, ReadPdu } from "./transport.js";

export class ModbusTcpTransport implements ModbusTransport, TcpConnectionMember {
  readonly connection: TcpConnection;
  private attached = false;
  private closeCb: (() => void) | undefined;

  /** On a shared `connection`, or on a connection of its own. */
  constructor(connection: TcpConnection | TcpConnectionOptions) {
    this.connection = connection instanceof TcpConnection ? connection : new TcpConnection(connection);
  }

  get isOpen(): boolean {
    return this.attached && this.connection.isOpen;
  }

  /** Counters of the connection (shared by every device on it). */
  get stats(): Readonly<ModbusClientStats> {
    return this.connection.client.stats;
  }

  onClose(cb: () => void): void {
    this.closeCb = cb;
  }

  onConnectionLost(_why: string): void {
    const was = this.attached;
    this.attached = false;
    if (was) this.closeCb?.();
  }

  async connect(): Promise<void> {
    await this.close();
    await this.connection.attach(this);
    this.attached = true;
  }

  async close(): Promise<void> {
    this.attached = false;
    await this.connection.detach(this);
  }

  read(unit: number, fc: ReadFc, start: number, count: number, timeoutMs: number): Promise<number[] | boolean[]> {
    if (!this.attached) return this.notConnected(unit, fc, start);
    const req: ModbusRequest = { fc, start, count };
    return this.connection.client.request(unit, req, timeoutMs) as Promise<number[] | boolean[]>;
  }

  readWith(unit: number, req: ReadPdu, timeoutMs: number, done: ReadDone): void {
    if (!this.attached) {
      this.notConnected(unit, req.fc, req.start).catch((e: Error) => done(e, undefined));
      return;
    }
    this.connection.client.submit(unit, req, timeoutMs, done as TxnCallback);
  }

  async write(unit: number, fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], timeoutMs: number): Promise<void> {
    if (!this.attached) return this.notConnected(unit, fc, start);
    const req = toWriteRequest(fc, start, values);
    if (typeof req === "string") throw new CellioError("CELLIO_ERR_MODBUS_REQUEST", `${this.connection.client.device} unit ${unit} FC${fc} ${start}: ${req}`);
    await this.connection.client.request(unit, req, timeoutMs);
  }

  private notConnected<T>(unit: number, fc: number, start: number): Promise<T> {
    const device = this.connection.client.device;
    return Promise.reject(new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${device} unit ${unit} FC${fc} ${start}: not connected`, { device, unit }));
  }
}

/** The write request for the transport's (fc, values) form, or why there is none. */
export function toWriteRequest(fc: WriteFc, start: number, values: readonly number[] | readonly boolean[]): ModbusRequest | string {
  switch (fc) {
    case 5:
    case 6: {
      if (values.length !== 1) return `FC${fc} writes exactly one value, got ${values.length}`;
      const v = values[0]!;
      return fc === 5 ? { fc, start, value: v === true || v === 1 } : { fc, start, value: Number(v) };
    }
    case 15:
      return { fc, start, values: (values as readonly (number | boolean)[]).map((v) => v === true || v === 1) };
    case 16:
      return { fc, start, values: (values as readonly (number | boolean)[]).map(Number) };
  }
}
