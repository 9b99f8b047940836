/**
 * The OPC UA server for the PLC/HMI: lifecycle. The constructor only
 * stores. prepare() creates the PKI (first start: a new application
 * certificate), the node-opcua server with its standard nodeset, the address
 * space, the command handlers and the alarms; it keeps the event loop busy
 * for seconds, so call it BEFORE the control loop starts. start() (which
 * prepares first if needed) listens and starts publishing: call it after the
 * loop's first cycle. stop() stops publishing and shuts the server down
 * within a time bound: call it first when the cell stops.
 *
 * Wiring (app.ts): see README.md.
 */
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { OPCUAServer, UserNameIdentityToken, type OPCUAServerOptions, type StatusCode, type UserManagerOptions } from "node-opcua";
import { systemClock, type Clock } from "../../infra/clock.js";
import { CellioError, errorMessage } from "../../infra/errors.js";
import { pathString } from "../../config/issues.js";
import type { Logger } from "../../infra/logger.js";
import { buildAddressSpace, namespaceUri, type CellNodes, type WriteAccess } from "./address-space.js";
import { CellAlarms } from "./alarms.js";
import { CellRobots, ROBOTICS_NODESETS } from "./robot.js";
import { addCommandMethods, installPointWrite, type CommandDeps } from "./commands.js";
import { opcuaConfigIssues, type OpcuaConfig } from "./config.js";
import type { CellView, CommandPort, PointView } from "./ports.js";
import {
  UserDirectory,
  createServerPki,
  createUserPki,
  endpointSecurity,
  describeCertificate,
  findRejectedFile,
  resolvePkiDir,
  restrictUserTokens,
  roleOfToken,
  trustHint,
  warnInsecure,
  wellKnownRoles,
} from "./security.js";
import { ValuePublisher } from "./values.js";

export { cellViewOf, type CellAppLike } from "./cell-view.js";

export interface OpcuaServerOptions {
  readonly config: OpcuaConfig;
  readonly view: CellView;
  /** The command path; without it every command is refused (not_ready). */
  readonly commands?: CommandPort;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Base of relative state_dir / pki_dir (the config file's folder; default: the working directory). */
  readonly baseDir?: string;
  /** The cell's state folder: the PKI's default is opcua-server/pki in it (default: ./state in baseDir). */
  readonly stateDir?: string;
}

export interface StartedServer {
  readonly port: number;
  readonly endpointUrl: string;
  readonly namespaceUri: string;
  readonly pkiDir: string;
}

export class CellOpcuaServer {
  private server: OPCUAServer | undefined;
  private publisher: ValuePublisher | undefined;
  private nodesRef: CellNodes | undefined;
  private readonly log: Logger;
  private info: StartedServer | undefined;
  private prepared: { hostname: string; pkiDir: string } | undefined;
  private users: UserDirectory | undefined;
  /** Thumbprints of refused client certificates already logged. */
  private readonly refused = new Set<string>();

  constructor(private readonly opts: OpcuaServerOptions) {
    this.log = opts.log.child({ component: "opcua-server" });
  }

  get started(): StartedServer | undefined {
    return this.info;
  }

  /** The address space nodes (tests, benchmarks). */
  get nodes(): CellNodes | undefined {
    return this.nodesRef;
  }

  /** Flush values now instead of waiting for the timer (tests). */
  flush(): void {
    this.publisher?.flush();
  }

  /** The node-opcua server (tests: session counts, endpoints). */
  get raw(): OPCUAServer | undefined {
    return this.server;
  }

