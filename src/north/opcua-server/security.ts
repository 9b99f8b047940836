/**
 * OPC UA server security: password hashes (node:crypto scrypt, compared in
 * constant time), users and their roles, the endpoints offered, and the PKI
 * folder (application certificate, trusted/ and rejected/ client
 * certificates). Password hashing itself is in ./password.ts (no node-opcua,
 * so the config schema and `cellio hash-password` load fast).
 */
import { createHash, X509Certificate } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import {
  MessageSecurityMode,
  OPCUACertificateManager,
  SecurityPolicy,
  UserTokenType,
  UserNameIdentityToken,
  AnonymousIdentityToken,
  WellKnownRoles,
  makeRoles,
  type NodeId,
  type OPCUAServer,
  type StatusCode,
  type UserIdentityToken,
} from "node-opcua";
import type { Logger } from "../../infra/logger.js";
import type { OpcuaConfig, OpcuaRole, SecurityModeName, SecurityPolicyName } from "./config.js";
import { HASH_PREFIX, SCRYPT_DEFAULTS, parsePasswordHash, verifyPassword } from "./password.js";

export { hashPassword, verifyPassword, isPasswordHash, HASH_PREFIX } from "./password.js";

/** The users of the `opcua.users` block: check passwords, map names to roles. */
export class UserDirectory {
  private readonly users: ReadonlyMap<string, { readonly hash: string; readonly role: OpcuaRole }>;
  /** Checked for unknown user names, so a wrong name costs the same time as a wrong password. */
  private readonly dummyHash: string;

  constructor(users: OpcuaConfig["users"]) {
    this.users = new Map(Object.entries(users).map(([name, u]) => [name, { hash: u.password_hash, role: u.role }]));
    const first = [...this.users.values()][0];
    const cost = first ? parsePasswordHash(first.hash) : undefined;
    const salt = Buffer.alloc(SCRYPT_DEFAULTS.saltLength, 1).toString("base64");
    const key = Buffer.alloc(SCRYPT_DEFAULTS.keyLength).toString("base64");
    this.dummyHash = `${HASH_PREFIX}${cost?.N ?? SCRYPT_DEFAULTS.N}$${cost?.r ?? SCRYPT_DEFAULTS.r}$${cost?.p ?? SCRYPT_DEFAULTS.p}$${salt}$${key}`;
  }

  async check(userName: string, password: string): Promise<boolean> {
    const u = this.users.get(userName);
    if (u === undefined) {
      await verifyPassword(password, this.dummyHash);
      return false;
    }
    return verifyPassword(password, u.hash);
  }

  roleOf(userName: string): OpcuaRole | undefined {
    return this.users.get(userName)?.role;
  }
}

/** The OPC UA well-known role a cellio role maps to (OPC 10000-18). */
export function wellKnownRoles(role: OpcuaRole): NodeId[] {
  switch (role) {
    case "viewer":
      return makeRoles([WellKnownRoles.Observer]);
    case "operator":
      return makeRoles([WellKnownRoles.Operator]);
    case "engineer":
      return makeRoles([WellKnownRoles.Engineer]);
  }
}

/**
 * The cellio role of a session from its identity token: a configured user
 * with a user name token, or the anonymous role when anonymous sessions are
 * allowed. Anything else (an X.509 user token, an unknown name): no role.
 */
export function roleOfToken(token: UserIdentityToken | undefined, users: UserDirectory, cfg: OpcuaConfig): OpcuaRole | undefined {
  if (token instanceof AnonymousIdentityToken) return cfg.security.allow_anonymous ? cfg.security.anonymous_role : undefined;
  if (token instanceof UserNameIdentityToken) {
    if (token.policyId === "anonymous") return cfg.security.allow_anonymous ? cfg.security.anonymous_role : undefined;
    return typeof token.userName === "string" ? users.roleOf(token.userName) : undefined;
  }
  return undefined;
}

const POLICY: Readonly<Record<SecurityPolicyName, SecurityPolicy>> = {
  Basic256Sha256: SecurityPolicy.Basic256Sha256,
  Aes128_Sha256_RsaOaep: SecurityPolicy.Aes128_Sha256_RsaOaep,
  Aes256_Sha256_RsaPss: SecurityPolicy.Aes256_Sha256_RsaPss,
};
const MODE: Readonly<Record<SecurityModeName, MessageSecurityMode>> = {
  Sign: MessageSecurityMode.Sign,
  SignAndEncrypt: MessageSecurityMode.SignAndEncrypt,
};

/** Endpoint options: exactly the configured policies × modes, plus None only when allowed. */
export function endpointSecurity(cfg: OpcuaConfig): {
  securityPolicies: SecurityPolicy[];
  securityModes: MessageSecurityMode[];
  allowAnonymous: boolean;
} {
  const securityPolicies = cfg.security.policies.map((p) => POLICY[p]);
  const securityModes = cfg.security.modes.map((m) => MODE[m]);
  if (cfg.security.allow_none) {
    securityPolicies.unshift(SecurityPolicy.None);
    securityModes.unshift(MessageSecurityMode.None);
  }
  return { securityPolicies, securityModes, allowAnonymous: cfg.security.allow_anonymous };
}

