/**
 * A small file that survives a crash: written atomically, read back checked.
 *
 * Format: one header line, then the body (UTF-8, no trailing newline):
 *
 *   cellio-state v1 sha256:<64 hex> bytes:<body length>
 *   {"cell":"demo-cell",...}
 *
 * Write: the whole file goes to a temp file in the same folder, which is
 * fsynced, renamed over the target (atomic on POSIX file systems), and then
 * the folder is fsynced so the rename itself is on disk. A crash at any
 * moment leaves the old file or the new one, never a mix: the temp file may
 * stay behind (removeTempFiles() cleans it at the next start).
 *
 * Read: a missing file, a torn or altered one (checksum or length wrong), a
 * header this cellio does not know and a version it cannot read are told
 * apart, each with a reason, never thrown.
 */
import { createHash } from "node:crypto";
import { open, readFile, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { errorMessage } from "../infra/errors.js";

const MAGIC = "cellio-state";
const HEADER_RE = /^cellio-state v(\d+) sha256:([0-9a-f]{64}) bytes:(\d+)$/;
/** A header line longer than this is not ours. */
const MAX_HEADER = 200;

export type ReadOutcome =
  | { readonly kind: "ok"; readonly version: number; readonly body: string }
  | { readonly kind: "missing" }
  /** Unreadable: torn, altered, not a state file, or an I/O error. */
  | { readonly kind: "corrupt"; readonly reason: string }
  /** Intact, but written in a format version this cellio does not read. */
  | { readonly kind: "unsupported"; readonly version: number; readonly reason: string };

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The file's bytes for `body` in format `version`. */
export function encodeState(version: number, body: string): Buffer {
  const data = Buffer.from(body, "utf8");
  return Buffer.concat([Buffer.from(`${MAGIC} v${version} sha256:${sha256(data)} bytes:${data.length}\n`, "utf8"), data]);
}

/** Check and split a state file's bytes; `supported` lists the format versions the caller reads. */
export function decodeState(bytes: Buffer, supported: readonly number[]): ReadOutcome {
  const nl = bytes.indexOf(0x0a);
  if (nl < 0 || nl > MAX_HEADER) {
    return { kind: "corrupt", reason: bytes.length === 0 ? "the file is empty" : "no cellio-state header line" };
  }
  const m = HEADER_RE.exec(bytes.subarray(0, nl).toString("latin1"));
  if (!m) return { kind: "corrupt", reason: "the header line is not a cellio-state header" };
  const version = Number(m[1]);
  const data = bytes.subarray(nl + 1);
  if (data.length !== Number(m[3])) {
    return { kind: "corrupt", reason: `the body has ${data.length} bytes, the header says ${m[3]} (torn or altered)` };
  }
  if (sha256(data) !== m[2]) return { kind: "corrupt", reason: "the body does not match its sha256 checksum (altered)" };
  if (!supported.includes(version)) {
    return { kind: "unsupported", version, reason: `format v${version}; this cellio reads v${supported.join(", v")}` };
  }
  return { kind: "ok", version, body: data.toString("utf8") };
}

export async function readStateFile(file: string, supported: readonly number[]): Promise<ReadOutcome> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    return { kind: "corrupt", reason: `cannot read it: ${errorMessage(e)}` };
  }
  return decodeState(bytes, supported);
}

/** The temp file a write goes through: same folder (rename must not cross file systems), one per process. */
function tempName(file: string): string {
  return `${file}.${process.pid}.tmp`;
}

/**
 * Write `bytes` to `file` atomically and durably (see the header comment).
 * Rejects on any I/O error; the target is then untouched.
 */
export async function writeFileAtomic(file: string, bytes: Buffer): Promise<void> {
  const tmp = tempName(file);
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await syncDir(path.dirname(file));
}

/** fsync a folder, so a rename in it is durable. */
async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Remove the temp files that writes of `file` left behind when their process died (call before writing). Returns their names. */
export async function removeTempFiles(file: string): Promise<string[]> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const re = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.\\d+\\.tmp$`);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const stale = names.filter((n) => re.test(n));
  await Promise.all(stale.map((n) => rm(path.join(dir, n), { force: true })));
  return stale;
}

/** Keep a file that could not be read next to it, as `<file>.bad-<wallMs>`, for a look later. Returns the new path. */
export async function moveAside(file: string, wallMs: number): Promise<string> {
  const to = `${file}.bad-${Math.round(wallMs)}`;
  await rename(file, to);
  return to;
}
