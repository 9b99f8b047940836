/**
 * Starts the simulators a cell config needs: one Modbus TCP server per
 * loopback host:port used by a modbus-tcp device (one register bank per unit
 * id), plus the HTTP control interface. Used by `cellio sim` and by tests.
 */
import type { CellModel } from "../src/config/compile.js";
import { CellioError } from "../src/infra/errors.js";
import { ModbusTcpSimServer } from "./modbus/tcp-server.js";
import { RegisterBank } from "./modbus/bank.js";
import { startControlServer, type ControlServer, type ControlTarget } from "./modbus/control.js";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

export interface SimulatedDevice {
  readonly name: string;
  readonly unitId: number;
  readonly server: ModbusTcpSimServer;
  readonly bank: RegisterBank;
}

export interface SimulatorSet {
  readonly devices: ReadonlyMap<string, SimulatedDevice>;
  readonly servers: readonly ModbusTcpSimServer[];
  readonly control: ControlServer | undefined;
  device(name: string): SimulatedDevice;
  stop(): Promise<void>;
}

export interface SimulatorOptions {
  /** HTTP control interface port (0: ephemeral; undefined: none). */
  readonly controlPort?: number;
  /** Override a device's port (tests use ephemeral ports). */
  readonly portOverride?: (device: string, port: number) => number;
}

export async function startSimulators(model: CellModel, opts: SimulatorOptions = {}): Promise<SimulatorSet> {
  const byEndpoint = new Map<string, { port: number; units: Map<number, RegisterBank>; names: string[] }>();
  const devices = new Map<string, SimulatedDevice>();
  for (const d of model.devices) {
    const cfg = d.config;
    switch (cfg.protocol) {
      case "modbus-tcp": {
        if (!LOOPBACK.has(cfg.host)) continue;
        const port = opts.portOverride?.(d.name, cfg.port) ?? cfg.port;
        const key = `${cfg.host}:${port}`;
        const ep = byEndpoint.get(key) ?? { port, units: new Map<number, RegisterBank>(), names: [] };
        if (ep.units.has(cfg.unit_id)) {
          throw new CellioError("CELLIO_ERR_SIM", `devices ${ep.names.join(", ")} and ${d.name} share ${key} unit ${cfg.unit_id}`);
        }
        ep.units.set(cfg.unit_id, new RegisterBank());
        ep.names.push(d.name);
        byEndpoint.set(key, ep);
        break;
      }
      case "modbus-rtu":
        // Not simulated here: a test puts a ModbusRtuSimServer on the other end of a pty pair (test/helpers/pty.ts).
        break;
    }
  }
  const servers: ModbusTcpSimServer[] = [];
  try {
    for (const ep of byEndpoint.values()) {
      const server = new ModbusTcpSimServer({ port: ep.port, units: ep.units });
      await server.start();
      servers.push(server);
      for (const d of model.devices) {
        if (d.config.protocol !== "modbus-tcp" || !ep.names.includes(d.name)) continue;
        devices.set(d.name, { name: d.name, unitId: d.config.unit_id, server, bank: ep.units.get(d.config.unit_id)! });
      }
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop()));
    throw e;
  }
  let control: ControlServer | undefined;
  if (opts.controlPort !== undefined) {
    const targets: Record<string, ControlTarget> = {};
    for (const dev of devices.values()) {
      targets[dev.name] = {
        bank: () => dev.bank,
        faults: dev.server.faults,
        stats: dev.server.stats,
      };
    }
    control = await startControlServer({ port: opts.controlPort, targets });
  }
  return {
    devices,
    servers,
    control,
    device(name) {
      const d = devices.get(name);
      if (!d) throw new CellioError("CELLIO_ERR_SIM", `no simulated device "${name}"`);
      return d;
    },
    async stop() {
      await control?.close();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
