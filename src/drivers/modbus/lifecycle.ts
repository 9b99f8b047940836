/**
 * The Modbus device driver's connection lifecycle and fault policy
 * (driver.ts runs the plan on top of it): start, stop, connect, arm the
 * coupler's watchdog, reconnect with exponential backoff and jitter, and
 * what each failure does to the connection (a timeout counts, three in a row
 * drop it; an exception answer keeps it; anything else drops it) and to the
 * points' status (statusOf).
 *
 * ModbusTcpDriver extends this class: one object holds the state, so its
 * read path (readDirect) reads these fields directly.
 */
import type { Logger } from "../../infra/logger.js";
import { errorMessage, isCellioError } from "../../infra/errors.js";
import type { FailureStatus } from "../../loop/device-port.js";
import type { ModbusDeviceConfig } from "./rtu-config.js";
import type { ModbusTransport } from "./transport.js";
import type { DeviceRequester } from "./requester.js";
import { armWatchdog, type CompiledWatchdog } from "./watchdog.js";

/** Consecutive timeouts after which the connection (or the unit's attachment to it) is dropped and re-made. */
const TIMEOUTS_BEFORE_RECONNECT = 3;
/** Gateway exceptions: the gateway answered, the unit behind it did not. */
const GATEWAY_PATH = 0x0a;
const GATEWAY_TARGET = 0x0b;

export function statusOf(e: unknown): FailureStatus {
  if (isCellioError(e, "CELLIO_ERR_MODBUS_TIMEOUT")) return "bad_timeout";
  if (isCellioError(e, "CELLIO_ERR_MODBUS_CLOSED") || isCellioError(e, "CELLIO_ERR_MODBUS_CONNECT")) return "bad_no_communication";
  if (isCellioError(e, "CELLIO_ERR_MODBUS_EXCEPTION")) {
    const x = e.details.exception;
    if (x === GATEWAY_PATH || x === GATEWAY_TARGET) return "bad_no_communication";
  }
  return "bad_device_failure";
}

export abstract class ModbusDeviceLifecycle {
  protected stopped = true;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  protected backoffMs: number;
  protected consecutiveTimeouts = 0;
  protected lastConnectError = "not connected yet";
  protected lastConnectStatus: FailureStatus = "bad_no_communication";
  private connectedOnce = false;
  /** The device answered on the current connection (set by the driver; reconnects while it never does are not logged at info). */
  protected answered = false;
  protected abstract readonly transport: ModbusTransport;
  protected abstract readonly req: DeviceRequester;
  protected abstract readonly watchdog: CompiledWatchdog | undefined;

  constructor(
    readonly name: string,
    protected readonly cfg: ModbusDeviceConfig,
    protected readonly log: Logger,
  ) {
    this.backoffMs = cfg.reconnect.min_ms;
  }

  start(): Promise<void> {
    this.stopped = false;
    void this.connect();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    await this.transport.close();
  }

  private connect(): Promise<void> {
    if (this.stopped || this.transport.isOpen) return Promise.resolve();
    this.connecting ??= (async () => {
      try {
        await this.transport.connect();
        if (this.cfg.workarounds.pause_after_connect_ms > 0) {
          await new Promise((r) => setTimeout(r, this.cfg.workarounds.pause_after_connect_ms));
        }
        if (this.watchdog) await this.armWatchdog(this.watchdog);
        // The backoff is reset only when the device answers (connectionProven), not here: a
        // server that accepts and at once closes (a gateway out of connection slots) would
        // otherwise be hammered at the minimum delay.
        this.consecutiveTimeouts = 0;
        // Log transitions, not repetitions: a device that accepts connections but does not answer is
        // reconnected after each timeout; the device's loss and recovery are logged by its runner.
        const repeat = this.connectedOnce && !this.answered;
        if (this.connectedOnce) this.req.stats.reconnects++;
        this.connectedOnce = true;
        this.answered = false;
        const where = this.cfg.protocol === "modbus-tcp" ? { host: this.cfg.host, port: this.cfg.port, unit: this.cfg.unit_id } : { bus: this.cfg.serial.path, unit: this.cfg.unit_id };
        if (repeat) this.log.debug(where, "modbus reconnected; no answer since the last connection");
        else this.log.info(where, "modbus connected");
      } catch (e) {
        this.req.stats.connectFailures++;
        const msg = errorMessage(e);
        if (msg !== this.lastConnectError) this.log.warn({ err: msg }, "modbus connect failed; retrying with backoff");
        this.lastConnectError = msg;
        this.lastConnectStatus = isCellioError(e, "CELLIO_ERR_MODBUS_WATCHDOG") ? "bad_device_failure" : "bad_no_communication";
        this.scheduleReconnect();
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  /** Arms the coupler's watchdog; a failure detaches the device (it stays bad, with the reason) and throws. */
  private async armWatchdog(wd: CompiledWatchdog): Promise<void> {
    try {
      await armWatchdog(this.name, wd, this.req, this.cfg.workarounds.single_writes);
      this.req.stats.watchdogArms++;
      this.log.info({ address: wd.text, value: wd.value, readBack: wd.readBack }, "watchdog armed");
    } catch (e) {
      this.req.stats.watchdogFailures++;
      await this.transport.close();
      throw e;
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    // Exponential backoff with full jitter in [backoff/2, backoff].
    const delay = this.backoffMs / 2 + Math.random() * (this.backoffMs / 2);
    this.backoffMs = Math.min(this.cfg.reconnect.max_ms, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  /**
   * Not connected: make sure a reconnect is pending (a transport may lose a
   * close notification, and nothing else would ever reconnect).
   */
  protected ensureReconnecting(): void {
    if (!this.stopped && !this.connecting && !this.reconnectTimer) this.scheduleReconnect();
  }

  protected onDisconnected(why: string): void {
    if (this.stopped) return;
    this.lastConnectError = why;
    this.lastConnectStatus = "bad_no_communication";
    this.scheduleReconnect();
  }

  /**
   * Drops the connection after failure `e`. Until the device is connected
   * again, its points keep the status `e` gave them: a device that accepts
   * connections but does not answer stays bad_timeout through its reconnects
   * instead of alternating with bad_no_communication; a failed connect then
   * says bad_no_communication, a change of condition.
   */
  private async dropConnection(e: unknown): Promise<void> {
    this.lastConnectError = errorMessage(e);
    this.lastConnectStatus = statusOf(e);
    await this.transport.close();
    this.scheduleReconnect();
  }

  protected async handleError(e: unknown): Promise<void> {
    if (isCellioError(e, "CELLIO_ERR_MODBUS_TIMEOUT")) {
      this.consecutiveTimeouts++;
      if (this.consecutiveTimeouts >= TIMEOUTS_BEFORE_RECONNECT) await this.dropConnection(e);
      return;
    }
    if (isCellioError(e, "CELLIO_ERR_MODBUS_EXCEPTION")) return; // the device (or its gateway) answered: the connection is fine
    await this.dropConnection(e);
  }
}
