/**
 * Starts the simulators a cell config needs: one Modbus TCP server per
 * loopback host:port used by a modbus-tcp device (one register bank per unit
 * id), plus the HTTP control interface. Used by `cellio sim` and by tests.
 *
 * A device with `profile: motoman-yrc1000` gets the robot simulator
 * (`MotomanSim`) behind its bank, at `profile_options.base`. Its OPC UA face
 * and the robot HTTP control interface start only when asked for
 * (`robotOpcuaPort` / `robotControlPort`, or the environment variables
 * CELLIO_SIM_OPCUA_PORT / CELLIO_SIM_ROBOT_CONTROL_PORT): see
 * simulators/motoman/README.md.
 */
import type { CellModel } from "../src/config/compile.js";
import { CellioError } from "../src/infra/errors.js";
import { createLogger, type Logger } from "../src/infra/logger.js";
import { ModbusTcpSimServer } from "./modbus/tcp-server.js";
import { RegisterBank } from "./modbus/bank.js";
import { startControlServer, type ControlServer, type ControlTarget } from "./modbus/control.js";
import { startMotomanControlServer, type MotomanControlServer } from "./motoman/control.js";
import type { MotomanOpcuaFace } from "./motoman/opcua-face.js";
import { MotomanSim } from "./motoman/sim.js";

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
  /** The robot simulator of every device with `profile: motoman-yrc1000`, by device name. */
  readonly robots: ReadonlyMap<string, MotomanSim>;
  /** The robots' OPC UA faces (none unless asked for), by device name. */
  readonly robotFaces: ReadonlyMap<string, MotomanOpcuaFace>;
  /** The robot HTTP control interface (undefined unless asked for). */
  readonly robotControl: MotomanControlServer | undefined;
  device(name: string): SimulatedDevice;
  stop(): Promise<void>;
}

export interface SimulatorOptions {
  /** HTTP control interface port (0: ephemeral; undefined: none). */
  readonly controlPort?: number;
  /** Override a device's port (tests use ephemeral ports). */
  readonly portOverride?: (device: string, port: number) => number;
  /**
   * OPC UA faces for the robots: the first robot's port, the next robots on
   * the ports after it, in config order (0: free ports). Default: the
   * environment variable CELLIO_SIM_OPCUA_PORT; unset: no OPC UA face.
   */
  readonly robotOpcuaPort?: number;
  /**
   * Robot HTTP control interface port (0: ephemeral). Default: the environment
   * variable CELLIO_SIM_ROBOT_CONTROL_PORT; unset: none.
   */
  readonly robotControlPort?: number;
  /** Where the robot faces log (default: a "cellio-sim" logger on stderr, made only when one starts). */
  readonly log?: Logger;
}

/** A port number from the environment (undefined when unset or empty). */
function envPort(name: string): number | undefined {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CellioError("CELLIO_ERR_SIM", `${name}=${raw} is not a port number (0..65535)`);
  return n;
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
      case "opcua":
        // Not simulated here: an OPC UA device's server is the Motoman simulator's OPC UA face
        // (a profile device below) or a test's own node-opcua server.
        break;
    }
  }
  const servers: ModbusTcpSimServer[] = [];
  const boundPorts = new Map<string, number>();
  try {
    for (const ep of byEndpoint.values()) {
      const server = new ModbusTcpSimServer({ port: ep.port, units: ep.units });
      const { port } = await server.start();
      servers.push(server);
      for (const d of model.devices) {
        if (d.config.protocol !== "modbus-tcp" || !ep.names.includes(d.name)) continue;
        devices.set(d.name, { name: d.name, unitId: d.config.unit_id, server, bank: ep.units.get(d.config.unit_id)! });
        boundPorts.set(d.name, port);
      }
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop()));
    throw e;
  }
  const robots = new Map<string, MotomanSim>();
  const faces = new Map<string, MotomanOpcuaFace>();
  let control: ControlServer | undefined;
  let robotControl: MotomanControlServer | undefined;
  const stop = async (): Promise<void> => {
    await robotControl?.close();
    await Promise.all([...faces.values()].map((f) => f.stop()));
    await Promise.all([...robots.values()].map((r) => r.stop()));
    await control?.close();
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    for (const d of model.devices) {
      const cfg = d.config;
      const dev = devices.get(d.name);
      if (cfg.protocol !== "modbus-tcp" || cfg.profile !== "motoman-yrc1000" || !dev) continue;
      const sim = new MotomanSim({
        bank: dev.bank,
        server: dev.server,
        port: boundPorts.get(d.name),
        unitId: dev.unitId,
        base: cfg.profile_options.base,
        model: { axes: cfg.profile_options.axes },
      });
      await sim.start();
      robots.set(d.name, sim);
    }
    let log: Logger | undefined;
    const logger = (): Logger => (log ??= opts.log ?? createLogger({ fd: 2, name: "cellio-sim" }));
    const opcuaPort = opts.robotOpcuaPort ?? envPort("CELLIO_SIM_OPCUA_PORT");
    if (opcuaPort !== undefined && robots.size > 0) {
      // Loaded only now: node-opcua takes a while to import.
      const { MotomanOpcuaFace } = await import("./motoman/opcua-face.js");
      let i = 0;
      for (const [name, sim] of robots) {
        const face = new MotomanOpcuaFace(sim, { port: opcuaPort === 0 ? 0 : opcuaPort + i++, name, log: logger().child({ device: name }) });
        faces.set(name, face);
        await face.start();
      }
    }
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
    const robotControlPort = opts.robotControlPort ?? envPort("CELLIO_SIM_ROBOT_CONTROL_PORT");
    if (robotControlPort !== undefined && robots.size > 0) {
      robotControl = await startMotomanControlServer({ port: robotControlPort, robots });
      logger().info({ port: robotControl.port, robots: [...robots.keys()] }, "robot control interface listening");
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    devices,
    servers,
    control,
    robots,
    robotFaces: faces,
    robotControl,
    device(name) {
      const d = devices.get(name);
      if (!d) throw new CellioError("CELLIO_ERR_SIM", `no simulated device "${name}"`);
      return d;
    },
    stop,
  };
}
