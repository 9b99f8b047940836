/**
 * The Motoman simulator's OPC UA face: a node-opcua server on 127.0.0.1 with
 * an OPC 40010 Robotics model (MotionDeviceSystem in DI's DeviceSet) and a
 * plain `Motoman` folder holding every status and command signal. It shows
 * the same `MotomanSim` as the Modbus face: status comes from the model after
 * every tick, and a write to a command variable writes the command registers
 * (`MotomanSim.setCommands`), so both faces see one robot. This file holds the
 * server's life (start, stop) and the variables' values (status after every
 * tick, command reads and writes); the nodes are built by
 * `opcua-address-space.ts` from the tables in `opcua-signals.ts`.
 *
 * Anonymous access and SecurityPolicy None only: it is a simulator.
 * Node ids and mapping: ./README.md.
 */
import os from "node:os";
import path from "node:path";
import {
  DataType,
  DataValue,
  MessageSecurityMode,
  nodesets,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  Variant,
  type StatusCode,
  type UAVariable,
} from "node-opcua";
import type { MotomanCommands } from "../../src/profiles/motoman-yrc1000.js";
import { CellioError } from "../../src/infra/errors.js";
import { silentLogger, type Logger } from "../../src/infra/logger.js";
import { freePort } from "./free-port.js";
import type { RobotStatus } from "./model.js";
import { buildMotomanFolder, buildRoboticsModel, type AddressSpaceSink, type Read } from "./opcua-address-space.js";
import { COMMAND_SIGNALS, MOTOMAN_OPCUA_NAMESPACE, type Command, type Scalar } from "./opcua-signals.js";
import type { MotomanSim } from "./sim.js";

export interface MotomanOpcuaFaceOptions {
  /** TCP port; 0 or undefined = a free port picked on 127.0.0.1. */
  readonly port?: number;
  /** Browse name of the MotionDeviceSystem (default "YRC1000"). */
  readonly name?: string;
  /** Path of the endpoint URL (`opc.tcp://127.0.0.1:<port><resourcePath>`, e.g. "/robot"; default none). */
  readonly resourcePath?: string;
  /** Namespace URI of the simulator's nodes (default MOTOMAN_OPCUA_NAMESPACE; a device's `profile_options.namespace_uri`). */
  readonly namespaceUri?: string;
  /** Name of the signal folder and prefix of its NodeIds `s=<folder>.<Signal>` (default "Motoman"; `profile_options.folder`). */
  readonly folder?: string;
  /** PKI folder for the server certificate (default `<tmpdir>/cellio-sim-pki`, shared by all faces). */
  readonly pkiDir?: string;
  readonly log?: Logger;
}

/** A variable kept equal to `read()`: written (with a new source timestamp) only when the value changes. */
interface Binding {
  readonly node: UAVariable;
  readonly type: DataType;
  readonly read: Read;
  last: Scalar | undefined;
}

export class MotomanOpcuaFace {
  private server: OPCUAServer | undefined;
  private readonly bindings: Binding[] = [];
  private readonly commandValues = new Map<keyof MotomanCommands, DataValue>();
  private unsubscribe: (() => void) | undefined;
  private readonly log: Logger;
  private boundPort = 0;
  private nsIndex = -1;
  private readonly updateFailures = new Set<string>();

  constructor(
    private readonly sim: MotomanSim,
    private readonly opts: MotomanOpcuaFaceOptions = {},
  ) {
    this.log = (opts.log ?? silentLogger()).child({ component: "motoman-opcua" });
  }

  get port(): number {
    return this.boundPort;
  }

  get endpointUrl(): string {
    return `opc.tcp://127.0.0.1:${this.boundPort}${this.opts.resourcePath ?? ""}`;
  }

  /** Index of the simulator's namespace (MOTOMAN_OPCUA_NAMESPACE unless `namespaceUri`) in this server's namespace array. */
  get namespaceIndex(): number {
    return this.nsIndex;
  }

