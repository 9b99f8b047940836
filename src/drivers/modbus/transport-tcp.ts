/**
 * ModbusTransport on cellio's own client (tcp-client.ts): a drop-in
 * replacement for the former modbus-serial transport, with the same constructor
 * (host, port, connect timeout) plus client options (framing, pipelining,
 * queue bound, latency hook). The client survives reconnects, so its
 * counters cover the transport's whole life.
 */
import { CellioError } from "../../infra/errors.js";
import type { ReadFc, WriteFc } from "./plan.js";
import type { ModbusRequest } from "./pdu-client.js";
import { type ModbusClientStats, ModbusTcpClient, type ModbusTcpClientOptions } from "./tcp-client.js";
import type { ModbusTransport } from "./transport.js";

export type ModbusTcpTransportOptions = Omit<ModbusTcpClientOptions, "host" | "port" | "connectTimeoutMs">;

export class ModbusTcpTransport implements ModbusTransport {
  readonly client: ModbusTcpClient;

  constructor(host: string, port: number, connectTimeoutMs: number, opts: ModbusTcpTransportOptions = {}) {
    this.client = new ModbusTcpClient({ ...opts, host, port, connectTimeoutMs });
  }

  get isOpen(): boolean {
    return this.client.isOpen;
  }

  get stats(): Readonly<ModbusClientStats> {
    return this.client.stats;
  }

  onClose(cb: () => void): void {
    this.client.onClose(cb);
  }

  connect(): Promise<void> {
    return this.client.connect();
  }

  close(): Promise<void> {
    return this.client.close();
  }

  read(unit: number, fc: ReadFc, start: number, count: number, timeoutMs: number): Promise<number[] | boolean[]> {
    const req: ModbusRequest = { fc, start, count };
    return this.client.request(unit, req, timeoutMs) as Promise<number[] | boolean[]>;
  }

  async write(unit: number, fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], timeoutMs: number): Promise<void> {
    const req = toWriteRequest(fc, start, values);
    if (typeof req === "string") throw new CellioError("CELLIO_ERR_MODBUS_REQUEST", `${this.client.device} unit ${unit} FC${fc} ${start}: ${req}`);
    await this.client.request(unit, req, timeoutMs);
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