  /** Build everything short of listening. Blocks the event loop for seconds (nodeset load): before the loop starts. */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    const { config: cfg, view } = this.opts;
    // The loader checks these with YAML lines (compileCell); again here for a config built in code.
    const issues = opcuaConfigIssues(cfg, view.points, view.devices, { issue: (p, message) => ({ path: pathString(p), line: 0, col: 0, message }) });
    if (issues.length > 0) {
      throw new CellioError("CELLIO_ERR_CONFIG", `opcua: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { issues });
    }
    const baseDir = this.opts.baseDir ?? process.cwd();
    const pkiDir = resolvePkiDir(cfg, { baseDir, stateDir: this.opts.stateDir ?? path.join(baseDir, "state") });
    await mkdir(pkiDir, { recursive: true, mode: 0o700 });
    warnInsecure(cfg, this.log);
    const users = new UserDirectory(cfg.users);
    this.users = users;
    const userManager: UserManagerOptions = {
      isValidUserAsync: (userName: string, password: string, callback: (err: Error | null, ok?: boolean) => void) => {
        users.check(userName, password).then(
          (ok) => {
            if (!ok) this.log.warn({ user: userName }, "OPC UA login refused: unknown user or wrong password");
            callback(null, ok);
          },
          (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
        );
      },
      getUserRoles: (userName: string) => {
        const role = userName === "anonymous" ? (cfg.security.allow_anonymous ? cfg.security.anonymous_role : undefined) : users.roleOf(userName);
        return role === undefined ? [] : wellKnownRoles(role);
      },
    };
    const hostname = cfg.hostname ?? (cfg.host !== undefined && cfg.host !== "0.0.0.0" && cfg.host !== "::" ? cfg.host : os.hostname());
    const L = cfg.limits;
    const options: OPCUAServerOptions = {
      port: cfg.port,
      ...(cfg.host === undefined ? {} : { host: cfg.host }),
      hostname,
      ...endpointSecurity(cfg),
      serverCertificateManager: createServerPki(pkiDir, (der, status) => this.onRefused(pkiDir, der, status)),
      userCertificateManager: createUserPki(pkiDir),
      userManager,
      maxConnectionsPerEndpoint: L.max_connections,
      serverCapabilities: {
        maxSessions: L.max_sessions,
        maxSubscriptionsPerSession: L.max_subscriptions_per_session,
        maxSubscriptions: L.max_sessions * L.max_subscriptions_per_session,
        maxMonitoredItemsPerSubscription: L.max_monitored_items_per_subscription,
        maxMonitoredItemsQueueSize: L.max_queue_size,
        operationLimits: {
          maxNodesPerRead: 10_000,
          maxNodesPerWrite: 1000,
          maxNodesPerBrowse: 1000,
          maxNodesPerMethodCall: 100,
          maxMonitoredItemsPerCall: L.max_monitored_items_per_subscription,
          maxNodesPerTranslateBrowsePathsToNodeIds: 1000,
          maxNodesPerRegisterNodes: 1000,
        },
      },
      serverInfo: { applicationUri: `urn:${hostname}:cellio:${view.cellId}`, productUri: "urn:cellio", applicationName: { text: `cellio ${view.cellId}` } },
      buildInfo: { productName: "cellio", manufacturerName: "cellio", productUri: "urn:cellio" },
      isAuditing: false,
      // The Robotics model (opcua.robots) needs DI, IA and Robotics: seconds more at start, so only when asked for.
      ...(cfg.robots.length > 0 ? { nodeset_filename: [...ROBOTICS_NODESETS] } : {}),
    };
    const server = new OPCUAServer(options);
    this.server = server;
    try {
      await server.initialize();
      restrictUserTokens(server, cfg.security.allow_anonymous); // the endpoints exist from initialize() on
      const ns = server.engine.addressSpace!.registerNamespace(namespaceUri(view.cellId));
      const anonymousRole = cfg.security.allow_anonymous ? cfg.security.anonymous_role : undefined;
      const access = (p: PointView): WriteAccess => ({ engineer: true, operator: p.operatorWritable });
      const nodes = buildAddressSpace(ns, view, { anonymousRole, access });
      const robots = cfg.robots.length > 0 ? new CellRobots(ns, view.points, cfg.robots) : undefined;
      this.nodesRef = nodes;
      const deps: CommandDeps = { config: cfg, users, port: this.opts.commands, clock: this.opts.clock ?? systemClock, log: this.log, nodes };
      for (const p of view.points) if (p.direction !== "input") installPointWrite(nodes.points[p.index]!, p, access(p), deps);
      addCommandMethods(ns, nodes.cell, deps);
      const alarms = new CellAlarms(ns, nodes, deps);
      deps.alarms = alarms;
      this.publisher = new ValuePublisher(view, nodes, {
        intervalMs: cfg.publish_interval_ms,
        log: this.log,
        afterFlush: (c, devices, interlocks) => {
          alarms.sync(c, devices, interlocks, view.alarmStates?.());
          if (c !== undefined) robots?.sync(c.image);
        },
      });
      this.watch(server);
    } catch (e) {
      this.server = undefined;
      this.publisher = undefined;
      await server.shutdown(0).catch(() => undefined);
      throw e;
    }
    this.prepared = { hostname, pkiDir };
  }

  /** Listen and publish (prepares first if needed). */
  async start(): Promise<StartedServer> {
    if (this.info) return this.info;
    await this.prepare();
    const { config: cfg, view } = this.opts;
    const server = this.server!;
    const publisher = this.publisher!;
    const { hostname, pkiDir } = this.prepared!;
    try {
      await server.start();
    } catch (e) {
      await this.stop();
      throw e;
    }
    publisher.start();
    const port = server.endpoints[0]?.port ?? cfg.port;
    this.info = { port, endpointUrl: `opc.tcp://${hostname}:${port}`, namespaceUri: namespaceUri(view.cellId), pkiDir };
    this.log.info(
      {
        endpoint: this.info.endpointUrl,
        namespace: this.info.namespaceUri,
        policies: cfg.security.policies,
        modes: cfg.security.modes,
        none: cfg.security.allow_none,
        anonymous: cfg.security.allow_anonymous,
        users: Object.keys(cfg.users).length,
        pkiDir,
      },
      `OPC UA server listening on ${this.info.endpointUrl}`,
    );
    return this.info;
  }

  /** A refused client certificate: say once per certificate how to trust it. */
  private onRefused(pkiDir: string, der: Buffer, status: StatusCode): void {
    const { thumbprint, subject } = describeCertificate(der);
    if (this.refused.has(thumbprint)) {
      this.log.debug({ thumbprint, status: status.name }, "OPC UA client certificate refused again");
      return;
    }
    this.refused.add(thumbprint);
    // node-opcua writes the certificate to rejected/ while it answers: give it a moment.
    const later = (tries: number): void => {
      void findRejectedFile(pkiDir, thumbprint).then((file) => {
        if (file === undefined && tries > 0) {
          setTimeout(() => later(tries - 1), 100).unref();
          return;
        }
        this.log.warn(
          { subject, thumbprint, status: status.name, file },
          `OPC UA client certificate refused (${status.name}): ${subject}; ${trustHint(pkiDir, file)}`,
        );
      });
    };
    later(10);
  }

  private watch(server: OPCUAServer): void {
    server.on("session_activated", (session, token) => {
      const user = token instanceof UserNameIdentityToken && typeof token.userName === "string" ? token.userName : token.constructor.name;
      const role = roleOfToken(token, this.users!, this.opts.config);
      this.log.info({ session: session.sessionName, user, role: role ?? "none" }, `OPC UA session activated: ${user} (${role ?? "no role"})`);
    });
    server.on("session_closed", (session) => {
      this.log.info({ session: session.sessionName }, "OPC UA session closed");
    });
  }

  /** Stop publishing and shut down, at most `timeoutMs`. */
  async stop(timeoutMs = 2000): Promise<void> {
    this.publisher?.stop();
    this.publisher = undefined;
    const server = this.server;
    this.server = undefined;
    this.info = undefined;
    this.prepared = undefined;
    if (server === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    try {
      const r = await Promise.race([server.shutdown(0).then(() => "done" as const), bound]);
      if (r === "timeout") this.log.warn({ timeoutMs }, "OPC UA server did not shut down in time");
      else this.log.info("OPC UA server stopped");
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, "OPC UA server shutdown failed");
    } finally {
      clearTimeout(timer);
    }
  }
}
