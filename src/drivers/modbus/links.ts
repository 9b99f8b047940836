/**
 * What Modbus devices share: one RTU bus per serial path, one TCP connection
 * per host:port/framing. The composition root (app.ts) makes one ModbusLinks
 * per cell and asks it for every Modbus device's driver.
 */
import type { Clock } from "../../infra/clock.js";
import { silentLogger, type Logger } from "../../infra/logger.js";
import type { PointDef } from "../../core/points.js";
import { ModbusTcpDriver } from "./driver.js";
import type { ModbusDeviceConfig } from "./rtu-config.js";
import { TcpConnectionRegistry } from "./tcp-connection.js";
import { ModbusTcpTransport } from "./transport-tcp.js";
import { RtuBusRegistry } from "./transport-rtu.js";

export class ModbusLinks {
  readonly buses: RtuBusRegistry;
  readonly tcp: TcpConnectionRegistry;

  constructor(log: Logger = silentLogger()) {
    this.buses = new RtuBusRegistry(log);
    this.tcp = new TcpConnectionRegistry(log);
  }

  /** The driver of one Modbus device, on its shared bus or connection. */
  driver(name: string, cfg: ModbusDeviceConfig, points: readonly PointDef[], clock: Clock, log: Logger): ModbusTcpDriver {
    if (cfg.protocol === "modbus-rtu") return new ModbusTcpDriver(name, cfg, points, clock, log, this.buses.transportFor(cfg));
    const connection = this.tcp.connection({
      host: cfg.host,
      port: cfg.port,
      framing: cfg.framing,
      maxInFlight: cfg.framing === "rtu" ? 1 : cfg.max_in_flight,
      connectTimeoutMs: Math.max(cfg.timeout_ms, 1000),
      reconnectMinMs: cfg.reconnect.min_ms,
      reconnectMaxMs: cfg.reconnect.max_ms,
    });
    return new ModbusTcpDriver(name, cfg, points, clock, log, new ModbusTcpTransport(connection));
  }
}
