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

/**
 * One modbus-serial client and a signal that rejects every call still pending
 * on it when it closes. modbus-serial's destroy() cancels the timeouts of the
 * requests in flight without settling them, and a connectTCP() cut short by
 * destroy() never settles either: without this, a read in flight when the
 * connection was dropped waited forever (the device was never polled again),
 * and a connect interrupted by a drop stopped all further reconnects.
 */
interface Session {
  readonly client: ModbusRTU;
  /** Rejects with CELLIO_ERR_MODBUS_CLOSED once the session ends; race every call against it. */
  readonly closed: Promise<never>;
  end(why: string): void;
}

function newSession(): Session {
  let reject: (e: Error) => void = () => undefined;
  const closed = new Promise<never>((_, r) => (reject = r));
  closed.catch(() => undefined); // observed by the calls that race it; none may be pending
  let ended = false;
  return {
    client: new ModbusRTU(),
    closed,
    end(why) {
      if (ended) return;
      ended = true;
      reject(new CellioError("CELLIO_ERR_MODBUS_CLOSED", why));
    },
  };
}

export class ModbusSerialTcpTransport implements ModbusTransport {
  private session: Session | undefined;
  private closeCb: (() => void) | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connectTimeoutMs: number,
  ) {}

  get isOpen(): boolean {
    return this.session?.client.isOpen === true;
  }

  onClose(cb: () => void): void {
    this.closeCb = cb;
  }

  async connect(): Promise<void> {
    await this.close();
    const s = newSession();
    const client = s.client;
    this.session = s;
    try {
      await Promise.race([client.connectTCP(this.host, { port: this.port, timeout: this.connectTimeoutMs, keepAlive: true }), s.closed]);
    } catch (e) {
      if (this.session === s) this.session = undefined;
      s.end("connect failed");
      client.destroy(() => undefined);
      throw classifyModbusError(e, `connect ${this.host}:${this.port}`);
    }
    client.on("close", () => {
      s.end(`${this.host}:${this.port}: connection closed`);
      if (this.session === s) {
        this.session = undefined;
        this.closeCb?.();
      }
    });
    client.on("error", () => undefined);
  }

  /**
   * Close at once. modbus-serial calls destroy()'s callback only when its port
   * still thinks it is open, so after a socket error the callback never comes:
   * waiting for it wedged the device forever. Destroy and move on; every call
   * still pending on the connection (a connect included) is rejected.
   */
  close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) {
      s.end(`${this.host}:${this.port}: connection closed`);
      s.client.destroy(() => undefined);
    }
    return Promise.resolve();
  }

  private ready(unit: number, timeoutMs: number): Session {
    const s = this.session;
    if (!s?.client.isOpen) throw new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${this.host}:${this.port}: not connected`);
    s.client.setID(unit);
    s.client.setTimeout(timeoutMs);
    return s;
  }

  async read(unit: number, fc: ReadFc, start: number, count: number, timeoutMs: number): Promise<number[] | boolean[]> {
    const where = `${this.host}:${this.port} unit ${unit} FC${fc} ${start}+${count}`;
    try {
      const { client: c, closed } = this.ready(unit, timeoutMs);
      switch (fc) {
        case 1:
          return (await Promise.race([c.readCoils(start, count), closed])).data;
        case 2:
          return (await Promise.race([c.readDiscreteInputs(start, count), closed])).data;
        case 3:
          return (await Promise.race([c.readHoldingRegisters(start, count), closed])).data;
        case 4:
          return (await Promise.race([c.readInputRegisters(start, count), closed])).data;
      }
    } catch (e) {
      throw classifyModbusError(e, where);
    }
  }

  async write(unit: number, fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], timeoutMs: number): Promise<void> {
    const where = `${this.host}:${this.port} unit ${unit} FC${fc} ${start}+${values.length}`;
    try {
      const { client: c, closed } = this.ready(unit, timeoutMs);
      switch (fc) {
        case 5:
          await Promise.race([c.writeCoil(start, values[0] === true), closed]);
          return;
        case 6:
          await Promise.race([c.writeRegister(start, Number(values[0])), closed]);
          return;
        case 15:
          await Promise.race([c.writeCoils(start, values as boolean[]), closed]);
          return;
        case 16:
          await Promise.race([c.writeRegisters(start, values as number[]), closed]);
          return;
      }
    } catch (e) {
      throw classifyModbusError(e, where);
    }
  }
}
