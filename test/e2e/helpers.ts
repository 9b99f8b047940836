/**
 * Helpers for the end-to-end tests: free loopback ports, a temp copy of a
 * config with its device ports replaced, `cellio sim` as a child process (the
 * CLI built by test/integration/helpers.ts `builtCli()`), and a small client
 * for the simulators' HTTP control interface (simulators/modbus/control.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { builtCli, sleep, type Teardown } from "../integration/helpers.js";

/** `n` distinct free ports on 127.0.0.1: servers bound to port 0, held open together, then closed. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", resolve);
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * The text of `file` with every `port: <old>` replaced by `port: <new>` from
 * `ports`; throws when an old port is not in the text (the config changed
 * under the test).
 */
export function withPorts(text: string, ports: ReadonlyMap<number, number>): string {
  let out = text;
  for (const [from, to] of ports) {
    const re = new RegExp(`(\\bport:\\s*)${from}\\b`, "g");
    if (!re.test(out)) throw new Error(`no "port: ${from}" in the config`);
    out = out.replace(re, `$1${to}`);
  }
  return out;
}

/**
 * Apply literal edits to a config text; throws when an edit's `from` is not
 * in the text (the config changed under the test). `from` as a RegExp must
 * carry the g flag to replace every match.
 */
export function editText(text: string, edits: ReadonlyArray<readonly [string | RegExp, string]>): string {
  let out = text;
  for (const [from, to] of edits) {
    const found = typeof from === "string" ? out.includes(from) : new RegExp(from.source, from.flags.replace("g", "")).test(out);
    if (!found) throw new Error(`no ${String(from)} in the config`);
    out = typeof from === "string" ? out.replaceAll(from, to) : out.replace(from, to);
  }
  return out;
}

/** Write `text` to a file in a fresh temp folder (removed by the teardown); returns its path. */
export function tempConfig(text: string, t: Teardown, name = "cell.yaml"): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cellio-e2e-"));
  t.add(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

export function readText(file: string): string {
  return readFileSync(file, "utf8");
}

export interface SimProcess {
  readonly child: ChildProcess;
  /** The last lines the process wrote on stderr (for failure messages). */
  readonly stderr: string[];
}

/**
 * `cellio sim --config FILE --scenario S --control-port P --exit-with-parent`
 * from the built CLI; resolves on its "sim-ready" line, rejects when it exits
 * first or after `readyMs`. Stopped (SIGTERM, then SIGKILL) by the teardown.
 */
export async function startSimCli(config: string, controlPort: number, t: Teardown, opts: { scenario?: string; readyMs?: number } = {}): Promise<SimProcess> {
  const cli = await builtCli();
  const args = [cli, "sim", "--config", config, "--scenario", opts.scenario ?? "demo", "--control-port", String(controlPort), "--exit-with-parent"];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on("line", (l) => {
    stderr.push(l);
    if (stderr.length > 50) stderr.shift();
  });
  t.add(() => stopChild(child));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cellio sim not ready after ${opts.readyMs ?? 20_000} ms: ${stderr.join("\n")}`)), opts.readyMs ?? 20_000);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`cellio sim exited (${String(code)}) before it was ready: ${stderr.join("\n")}`));
    };
    child.once("exit", onExit);
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.includes('"sim-ready"')) {
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve();
      }
    });
  });
  return { child, stderr };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(3000)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await Promise.race([exited, sleep(1000)]);
  }
}

/** Client of the simulators' HTTP control interface on 127.0.0.1:`port`. */
export class SimControl {
  constructor(readonly port: number) {}

  private async call(method: "GET" | "POST", route: string, body?: object): Promise<unknown> {
    const res = await fetch(`http://127.0.0.1:${this.port}${route}`, {
      method,
      headers: body ? { "content-type": "application/json" } : undefined,
      body: body ? JSON.stringify(body) : undefined,
    });
    const json: unknown = await res.json();
    if (!res.ok) throw new Error(`${method} ${route} → ${res.status}: ${JSON.stringify(json)}`);
    return json;
  }

  async set(target: string, area: string, address: number, value: boolean | number): Promise<void> {
    await this.call("POST", "/set", { target, area, address, value });
  }

  async get(target: string, area: string, address: number): Promise<boolean | number> {
    const r = (await this.call("GET", `/get?target=${target}&area=${area}&address=${address}`)) as { values: (boolean | number)[] };
    return r.values[0]!;
  }

  async fault(target: string, fault: object): Promise<void> {
    await this.call("POST", "/fault", { target, fault });
  }

  async clear(target?: string): Promise<void> {
    await this.call("POST", "/clear", target === undefined ? {} : { target });
  }
}

/** Poll the async `cond` every 20 ms until it is true; rejects after `ms` saying what it waited for. */
export async function waitForAsync(cond: () => Promise<boolean>, ms: number, what: string | (() => string)): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(20);
  }
  return performance.now() - t0;
}