/**
 * Advertise only the user tokens cellio accepts: user name (and anonymous
 * when allowed). node-opcua 2.182 offers X.509 user tokens on every endpoint
 * and has no option to leave them out (its userTokenTypes is not passed on to
 * the endpoints), so the descriptions it built are trimmed here, before
 * listening. ActivateSession checks a token against these policies, so an
 * X.509 user token is then refused (BadIdentityTokenInvalid) instead of
 * accepted without a role. Returns how many token policies were removed.
 */
export function restrictUserTokens(server: OPCUAServer, allowAnonymous: boolean): number {
  const keep = new Set<UserTokenType>([UserTokenType.UserName, ...(allowAnonymous ? [UserTokenType.Anonymous] : [])]);
  let removed = 0;
  for (const endpoint of server.endpoints) {
    for (const d of endpoint.endpointDescriptions()) {
      const tokens = d.userIdentityTokens ?? [];
      const kept = tokens.filter((t) => keep.has(t.tokenType));
      removed += tokens.length - kept.length;
      d.userIdentityTokens = kept;
    }
  }
  return removed;
}

/** Log what an insecure configuration allows, at warn, once at start. */
export function warnInsecure(cfg: OpcuaConfig, log: Logger): void {
  if (cfg.security.allow_none) {
    log.warn("OPC UA: SecurityPolicy None is offered (security.allow_none): traffic is neither signed nor encrypted. Use only on a demo or a closed test bench");
  }
  if (cfg.security.allow_anonymous) {
    log.warn(
      { role: cfg.security.anonymous_role },
      `OPC UA: anonymous sessions are accepted (security.allow_anonymous) with role ${cfg.security.anonymous_role}. Use only on a demo or a closed test bench`,
    );
  }
}

/** Where the server's files go: relative paths from the config file's folder, the default in the cell's state folder. */
export interface ServerDirs {
  /** The config file's folder. */
  readonly baseDir: string;
  /** The cell's state folder (see src/persist/config.ts resolveStateDir). */
  readonly stateDir: string;
}

/** The PKI folder: `pki_dir`, else `<state_dir>/pki`, else `opcua-server/pki` in the cell's state folder. */
export function resolvePkiDir(cfg: Pick<OpcuaConfig, "pki_dir" | "state_dir">, dirs: ServerDirs): string {
  if (cfg.pki_dir !== undefined) return path.resolve(dirs.baseDir, cfg.pki_dir);
  const serverDir = cfg.state_dir === undefined ? path.join(dirs.stateDir, "opcua-server") : path.resolve(dirs.baseDir, cfg.state_dir);
  return path.join(serverDir, "pki");
}

/**
 * The server's certificate store under `pkiDir` (created on first start, with
 * a self-signed application certificate in own/). Unknown client
 * certificates are REJECTED and copied to rejected/; `onRefused` hears of
 * each refused certificate (node-opcua reports it nowhere else).
 */
export function createServerPki(pkiDir: string, onRefused: (der: Buffer, status: StatusCode) => void): OPCUACertificateManager {
  const cm = new OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: false, keySize: 2048 });
  type Check = (certificate: Buffer, callback?: (err: Error | null, status?: StatusCode) => void) => Promise<StatusCode> | void;
  // node-opcua typings: checkCertificate is overloaded (promise or callback); the wrapper serves both.
  const original: (certificate: Buffer) => Promise<StatusCode> = cm.checkCertificate.bind(cm);
  const wrapped: Check = (certificate, callback) => {
    const p = original(certificate).then((status) => {
      if (status.isNotGood() && certificate.length > 0) onRefused(certificate, status);
      return status;
    });
    if (callback === undefined) return p;
    p.then(
      (status) => callback(null, status),
      (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
    );
  };
  (cm as unknown as { checkCertificate: Check }).checkCertificate = wrapped;
  return cm;
}

/** Store for X.509 user tokens: trusts nothing it was not given (cellio authenticates users by name and password). */
export function createUserPki(pkiDir: string): OPCUACertificateManager {
  return new OPCUACertificateManager({ rootFolder: path.join(pkiDir, "users"), automaticallyAcceptUnknownCertificate: false, keySize: 2048 });
}

/** Thumbprint (SHA-1, hex) and subject of the first certificate of a DER chain, for log lines. */
export function describeCertificate(der: Buffer): { thumbprint: string; subject: string } {
  let first = der;
  try {
    const x = new X509Certificate(der);
    first = x.raw;
    return { thumbprint: createHash("sha1").update(first).digest("hex"), subject: x.subject.replace(/\n/g, ", ") };
  } catch {
    return { thumbprint: createHash("sha1").update(first).digest("hex"), subject: "(unreadable)" };
  }
}

/** The file in rejected/ that holds this certificate (node-opcua names it `<CN>[<thumbprint>].pem`), if any. */
export async function findRejectedFile(pkiDir: string, thumbprint: string): Promise<string | undefined> {
  const dir = path.join(pkiDir, "rejected");
  try {
    const hit = (await readdir(dir)).find((n) => n.toLowerCase().includes(thumbprint.toLowerCase()));
    return hit === undefined ? undefined : path.join(dir, hit);
  } catch {
    return undefined;
  }
}

/** The log line that tells an engineer how to trust a rejected client. */
export function trustHint(pkiDir: string, rejectedFile: string | undefined): string {
  const from = rejectedFile ?? path.join(pkiDir, "rejected", "<file>.pem");
  return `to trust this client, move ${from} to ${path.join(pkiDir, "trusted", "certs")}/ (the server picks it up without a restart)`;
}
