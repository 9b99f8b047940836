/**
 * A stand-in for systemd's notification socket: a real AF_UNIX datagram
 * socket (socat UNIX-RECV, or ABSTRACT-RECV for an `@name`) whose datagrams
 * the test reads back as `KEY=value` lines, each with its arrival time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";

export interface Notification {
  readonly line: string;
  readonly at: number;
}

export class NotifySocket {
  readonly lines: Notification[] = [];
  private readonly child: ChildProcess;
  private readonly dir: string | undefined;
  private partial = "";

  private constructor(
    /** The value for NOTIFY_SOCKET. */
    readonly address: string,
    socatAddress: string,
    dir: string | undefined,
  ) {
    this.dir = dir;
    this.child = spawn("socat", ["-u", socatAddress, "STDOUT"], { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => {
      const text = this.partial + d.toString();
      const parts = text.split("\n");
      this.partial = parts.pop() ?? "";
      const at = performance.now();
      for (const line of parts) if (line !== "") this.lines.push({ line, at });
    });
  }

  /** A socket file in a fresh temporary folder; resolves once socat has bound it. */
  static async file(): Promise<NotifySocket> {
    const dir = mkdtempSync(path.join(tmpdir(), "cellio-notify-"));
    const file = path.join(dir, "notify.sock");
    const s = new NotifySocket(file, `UNIX-RECV:${file}`, dir);
    const t0 = performance.now();
    while (!existsSync(file)) {
      if (performance.now() - t0 > 5000) throw new Error("socat did not bind the notify socket");
      await new Promise((r) => setTimeout(r, 10));
    }
    return s;
  }

  /** An abstract-namespace socket (`@name`). */
  static async abstract(): Promise<NotifySocket> {
    const name = `cellio-test-${randomBytes(6).toString("hex")}`;
    const s = new NotifySocket(`@${name}`, `ABSTRACT-RECV:${name}`, undefined);
    await new Promise((r) => setTimeout(r, 200)); // no file to wait for: give socat time to bind
    return s;
  }

  /** Lines equal to `line` (e.g. "WATCHDOG=1"). */
  count(line: string): number {
    return this.lines.filter((l) => l.line === line).length;
  }

  has(line: string): boolean {
    return this.lines.some((l) => l.line === line);
  }

  /** Arrival times of `line`. */
  times(line: string): number[] {
    return this.lines.filter((l) => l.line === line).map((l) => l.at);
  }

  text(): string {
    return this.lines.map((l) => l.line).join("\n");
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await gone;
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
