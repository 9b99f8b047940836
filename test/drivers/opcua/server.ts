/**
 * An in-process node-opcua server for the OPC UA client tests: a `Test`
 * folder in namespace TEST_NS with typed variables (inputs and writable
 * outputs), an optional bulk of N Doubles, settable values with status and
 * source timestamp, and the faults the driver must survive: restart (same
 * port, optionally a new certificate), stop (outage), deleting the
 * subscriptions of every session. Real TCP on 127.0.0.1.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  Variant,
  type StatusCode,
  type UAVariable,
} from "node-opcua";
import { freePort } from "../../../simulators/motoman/free-port.js";

export const TEST_NS = "urn:cellio:test:opcua-client";

type Scalar = boolean | number | string;
interface VarDef {
  readonly type: keyof typeof DataType;
  readonly initial: Scalar;
  readonly writable?: boolean;
}

export const TEST_VARS: Readonly<Record<string, VarDef>> = {
  Bool: { type: "Boolean", initial: false },
  Int16: { type: "Int16", initial: -5 },
  UInt16: { type: "UInt16", initial: 7 },
  Int32: { type: "Int32", initial: 100000 },
  Double: { type: "Double", initial: 1.5 },
  Float: { type: "Float", initial: 2.5 },
  Text: { type: "String", initial: "hello" },
  Counter: { type: "UInt32", initial: 0 },
  OutBool: { type: "Boolean", initial: false, writable: true },
  OutUInt16: { type: "UInt16", initial: 0, writable: true },
  OutDouble: { type: "Double", initial: 0, writable: true },
  ReadOnly: { type: "UInt16", initial: 1 },
};

export interface TestServerOptions {
  /** Number of bulk Doubles `Bulk.0` … (default 0). */
  readonly bulk?: number;
  /** Secure endpoints only (Sign and SignAndEncrypt, Basic256Sha256), user "cell" / "secret". */
  readonly secure?: boolean;
  readonly port?: number;
  readonly pkiDir?: string;
}

export class TestOpcuaServer {
  private server: OPCUAServer | undefined;
  private readonly nodes = new Map<string, UAVariable>();
  private readonly values = new Map<string, Scalar>();
  private boundPort = 0;
  private pkiDir: string;
  /** Last value written to OutLimited (which refuses values above 100 with BadOutOfRange). */
  limited = 0;

  constructor(private readonly opts: TestServerOptions = {}) {
    this.pkiDir = opts.pkiDir ?? mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-srv-"));
    for (const [name, def] of Object.entries(TEST_VARS)) this.values.set(name, def.initial);
    for (let i = 0; i < (opts.bulk ?? 0); i++) this.values.set(`Bulk.${i}`, 0);
  }

  get port(): number {
    return this.boundPort;
  }

  get endpoint(): string {
    return `opc.tcp://127.0.0.1:${this.boundPort}`;
  }

  get raw(): OPCUAServer | undefined {
    return this.server;
  }

  async start(): Promise<this> {
    this.boundPort ||= this.opts.port ?? (await freePort());
    const secure = this.opts.secure === true;
    const server = new OPCUAServer({
      port: this.boundPort,
      hostname: "127.0.0.1",
      securityModes: secure ? [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt] : [MessageSecurityMode.None],
      securityPolicies: secure ? [SecurityPolicy.Basic256Sha256] : [SecurityPolicy.None],
      allowAnonymous: !secure,
      userManager: { isValidUser: (u: string, p: string) => u === "cell" && p === "secret" },
      serverCertificateManager: new OPCUACertificateManager({ rootFolder: this.pkiDir, automaticallyAcceptUnknownCertificate: true }),
      maxConnectionsPerEndpoint: 500,
      serverCapabilities: { maxSessions: 500 },
    });
    await server.initialize();
    this.build(server);
    await server.start();
    this.server = server;
    return this;
  }

  private build(server: OPCUAServer): void {
    const as = server.engine.addressSpace!;
    const ns = as.registerNamespace(TEST_NS);
    const folder = ns.addFolder(as.rootFolder.objects, { browseName: "Test", nodeId: "s=Test" });
    this.nodes.clear();
    for (const [name, v] of this.values) {
      const def = TEST_VARS[name] ?? { type: "Double", initial: 0 };
      const node = ns.addVariable({
        organizedBy: folder,
        browseName: name,
        nodeId: `s=Test.${name}`,
        dataType: def.type,
        accessLevel: def.writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        userAccessLevel: def.writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        minimumSamplingInterval: 0,
      });
      node.setValueFromSource(new Variant({ dataType: DataType[def.type], value: v }), StatusCodes.Good, new Date());
      this.nodes.set(name, node);
    }
    ns.addVariable({
      organizedBy: folder,
      browseName: "OutLimited",
      nodeId: "s=Test.OutLimited",
      dataType: "UInt16",
      accessLevel: "CurrentRead | CurrentWrite",
      userAccessLevel: "CurrentRead | CurrentWrite",
      value: {
        get: () => new Variant({ dataType: DataType.UInt16, value: this.limited }),
        set: (v: Variant) => {
          if (Number(v.value) > 100) return StatusCodes.BadOutOfRange;
          this.limited = Number(v.value);
          return StatusCodes.Good;
        },
      },
    });
  }

  /** Set a variable as the data source would: value, status, source time (now by default). */
  set(name: string, value: Scalar, status: StatusCode = StatusCodes.Good, sourceTs = new Date()): void {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no test variable ${name}`);
    this.values.set(name, value);
    const def = TEST_VARS[name] ?? { type: "Double" as const };
    node.setValueFromSource(new Variant({ dataType: DataType[def.type], value }), status, sourceTs);
  }

  /** Every variable back to its initial value (Good, now). */
  reset(): void {
    for (const [name, def] of Object.entries(TEST_VARS)) this.set(name, def.initial);
    this.limited = 0;
  }

  value(name: string): unknown {
    return this.nodes.get(name)?.readValue().value.value;
  }

  /** Delete every subscription of every session on the server side (as a server that lost them would). */
  deleteSubscriptions(): number {
    let n = 0;
    for (const s of this.server?.engine.getSessions() ?? []) {
      for (const sub of [...s.publishEngine.subscriptions]) {
        s.deleteSubscription(sub.id);
        n++;
      }
    }
    return n;
  }

  /** Sessions not closed (an orphan whose client vanished counts until its timeout). */
  get sessionCount(): number {
    return (this.server?.engine.getSessions() ?? []).filter((s) => s.status !== "closed").length;
  }

  get channelCount(): number {
    return this.server?.currentChannelCount ?? 0;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await s.shutdown(0);
  }

  /** Stop, optionally with a new server certificate, and start again on the same port. */
  async restart(opts: { newCertificate?: boolean; downMs?: number } = {}): Promise<void> {
    await this.stop();
    if (opts.newCertificate) this.pkiDir = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-srv-"));
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    await this.start();
  }
}
