/**
 * ModbusTransport for one unit on a shared RTU bus (rtu-bus.ts), and the
 * registry that gives every device naming the same serial path the same bus.
 *
 * connect() attaches the unit to its bus (the first unit opens the port);
 * close() detaches it (the last unit closes the port) and releases its
 * requests still waiting at once. Dropping one unit (after its timeouts,
 * say) never disturbs the other units on the bus.
 */
import { CellioError } from "../../infra/errors.js";
import { silentLogger, type Logger } from "../../infra/logger.js";
import type { ReadFc, WriteFc } from "./plan.js";
import type { ModbusRequest } from "./pdu-client.js";
import { RtuBus, type RtuBusMember, type RtuBusOptions } from "./rtu-bus.js";
import { busSettingsOf, describeLine, type ModbusRtuDeviceConfig, type RtuBusSettings } from "./rtu-config.js";
import { toWriteRequest } from "./transport-tcp.js";
import type { ModbusTransport } from "./transport.js";

export class ModbusRtuTransport implements ModbusTransport, RtuBusMember {
  /** Aborted when this attachment ends; cancels its requests still pending. */
  private session: AbortController | undefined;
  private closeCb: (() => void) | undefined;

  constructor(
    readonly bus: RtuBus,
    readonly unit: number,
  ) {}

  get isOpen(): boolean {
    return this.session !== undefined && this.bus.isOpen;
  }

  onClose(cb: () => void): void {
    this.closeCb = cb;
  }

  /** The bus lost its port: this unit is closed; its driver reconnects. */
  onBusLost(_why: string): void {
    const s = this.session;
    this.session = undefined;
    s?.abort();
    if (s) this.closeCb?.();
  }

  async connect(): Promise<void> {
    await this.close();
    const s = new AbortController();
    this.session = s;
    try {
      await this.bus.attach(this);
    } catch (e) {
      if (this.session === s) this.session = undefined;
      throw e;
    }
    if (this.session !== s) {
      throw new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${this.bus.path} unit ${this.unit}: closed while connecting`, { bus: this.bus.path, unit: this.unit });
    }
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    s?.abort();
    await this.bus.detach(this);
  }

  read(unit: number, fc: ReadFc, start: number, count: number, timeoutMs: number): Promise<number[] | boolean[]> {
    return this.request(unit, { fc, start, count }, timeoutMs) as Promise<number[] | boolean[]>;
  }

  async write(unit: number, fc: WriteFc, start: number, values: readonly number[] | readonly boolean[], timeoutMs: number): Promise<void> {
    const req = toWriteRequest(fc, start, values);
    if (typeof req === "string") {
      throw new CellioError("CELLIO_ERR_MODBUS_REQUEST", `${this.bus.path} unit ${unit} FC${fc} ${start}: ${req}`, { bus: this.bus.path, unit });
    }
    await this.request(unit, req, timeoutMs);
  }

  private request(unit: number, req: ModbusRequest, timeoutMs: number): Promise<unknown> {
    const s = this.session;
    if (!s) {
      return Promise.reject(new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${this.bus.path} unit ${unit}: not connected`, { bus: this.bus.path, unit }));
    }
    return this.bus.request(unit, req, timeoutMs, s.signal);
  }
}

/** One RtuBus per serial path, shared by every device that names it. */
export class RtuBusRegistry {
  private readonly buses = new Map<string, RtuBus>();

  constructor(
    private readonly log: Logger = silentLogger(),
    private readonly opts: Omit<RtuBusOptions, "log"> = {},
  ) {}

  /** The bus on `settings.path`, made on first use; a later device with a longer gap widens it. */
  bus(settings: RtuBusSettings): RtuBus {
    const existing = this.buses.get(settings.path);
    if (existing) {
      const a = existing.settings;
      if (a.baudRate !== settings.baudRate || a.parity !== settings.parity || a.dataBits !== settings.dataBits || a.stopBits !== settings.stopBits) {
        throw new CellioError("CELLIO_ERR_CONFIG", `serial port ${settings.path} is used with ${describeLine(a)} and with ${describeLine(settings)}`);
      }
      existing.widenGap(settings.interFrameGapMs);
      return existing;
    }
    const bus = new RtuBus(settings, { ...this.opts, log: this.log.child({ component: "rtu-bus", bus: settings.path }) });
    this.buses.set(settings.path, bus);
    return bus;
  }

  /** A transport for the device's unit on its bus. */
  transportFor(cfg: ModbusRtuDeviceConfig): ModbusRtuTransport {
    return new ModbusRtuTransport(this.bus(busSettingsOf(cfg)), cfg.unit_id);
  }

  get all(): readonly RtuBus[] {
    return [...this.buses.values()];
  }
}
