/**
 * sd_notify for Node, which has no Unix datagram sockets.
 *
 * One long-lived `socat` child reads cellio's messages on its standard input
 * and sends them as datagrams to `$NOTIFY_SOCKET` (a leading `@` is the
 * abstract namespace). The unit sets `NotifyAccess=all`, so systemd accepts
 * datagrams from any process of the service's cgroup. Unlike a one-shot
 * `systemd-notify`, the sender stays alive, so systemd always finds its
 * cgroup when it reads a datagram (systemd/README.md explains the race).
 *
 * Without `NOTIFY_SOCKET` nothing is spawned and every call is a no-op. A
 * helper that dies is logged and respawned with backoff; it never takes
 * cellio down, and messages written while it is down are dropped (the next
 * watchdog ping or status replaces them).
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "./logger.js";

/** Fields of one notification, e.g. { READY: "1", STATUS: "running" }. */
export type NotifyFields = Readonly<Record<string, string | number>>;

export interface SdNotifierOptions {
  readonly log: Logger;
  /** The environment to read NOTIFY_SOCKET from (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** The helper program (default "socat"). */
  readonly command?: string;
  /** First respawn delay; doubles up to `maxBackoffMs`. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Characters socat's address parser leaves alone (others would need its quoting rules). */
const SAFE_PATH = /^[A-Za-z0-9_./+=@-]+$/;

/** The socat address that sends to `socket`, or an error for a name cellio cannot pass on safely. */
export function socatAddress(socket: string): { ok: true; address: string } | { ok: false; error: string } {
  const abstract = socket.startsWith("@");
  const name = abstract ? socket.slice(1) : socket;
  if (name.length === 0) return { ok: false, error: "NOTIFY_SOCKET names no socket" };
  if (!abstract && !name.startsWith("/")) return { ok: false, error: `NOTIFY_SOCKET must be an absolute path or @abstract, not ${JSON.stringify(socket)}` };
  if (!SAFE_PATH.test(name)) return { ok: false, error: `NOTIFY_SOCKET ${JSON.stringify(socket)} has characters cellio does not pass to socat` };
  return { ok: true, address: abstract ? `ABSTRACT-SENDTO:${name}` : `UNIX-SENDTO:${name}` };
}

/** One notification as the protocol wants it: `KEY=value` lines, no newline inside a value. */
export function formatNotification(fields: NotifyFields): string {
  let out = "";
  for (const [k, v] of Object.entries(fields)) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`sd_notify: bad field name ${JSON.stringify(k)}`);
    out += `${k}=${String(v).replace(/[\r\n]+/g, " ")}\n`;
  }
  return out;
}

/** Larger than any message cellio sends, far below a pipe's atomic write (4096 bytes). */
const MAX_MESSAGE = 1024;
/** Unconsumed bytes after which messages are dropped instead of queued (a stuck helper). */
const MAX_BACKLOG = 4096;

export class SdNotifier {
  private readonly address: string | undefined;
  private readonly log: Logger;
  private readonly command: string;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private child: ChildProcess | undefined;
  private respawnTimer: ReturnType<typeof setTimeout> | undefined;
  private backoff: number;
  private closed = false;
  private lastFailure = "";
  /** Helpers started (1 + respawns), for tests and diagnostics. */
  spawned = 0;
  /** Messages dropped because no helper was running or it did not keep up. */
  dropped = 0;

  constructor(opts: SdNotifierOptions) {
    this.log = opts.log.child({ component: "sd-notify" });
    this.command = opts.command ?? "socat";
    this.minBackoff = opts.minBackoffMs ?? 500;
    this.maxBackoff = opts.maxBackoffMs ?? 30_000;
    this.backoff = this.minBackoff;
    const socket = (opts.env ?? process.env).NOTIFY_SOCKET;
    if (socket === undefined || socket === "") return;
    const a = socatAddress(socket);
    if (!a.ok) {
      this.log.error({ socket }, `${a.error}: systemd notifications are off`);
      return;
    }
    this.address = a.address;
  }

  /** NOTIFY_SOCKET is set (and usable): notifications are sent. */
  get enabled(): boolean {
    return this.address !== undefined;
  }

  /** PID of the running helper, if any. */
  get helperPid(): number | undefined {
    return this.child?.pid;
  }

  /** Start the helper (nothing without NOTIFY_SOCKET). */
  start(): void {
    if (this.enabled && !this.closed && this.child === undefined) this.spawnHelper();
  }

  /** Send one notification. Never throws; a no-op when disabled. */
  notify(fields: NotifyFields): void {
    if (!this.enabled || this.closed) return;
    const msg = formatNotification(fields);
    if (msg.length > MAX_MESSAGE) {
      this.log.warn({ bytes: msg.length }, "sd_notify message too long: dropped");
      return;
    }
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed || !stdin.writable || stdin.writableLength > MAX_BACKLOG) {
      this.dropped++;
      return;
    }
    stdin.write(msg);
  }

  /**
   * Stop respawning and let the helper go: its standard input is closed, so it
   * sends what it has and exits. Call it last (after STOPPING=1 went out).
   */
  close(): void {
    this.closed = true;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    this.respawnTimer = undefined;
    this.child?.stdin?.end();
  }

  private spawnHelper(): void {
    const child = spawn(this.command, ["-u", "STDIN", this.address!], { stdio: ["pipe", "ignore", "pipe"] });
    this.child = child;
    this.spawned++;
    // cellio's lifetime is its own: the helper and its pipes never keep the process alive.
    child.unref();
    for (const s of [child.stdin, child.stderr]) (s as { unref?: () => void } | null)?.unref?.();
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      if (stderr.length < 2000) stderr += d.toString();
    });
    // EPIPE on a dead helper's stdin: the exit handler below deals with it.
    child.stdin?.on("error", () => undefined);
    let done = false;
    const gone = (why: string): void => {
      if (done) return;
      done = true;
      if (this.child === child) this.child = undefined;
      if (this.closed) return;
      const detail = stderr.trim().split("\n").at(-1) ?? "";
      const failure = detail ? `${why}: ${detail}` : why;
      if (failure !== this.lastFailure) {
        this.log.error({ helper: this.command, err: failure, retryMs: this.backoff }, "sd_notify helper stopped: respawning it");
      }
      this.lastFailure = failure;
      this.respawnTimer = setTimeout(() => {
        this.respawnTimer = undefined;
        if (!this.closed) this.spawnHelper();
      }, this.backoff);
      this.respawnTimer.unref();
      this.backoff = Math.min(this.maxBackoff, this.backoff * 2);
    };
    child.on("error", (e) => gone(e.message));
    child.on("exit", (code, signal) => gone(signal ? `killed by ${signal}` : `exited with code ${String(code)}`));
    child.on("spawn", () => {
      // Alive for a while: the next failure starts the backoff afresh.
      const t = setTimeout(() => {
        if (this.child === child) {
          if (this.lastFailure !== "") this.log.info({ pid: child.pid }, "sd_notify helper running again");
          this.lastFailure = "";
          this.backoff = this.minBackoff;
        }
      }, 5000);
      t.unref();
    });
  }
}