  async start(): Promise<{ port: number; endpointUrl: string }> {
    if (this.server) throw new CellioError("CELLIO_ERR_SIM", "Motoman OPC UA face already started");
    this.boundPort = this.opts.port || (await freePort());
    const pki = this.opts.pkiDir ?? path.join(os.tmpdir(), "cellio-sim-pki");
    const server = new OPCUAServer({
      host: "127.0.0.1",
      hostname: "127.0.0.1",
      port: this.boundPort,
      ...(this.opts.resourcePath ? { resourcePath: this.opts.resourcePath } : {}),
      // Robotics 1.02 requires IA (and DI): load them in dependency order.
      nodeset_filename: [nodesets.standard, nodesets.di, nodesets.ia, nodesets.robotics],
      securityPolicies: [SecurityPolicy.None],
      securityModes: [MessageSecurityMode.None],
      allowAnonymous: true,
      serverCertificateManager: new OPCUACertificateManager({ rootFolder: path.join(pki, "PKI"), automaticallyAcceptUnknownCertificate: true }),
      buildInfo: { productName: "cellio Motoman YRC1000 simulator", manufacturerName: "cellio" },
    });
    this.server = server;
    try {
      await server.initialize();
      this.build(server);
      await server.start();
    } catch (e) {
      this.server = undefined;
      this.unsubscribe?.();
      await server.shutdown(0).catch(() => undefined);
      throw e;
    }
    this.log.warn(
      { endpointUrl: this.endpointUrl },
      "Motoman simulator OPC UA face listening: anonymous access, SecurityPolicy None (a simulator; do not expose it)",
    );
    return { port: this.boundPort, endpointUrl: this.endpointUrl };
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const server = this.server;
    this.server = undefined;
    this.bindings.length = 0;
    if (server) await server.shutdown(0);
  }

  // --- address space ---------------------------------------------------------

  private build(server: OPCUAServer): void {
    const as = server.engine.addressSpace;
    if (!as) throw new CellioError("CELLIO_ERR_SIM", "OPC UA server has no address space after initialize()");
    const own = as.registerNamespace(this.opts.namespaceUri ?? MOTOMAN_OPCUA_NAMESPACE);
    this.nsIndex = own.index;
    const sink: AddressSpaceSink = {
      bind: (node, type, read) => this.bind(node, type, read),
      command: (node, cmd) => this.serveCommand(node, cmd),
    };
    const robot = { axes: this.sim.model.axes, jobName: (n: number) => this.sim.jobName(n) };
    buildRoboticsModel(as, own, robot, this.opts.name ?? "YRC1000", sink);
    buildMotomanFolder(own, as.rootFolder.objects, this.sim.model.axes, this.opts.folder ?? "Motoman", sink);
    this.unsubscribe = this.sim.onStatus((s, c) => this.safeUpdate(s, c));
    this.update(this.sim.status, this.sim.commands);
  }

  /** Reads of `node` return the command's last value; a write goes to the robot's command registers. */
  private serveCommand(node: UAVariable, cmd: Command): void {
    const dataType = DataType[cmd.type];
    this.commandValues.set(cmd.key, commandDataValue(dataType, this.sim.commands[cmd.key]));
    node.bindVariable(
      {
        timestamped_get: () => this.commandValues.get(cmd.key)!,
        timestamped_set: (dv: DataValue, done: (err: Error | null, status?: StatusCode) => void) => {
          done(null, this.writeCommand(cmd, dataType, dv));
        },
      },
      true,
    );
  }

  private writeCommand(cmd: Command, dataType: DataType, dv: DataValue): StatusCode {
    const v: unknown = dv.value.value;
    if (cmd.type === "Boolean" ? typeof v !== "boolean" : typeof v !== "number") return StatusCodes.BadTypeMismatch;
    try {
      this.sim.setCommands({ [cmd.key]: v });
    } catch (e) {
      this.log.debug({ err: e, command: cmd.name }, "command write refused");
      return StatusCodes.BadOutOfRange;
    }
    this.commandValues.set(cmd.key, commandDataValue(dataType, this.sim.commands[cmd.key]));
    return StatusCodes.Good;
  }

  private bind(node: UAVariable, type: DataType, read: Read): void {
    this.bindings.push({ node, type, read, last: undefined });
  }

  /** Runs on the robot's timer: a failure is logged (once per kind), never thrown into the tick. */
  private safeUpdate(s: RobotStatus, c: MotomanCommands): void {
    try {
      this.update(s, c);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (this.updateFailures.has(msg)) return;
      this.updateFailures.add(msg);
      this.log.error({ err: e }, "OPC UA face could not update its variables");
    }
  }

  private update(s: RobotStatus, c: MotomanCommands): void {
    const now = new Date();
    for (const b of this.bindings) {
      const v = b.read(s, c);
      if (v === b.last) continue;
      b.last = v;
      b.node.setValueFromSource(new Variant({ dataType: b.type, value: v }), StatusCodes.Good, now);
    }
    for (const cmd of COMMAND_SIGNALS) {
      const held = this.commandValues.get(cmd.key);
      if (held?.value.value === c[cmd.key]) continue;
      this.commandValues.set(cmd.key, commandDataValue(DataType[cmd.type], c[cmd.key], now));
    }
  }
}

function commandDataValue(dataType: DataType, value: Scalar, at = new Date()): DataValue {
  return new DataValue({ value: new Variant({ dataType, value }), statusCode: StatusCodes.Good, sourceTimestamp: at, serverTimestamp: at });
}
