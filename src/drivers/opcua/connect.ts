/**
 * One connection attempt and its teardown (node-opcua; loaded only with an
 * OPC UA device). Every attempt makes a NEW OPCUAClient with node-opcua's
 * own reconnection switched off (maxRetry 0): the link (link.ts) owns the
 * retry policy, so a broken client is thrown away, never "repaired"
 * (node-opcua reconnect bugs #1059, #1427, #1524).
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import {
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  UserTokenType,
  type ClientSession,
  type UserIdentityInfo,
} from "node-opcua";
import { CellioError } from "../../infra/errors.js";
import { judgeAfterIo } from "../../infra/late-timer.js";
import type { OpcuaDeviceConfig } from "./config.js";
import type { OpcuaPlan } from "./plan.js";

export interface Connection {
  readonly client: OPCUAClient;
  readonly session: ClientSession;
}

const MODES = { None: MessageSecurityMode.None, Sign: MessageSecurityMode.Sign, SignAndEncrypt: MessageSecurityMode.SignAndEncrypt } as const;

/** The PKI of one device: cellio's application certificate and the server trust list. */
export async function openPki(cfg: OpcuaDeviceConfig, plan: OpcuaPlan): Promise<OPCUACertificateManager> {
  const cm = new OPCUACertificateManager({
    rootFolder: plan.pkiDir,
    automaticallyAcceptUnknownCertificate: cfg.security.trust_unknown_server,
  });
  await cm.initialize();
  return cm;
}

export function userIdentity(name: string, cfg: OpcuaDeviceConfig, env: NodeJS.ProcessEnv = process.env): UserIdentityInfo {
  const { user, password_env: passwordEnv } = cfg.security;
  if (user === undefined) return { type: UserTokenType.Anonymous };
  const password = passwordEnv === undefined ? undefined : env[passwordEnv];
  if (password === undefined) {
    throw new CellioError("CELLIO_ERR_CONFIG", `${name}: environment variable ${passwordEnv ?? "(password_env)"} with the password of OPC UA user ${user} is not set`);
  }
  return { type: UserTokenType.UserName, userName: user, password };
}

export function createClient(name: string, cfg: OpcuaDeviceConfig, plan: OpcuaPlan, cm: OPCUACertificateManager): OPCUAClient {
  return OPCUAClient.create({
    applicationName: "cellio",
    applicationUri: `urn:cellio:${name}`,
    clientName: `cellio-${name}`,
    clientCertificateManager: cm,
    securityMode: MODES[cfg.security.mode],
    securityPolicy: SecurityPolicy[plan.policy as keyof typeof SecurityPolicy],
    endpointMustExist: false,
    // One try per client: the link retries with its own backoff on a fresh client.
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    requestedSessionTimeout: cfg.session_timeout_ms,
    transportTimeout: cfg.connect_timeout_ms,
    defaultTransactionTimeout: Math.max(cfg.timeout_ms * 4, 2000),
    // Without a subscription (polled mode, or no inputs) nothing else proves the server alive between
    // requests: let the session read the server state now and then (a failure faults the link).
    keepSessionAlive: cfg.mode === "polled" || plan.inputs.length === 0,
    keepAliveInterval: Math.max(1000, Math.floor(cfg.session_timeout_ms / 3)),
  });
}

/**
 * Promise with a deadline: past it, the promise rejects (CELLIO_ERR_OPCUA_TIMEOUT); a late result
 * is swallowed. A deadline timer that fires late (this thread was stalled) rejects only after that
 * turn's socket reads (infra/late-timer.ts): an answer that came in time settles the promise first.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const dueAt = performance.now() + ms;
    const expire = (): void => reject(new CellioError("CELLIO_ERR_OPCUA_TIMEOUT", `${what} timed out after ${ms} ms`));
    const timer = setTimeout(() => judgeAfterIo(dueAt, expire), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Close session (deleting its subscriptions) and client, each bounded; never throws. */
export async function dispose(client: OPCUAClient, session: ClientSession | undefined, ms: number): Promise<void> {
  if (session) await withTimeout(session.close(true), ms, "session close").catch(() => undefined);
  await withTimeout(client.disconnect(), ms, "disconnect").catch(() => undefined);
}

/** Whether an error says the server's certificate was not trusted. */
export function isUntrustedServer(msg: string): boolean {
  return /certificate verification failed|BadCertificateUntrusted|BadCertificate(Chain)?Incomplete/i.test(msg);
}

/** The newest file in <pki>/rejected (the server certificate just refused), if any. */
export async function newestRejected(pkiDir: string): Promise<string | undefined> {
  const dir = path.join(pkiDir, "rejected");
  const files = await readdir(dir).catch(() => [] as string[]);
  let best: { file: string; t: number } | undefined;
  for (const f of files) {
    const full = path.join(dir, f);
    const t = (await stat(full).catch(() => undefined))?.mtimeMs ?? 0;
    if (!best || t > best.t) best = { file: full, t };
  }
  return best?.file;
}
