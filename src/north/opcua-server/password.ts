/**
 * Password hashes for the OPC UA users: node:crypto scrypt, compared in
 * constant time. No node-opcua here: the config schema and
 * `cellio hash-password` import this file.
 *
 * Format: `scrypt$<N>$<r>$<p>$<salt, base64>$<key, base64>`. Passwords are
 * checked on the libuv thread pool (async scrypt), never on the event loop,
 * so a burst of logins cannot delay a cycle.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

export const HASH_PREFIX = "scrypt$";

/** Defaults: N = 2^15, r = 8, p = 1 (about 32 MiB and tens of ms per check), 16-byte salt, 32-byte key. */
export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1, keyLength: 32, saltLength: 16 } as const;

export interface ParsedHash {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly key: Buffer;
}

function scryptAsync(password: string, salt: Buffer, keyLength: number, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Parse a stored hash; undefined when it is not one cellio wrote (or its cost is out of bounds). */
export function parsePasswordHash(hash: string): ParsedHash | undefined {
  const parts = hash.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0)) return undefined;
  // N a power of two, and bounded so a config cannot ask for gigabytes per login.
  if (N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0 || r > 32 || p > 16) return undefined;
  const salt = Buffer.from(parts[4]!, "base64");
  const key = Buffer.from(parts[5]!, "base64");
  if (salt.length < 8 || key.length < 16) return undefined;
  return { N, r, p, salt, key };
}

export function isPasswordHash(hash: string): boolean {
  return parsePasswordHash(hash) !== undefined;
}

/** Hash a password for the config's `users.<name>.password_hash`. */
export async function hashPassword(password: string, opts: { N?: number; r?: number; p?: number } = {}): Promise<string> {
  const N = opts.N ?? SCRYPT_DEFAULTS.N;
  const r = opts.r ?? SCRYPT_DEFAULTS.r;
  const p = opts.p ?? SCRYPT_DEFAULTS.p;
  const salt = randomBytes(SCRYPT_DEFAULTS.saltLength);
  const key = await scryptAsync(password, salt, SCRYPT_DEFAULTS.keyLength, N, r, p);
  return `${HASH_PREFIX}${N}$${r}$${p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/** Does `password` match `hash`? Constant-time compare; false for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const h = parsePasswordHash(hash);
  if (h === undefined) return false;
  const key = await scryptAsync(password, h.salt, h.key.length, h.N, h.r, h.p);
  return key.length === h.key.length && timingSafeEqual(key, h.key);
}
