/**
 * ModbusTransport over modbus-serial's TCP client.
 */
import ModbusSerial from "modbus-serial";

// modbus-serial is CommonJS with `module.exports = ModbusRTU`: under NodeNext the
// default import IS the class at run time, while TypeScript types it as the namespace.
const ModbusRTU = ModbusSerial as unknown as typeof ModbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;
import { CellioError, errorMessage } from "../../infra/errors.js";
import type { ModbusTransport } from "./transport.js";
import type { ReadFc, WriteFc } from "./plan.js";

interface ModbusSerialError {
  modbusCode?: number;
  errno?: string;
  name?: string;
  message?: string;
}

/** Map modbus-serial's errors onto cellio's stable codes. */
export function classifyModbusError(e: unknown, where: string): CellioError {
  if (e instanceof CellioError) return e;
  const err = (e ?? {}) as ModbusSerialError;
  const msg = errorMessage(e);
  if (typeof err.modbusCode === "number") {
    return new CellioError("CELLIO_ERR_MODBUS_EXCEPTION", `${where}: exception ${err.modbusCode}: ${msg}`, { exception: err.modbusCode });
  }
  if (err.errno === "ETIMEDOUT" || err.name === "TransactionTimedOutError") {
    return new CellioError("CELLIO_ERR_MODBUS_TIMEOUT", `${where}: no answer in time`);
  }
  if (err.name === "PortNotOpenError" || /port not open|closed|ECONNRESET|EPIPE/i.test(msg)) {
    return new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${where}: ${msg}`);
  }
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EADDRNOTAVAIL/.test(msg) || err.errno === "ECONNREFUSED") {
    return new CellioError("CELLIO_ERR_MODBUS_CONNECT", `${where}: ${msg}`);
  }
  return new CellioError("CELLIO_ERR_MODBUS_FRAME", `${where}: ${msg}`);
}

export class ModbusSerialTcpTransport implements ModbusTransport {
  private client: ModbusRTU | undefined;
  private closeCb: (() => void) | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connectTimeoutMs: number,
  ) {}

  get isOpen(): boolean {
    return this.client?.isOpen === true;
  }

  onClose(cb: () => void): void {
    this.closeCb = cb;
  }

  async connect(): Promise<void> {
    await this.close();
    const client = new ModbusRTU();
    this.client = client;
    try {
      await client.connectTCP(this.host, { port: this.port, timeout: this.connectTimeoutMs, keepAlive: true });
    } catch (e) {
      this.client = undefined;
      client.destroy(() => undefined);
      throw classifyModbusError(e, `connect ${this.host}:${this.port}`);
    }
    client.on("close", () => {
      if (this.client === client) {
        this.client = undefined;
        this.closeCb?.();
      }
    });
    client.on("error", () => undefined);
  }

  /**
   * Close at once. modbus-serial calls destroy()'s callback only when its port
   * still thinks it is open, so after a socket error the callback never comes:
   * waiting for it wedged the device forever. Destroy and move on.
   */
  close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) client.destroy(() => undefined);
    return Promise.resolve();
  }

  private ready(unit: number, timeoutMs: number): ModbusRTU {
    const c = this.client;
    if (!c?.isOpen) throw new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${this.host}:${this.port}: not connected`);
    c.setID(unit);
    c.setTimeout(timeoutMs);
    return c;
  }

  async read(unit: number, fc: ReadFc, start: number, count: number, timeoutMs: number): Promise<number[] | boolean[]> {
    const where = `${this.host}:${this.port} unit ${unit} FC${fc} ${start}+${count}`;
    try {
      const c = this.ready(unit, timeoutMs);
      switch (fc) {
        case 1:
          return (await c.readCoils(start, count)).data;
        case 2:
          return (await c.readDiscreteInputs(start, count)).data;
        case 3:
          return (await c.readHoldingRegisters(start, count)).data;
        case 4:
          return (await c.readInputRegisters(start, count)).data;
      }
    } catch (e) {
      throw classifyModbusError(e, where);
    }
  }

  async write(unit: number, fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], timeoutMs: number): Promise<void> {
    const where = `${this.host}:${this.port} unit ${unit} FC${fc} ${start}+${values.length}`;
    try {
      const c = this.ready(unit, timeoutMs);
      switch (fc) {
        case 5:
          await c.writeCoil(start, values[0] === true);
          return;
        case 6:
          await c.writeRegister(start, Number(values[0]));
          return;
        case 15:
          await c.writeCoils(start, values as boolean[]);
          return;
        case 16:
          await c.writeRegisters(start, values as number[]);
          return;
      }
    } catch (e) {
      throw classifyModbusError(e, where);
    }
  }
}
