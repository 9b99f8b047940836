/**
 * A real mosquitto for tests: its own process (never the system service) on a
 * free 127.0.0.1 port, a password file made with mosquitto_passwd and an ACL,
 * in a temporary directory, optionally TLS listeners. kill9() and restart()
 * on the SAME port test broker loss; stop() cleans up. Needs the Debian package `mosquitto` (2.x).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p)) ?? "mosquitto";
const PASSWD = ["/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd"].find((p) => existsSync(p)) ?? "mosquitto_passwd";

export function mosquittoInstalled(): boolean {
  return spawnSync(MOSQUITTO, ["-h"], { encoding: "utf8" }).stdout?.includes("mosquitto version") ?? false;
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const addr = srv.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export interface MosquittoOptions {
  /** user → password */
  readonly users: Readonly<Record<string, string>>;
  /** ACL file text (mosquitto acl_file syntax). */
  readonly acl: string;
  readonly port?: number;
  /** Extra lines for mosquitto.conf. */
  readonly extra?: readonly string[];
  /** Keep retained messages and sessions across a clean restart (persistence file in the temp dir). */
  readonly persistence?: boolean;
  /** TLS listeners (each on its own free port, same users and ACL): PEM file paths. */
  readonly tls?: readonly TlsListener[];
}

export interface TlsListener {
  /** CA that client certificates must chain to. */
  readonly ca: string;
  /** The broker's certificate and key. */
  readonly cert: string;
  readonly key: string;
  /** Refuse clients without a valid certificate from `ca` (mosquitto `require_certificate true`). */
  readonly requireCertificate?: boolean;
}

export class Mosquitto {
  private child: ChildProcess | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly confFile: string,
    /** Ports of the TLS listeners, in the order of MosquittoOptions.tls. */
    readonly tlsPorts: readonly number[] = [],
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** mqtts:// URL of TLS listener `i`. */
  tlsUrl(i = 0): string {
    const p = this.tlsPorts[i];
    if (p === undefined) throw new Error(`no TLS listener ${i}`);
    return `mqtts://127.0.0.1:${p}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(o: MosquittoOptions): Promise<Mosquitto> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cellio-mosquitto-"));
    const passwd = path.join(dir, "passwd");
    const acl = path.join(dir, "acl");
    let first = true;
    for (const [user, pw] of Object.entries(o.users)) {
      const r = spawnSync(PASSWD, first ? ["-b", "-c", passwd, user, pw] : ["-b", passwd, user, pw], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
      first = false;
    }
    writeFileSync(acl, o.acl);
    const port = o.port ?? (await freePort());
    const conf = path.join(dir, "mosquitto.conf");
    const tlsPorts: number[] = [];
    const tlsLines: string[] = [];
    for (const l of o.tls ?? []) {
      const p = await freePort();
      tlsPorts.push(p);
      // Listener options (certificates) apply to the listener line before them.
      tlsLines.push(`listener ${p} 127.0.0.1`, `cafile ${l.ca}`, `certfile ${l.cert}`, `keyfile ${l.key}`, `require_certificate ${l.requireCertificate ? "true" : "false"}`);
    }
    const lines = [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous false",
      `password_file ${passwd}`,
      `acl_file ${acl}`,
      ...(o.persistence ? ["persistence true", `persistence_location ${dir}/`] : ["persistence false"]),
      `log_dest file ${path.join(dir, "mosquitto.log")}`,
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      // Running as root, mosquitto would switch to the `mosquitto` user, which cannot read the temp dir.
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      ...(o.extra ?? []),
      ...tlsLines,
    ];
    writeFileSync(conf, `${lines.join("\n")}\n`);
    const m = new Mosquitto(dir, port, conf, tlsPorts);
    await m.launch();
    return m;
  }

  private async launch(): Promise<void> {
    const child = spawn(MOSQUITTO, ["-c", this.confFile], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
    this.child = child;
    const t0 = Date.now();
    for (const port of [this.port, ...this.tlsPorts]) {
      while (!(await canConnect(port))) {
        if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${stderr}${this.log()}`);
        if (Date.now() - t0 > 10_000) throw new Error(`mosquitto did not listen on ${port} within 10 s: ${stderr}${this.log()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** mosquitto's log so far (for failure messages). */
  log(): string {
    try {
      return readFileSync(path.join(this.dir, "mosquitto.log"), "utf8");
    } catch {
      return "";
    }
  }

  private async kill(signal: NodeJS.Signals): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGKILL");
      await exited;
    }
  }

  /** The broker dies (no clean shutdown, nothing persisted). */
  async kill9(): Promise<void> {
    await this.kill("SIGKILL");
  }

  /**
   * Start again on the same port with the same files. SIGKILL (default): the
   * broker dies, nothing is saved. SIGTERM: a clean stop that saves retained
   * messages and sessions when `persistence` is on.
   */
  async restart(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    await this.kill(signal);
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill("SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
