/**
 * Helpers for the OPC UA server tests: a log that can be read back, a client
 * PKI in a temp folder, sessions with a user over a chosen policy and mode,
 * and small read/write/call shorthands. Everything runs on 127.0.0.1.
 */
import { readFile } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import path from "node:path";
import {
  AttributeIds,
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  StatusCodes,
  UserTokenType,
  Variant,
  type ClientSession,
  type DataValue,
  type StatusCode,
  type UserIdentityInfo,
} from "node-opcua";
import type { CellOpcuaServer } from "../../../src/north/opcua-server/server.js";

export { memoryLog } from "../../helpers/memory-log.js";

export interface ClientPki {
  readonly cm: OPCUACertificateManager;
  readonly certificateFile: string;
  /** DER of the client's application certificate. */
  der(): Promise<Buffer>;
}

/** A client certificate store under `dir`; its application certificate is created on first use. */
export async function clientPki(dir: string, applicationName: string): Promise<ClientPki> {
  const cm = new OPCUACertificateManager({ rootFolder: dir, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true });
  await cm.initialize();
  const client = OPCUAClient.create({ applicationName, clientCertificateManager: cm, endpointMustExist: false });
  await client.createDefaultCertificate();
  const certificateFile = client.certificateFile;
  return {
    cm,
    certificateFile,
    der: async () => new X509Certificate(await readFile(certificateFile)).raw,
  };
}

/** Trust a client certificate in the server's store (what an engineer does by moving it to trusted/). */
export async function trust(server: CellOpcuaServer, pki: ClientPki): Promise<void> {
  // ICertificateStore in the typings; it is the OPCUACertificateManager created by security.ts.
  const cm = server.raw!.serverCertificateManager as OPCUACertificateManager;
  await cm.trustCertificate(await pki.der());
}

export interface ConnectOptions {
  readonly pki: ClientPki;
  readonly mode?: MessageSecurityMode;
  readonly policy?: SecurityPolicy;
  readonly user?: string;
  readonly password?: string;
  readonly applicationName?: string;
}

export interface Connected {
  readonly client: OPCUAClient;
  readonly session: ClientSession;
  close(): Promise<void>;
}

export function makeClient(o: ConnectOptions): OPCUAClient {
  return OPCUAClient.create({
    applicationName: o.applicationName ?? "cellio-test",
    securityMode: o.mode ?? MessageSecurityMode.SignAndEncrypt,
    securityPolicy: o.policy ?? SecurityPolicy.Basic256Sha256,
    clientCertificateManager: o.pki.cm,
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 50, maxDelay: 100 },
    requestedSessionTimeout: 60_000,
  });
}

export function identity(o: ConnectOptions): UserIdentityInfo {
  return o.user === undefined ? { type: UserTokenType.Anonymous } : { type: UserTokenType.UserName, userName: o.user, password: o.password ?? "" };
}

/** Connect and open a session; the client is disconnected if the session fails. */
export async function connect(url: string, o: ConnectOptions): Promise<Connected> {
  const client = makeClient(o);
  await client.connect(url);
  try {
    const session = await client.createSession(identity(o));
    return {
      client,
      session,
      close: async () => {
        await session.close().catch(() => undefined);
        await client.disconnect();
      },
    };
  } catch (e) {
    await client.disconnect();
    throw e;
  }
}

/** The error (or undefined) of an attempt to connect and open a session. */
export async function connectError(url: string, o: ConnectOptions): Promise<Error | undefined> {
  try {
    const c = await connect(url, o);
    await c.close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

export class Ns {
  constructor(readonly index: number) {}

  id(s: string): string {
    return `ns=${this.index};s=${s}`;
  }
}

export async function cellNamespace(session: ClientSession, uri: string): Promise<Ns> {
  const arr = await session.readNamespaceArray();
  const i = arr.indexOf(uri);
  if (i < 0) throw new Error(`namespace ${uri} not in ${arr.join(", ")}`);
  return new Ns(i);
}

export async function readValue(session: ClientSession, nodeId: string): Promise<DataValue> {
  return session.read({ nodeId, attributeId: AttributeIds.Value });
}

export async function write(session: ClientSession, nodeId: string, dataType: DataType, value: unknown): Promise<StatusCode> {
  return session.write({ nodeId, attributeId: AttributeIds.Value, value: { value: new Variant({ dataType, value }) } });
}

export async function call(session: ClientSession, ns: Ns, method: string, args: string[] = []): Promise<{ status: StatusCode; message: string }> {
  const r = await session.call({
    objectId: ns.id("Cell"),
    methodId: ns.id(`Cell.${method}`),
    inputArguments: args.map((a) => new Variant({ dataType: DataType.String, value: a })),
  });
  const out = r.outputArguments?.[0]?.value as unknown;
  return { status: r.statusCode, message: typeof out === "string" ? out : "" };
}

export async function waitUntil(cond: () => Promise<boolean> | boolean, ms: number, what: string | (() => string)): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function rejectedDir(pkiDir: string): string {
  return path.join(pkiDir, "rejected");
}

export { StatusCodes };
