/**
 * Starts the simulators a cell config needs: one Modbus TCP server per
 * loopback host:port used by a modbus-tcp device (one register bank per unit
 * id), plus the HTTP control interface. Used by `cellio sim` and by tests.
 *
 * A modbus-tcp device with `profile: motoman-yrc1000` gets the robot
 * simulator (`MotomanSim`) behind its bank, at `profile_options.base`; its
 * OPC UA face starts only when asked for (`robotOpcuaPort`, or the
 * environment variable CELLIO_SIM_OPCUA_PORT). An `opcua` device with that
 * profile and a loopback endpoint gets a robot without Modbus and its OPC UA
 * face on the endpoint's port and path, with the profile's namespace and
 * folder (security mode None and anonymous only: the face is a simulator).
 * The robot HTTP control interface starts only when asked for
 * (`robotControlPort` or CELLIO_SIM_ROBOT_CONTROL_PORT). See
 * simulators/motoman/README.md.
 */
import type { CellModel } from "../src/config/compile.js";
import { ENDPOINT_URL } from "../src/drivers/opcua/config.js";
import { CellioError } from "../src/infra/errors.js";
import { createLogger, type Logger } from "../src/infra/logger.js";
import { ModbusTcpSimServer } from "./modbus/tcp-server.js";
import { RegisterBank } from "./modbus/bank.js";
import { startControlServer, type ControlServer, type ControlTarget } from "./modbus/control.js";
import { startMotomanControlServer, type MotomanControlServer } from "./motoman/control.js";
import type { MotomanOpcuaFace, MotomanOpcuaFaceOptions } from "./motoman/opcua-face.js";
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
  /** The robots' OPC UA faces (an opcua device's always; a modbus-tcp device's when asked for), by device name. */
  readonly robotFaces: ReadonlyMap<string, MotomanOpcuaFace>;
  /** The robot HTTP control interface (undefined unless asked for). */
  readonly robotControl: MotomanControlServer | undefined;
  device(name: string): SimulatedDevice;
  stop(): Promise<void>;
}

export interface SimulatorOptions {
  /** HTTP control interface port (0: ephemeral; undefined: none). */
  readonly controlPort?: number;
  /** Override a device's port, Modbus TCP or OPC UA endpoint (tests use ephemeral ports). */
  readonly portOverride?: (device: string, port: number) => number;
  /**
   * OPC UA faces for the robots of modbus-tcp devices: the first robot's
   * port, the next robots on the ports after it, in config order (0: free
   * ports). Default: the environment variable CELLIO_SIM_OPCUA_PORT; unset:
   * no OPC UA face. (An opcua device's robot always gets its face, on its endpoint.)
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
        // A motoman-yrc1000 profile device: the robot's OPC UA face (below). Otherwise not
        // simulated here: a test runs its own node-opcua server.
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
    const opcuaRobots = opcuaRobotFaces(model, opts);
    for (const r of opcuaRobots) {
      const sim = new MotomanSim({ modbus: false, model: { axes: r.axes } });
      await sim.start();
      robots.set(r.device, sim);
    }
    let log: Logger | undefined;
    const logger = (): Logger => (log ??= opts.log ?? createLogger({ fd: 2, name: "cellio-sim" }));
    const opcuaPort = opts.robotOpcuaPort ?? envPort("CELLIO_SIM_OPCUA_PORT");
    const modbusRobots = [...robots].filter(([, sim]) => sim.servesModbus);
    if (opcuaRobots.length > 0 || (opcuaPort !== undefined && modbusRobots.length > 0)) {
      // Loaded only now: node-opcua takes a while to import.
      const { MotomanOpcuaFace } = await import("./motoman/opcua-face.js");
      for (const { device, face: where } of opcuaRobots) {
        const face = new MotomanOpcuaFace(robots.get(device)!, { ...where, name: device, log: logger().child({ device }) });
        faces.set(device, face);
        await face.start();
      }
      if (opcuaPort !== undefined) {
        let i = 0;
        for (const [name, sim] of modbusRobots) {
          const face = new MotomanOpcuaFace(sim, { port: opcuaPort === 0 ? 0 : opcuaPort + i++, name, log: logger().child({ device: name }) });
          faces.set(name, face);
          await face.start();
        }
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

interface OpcuaRobotFace {
  readonly device: string;
  readonly axes: number;
  readonly face: Pick<MotomanOpcuaFaceOptions, "port" | "resourcePath" | "namespaceUri" | "folder">;
}

/**
 * The OPC UA faces that opcua devices with `profile: motoman-yrc1000` and a
 * loopback endpoint name: port (default 4840) and path from the endpoint,
 * namespace and folder from `profile_options`. Throws for what the face
 * cannot serve (a secured or user session) and for two robots on one port.
 */
function opcuaRobotFaces(model: CellModel, opts: SimulatorOptions): OpcuaRobotFace[] {
  const out: OpcuaRobotFace[] = [];
  const byPort = new Map<number, string>();
  for (const d of model.devices) {
    const cfg = d.config;
    if (cfg.protocol !== "opcua" || cfg.profile !== "motoman-yrc1000") continue;
    const m = ENDPOINT_URL.exec(cfg.endpoint);
    if (!m || !LOOPBACK.has(m[1]!)) continue;
    const sec = cfg.security;
    if (sec.mode !== "None" || sec.user !== undefined) {
      throw new CellioError(
        "CELLIO_ERR_SIM",
        `device ${d.name}: the Motoman simulator's OPC UA face serves security mode None and anonymous sessions only; the config asks for mode ${sec.mode}${sec.user === undefined ? "" : ` and user ${sec.user}`}`,
      );
    }
    const port = opts.portOverride?.(d.name, Number(m[2] ?? 4840)) ?? Number(m[2] ?? 4840);
    const other = byPort.get(port);
    if (other !== undefined && port !== 0) throw new CellioError("CELLIO_ERR_SIM", `devices ${other} and ${d.name} share OPC UA port ${port}: one robot per endpoint`);
    byPort.set(port, d.name);
    const o = cfg.profile_options;
    const resourcePath = m[3] === undefined || m[3] === "/" ? {} : { resourcePath: m[3] };
    out.push({ device: d.name, axes: o.axes, face: { port, ...resourcePath, namespaceUri: o.namespace_uri, folder: o.folder } });
  }
  return out;
}
