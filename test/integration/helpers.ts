/**
 * Helpers for the integration tests: real Modbus TCP simulators on ephemeral
 * 127.0.0.1 ports, a real CellApp on the real clock, and ways to wait for
 * what the loop publishes. Nothing here is mocked.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { filter, firstValueFrom, timeout } from "rxjs";
import { CellApp } from "../../src/app.js";
import type { NorthOptions } from "../../src/north/host/wiring.js";
import { loadConfigText, type LoadedConfig } from "../../src/config/load.js";
import type { Sample } from "../../src/core/sample.js";
import { createLogger, silentLogger, type Logger } from "../../src/infra/logger.js";
import type { CycleResult } from "../../src/loop/control-loop.js";
import { ModbusTcpSimServer, RegisterBank } from "../../simulators/modbus/index.js";
import { onRequests } from "../helpers/request-hook.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Things to undo after a test, undone in reverse order; errors are collected, not thrown halfway. */
export class Teardown {
  private readonly fns: (() => unknown)[] = [];

  add(fn: () => unknown): void {
    this.fns.push(fn);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.fns.length > 0) {
      const fn = this.fns.pop()!;
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "teardown failed");
  }
}

/**
 * One simulated Modbus TCP device on its own ephemeral port, so its request
 * count (`server.stats.requests`) is its own. `restart()` brings a new server
 * up on the same port with the same bank, as a device that rebooted.
 */
export class SimDevice {
  readonly bank = new RegisterBank();
  private current: ModbusTcpSimServer;
  private boundPort = 0;

  private constructor() {
    this.current = new ModbusTcpSimServer({ port: 0, units: this.bank });
  }

  static async start(t: Teardown): Promise<SimDevice> {
    const d = new SimDevice();
    d.boundPort = (await d.current.start()).port;
    t.add(() => d.stop());
    return d;
  }

  get port(): number {
    return this.boundPort;
  }

  get server(): ModbusTcpSimServer {
    return this.current;
  }

  async stop(): Promise<void> {
    await this.current.stop();
  }

  /** Start a fresh server on the same port (after stop()). Faults and stats start empty. */
  async restart(): Promise<void> {
    await this.current.stop();
    this.current = new ModbusTcpSimServer({ port: this.boundPort, units: this.bank });
    await this.current.start();
  }
}

/**
 * A TCP proxy on 127.0.0.1 between the driver and a simulator, to stage
 * network faults the simulator cannot: `reset()` aborts every connection with
 * a TCP RST (a device that rebooted, a switch that dropped the link), which a
 * client sees as ECONNRESET rather than an orderly close.
 */
export class TcpProxy {
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private server: net.Server | undefined;
  private boundPort = 0;
  connections = 0;

  private constructor(private readonly target: () => number) {}

  static async start(target: () => number, t: Teardown): Promise<TcpProxy> {
    const p = new TcpProxy(target);
    const server = net.createServer((client) => p.onConnection(client));
    p.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    p.boundPort = (server.address() as net.AddressInfo).port;
    t.add(() => p.stop());
    return p;
  }

  get port(): number {
    return this.boundPort;
  }

  private onConnection(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect(this.target(), "127.0.0.1");
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  }

  /** Abort every connection with RST on the client side. */
  reset(): void {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.reset();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export interface RunningCell {
  readonly app: CellApp;
  readonly loaded: LoadedConfig;
  /** Every cycle published since start (bounded: the last 5,000). */
  readonly cycles: CycleResult[];
  idx(id: string): number;
  /** The sample of point `id` in the latest published cycle. */
  latest(id: string): Sample | undefined;
  /** The first cycle from now on that satisfies `pred`; rejects after `ms` saying what it waited for. */
  waitCycle(pred: (c: CycleResult) => boolean, ms: number, what: string): Promise<CycleResult>;
  /** Shorthand: sample of `id` in cycle `c`. */
  sample(c: CycleResult, id: string): Sample;
}

/** The log level of the app under test: silent, or CELLIO_TEST_LOG=debug|info|warn to see it. */
export function testLogger(): Logger {
  const level = process.env.CELLIO_TEST_LOG;
  return level === "debug" || level === "info" || level === "warn" ? createLogger({ level, fd: 2, pretty: false }) : silentLogger();
}

/** Load `yaml`, build a CellApp on the real clock, start it; stopped by the teardown. */
export async function startCell(yaml: string, t: Teardown, opts: { start?: boolean; north?: NorthOptions; stateDir?: string } = {}): Promise<RunningCell> {
  const loaded = loadConfigText(yaml);
  // MQTT / OPC UA: in-thread by default (vitest runs TypeScript sources, which a worker thread cannot load);
  // test/north/host/worker.test.ts passes the compiled worker (builtNorthWorker()).
  const app = new CellApp(loaded, { log: testLogger(), north: opts.north ?? { mode: "in-thread" }, ...(opts.stateDir === undefined ? {} : { stateDir: opts.stateDir }) });
  const cycles: CycleResult[] = [];
  const sub = app.loop.cycles$.subscribe((c) => {
    cycles.push(c);
    if (cycles.length > 5000) cycles.splice(0, 1000);
  });
  t.add(async () => {
    await app.stop(1000);
    sub.unsubscribe();
  });
  const idx = (id: string): number => {
    const i = loaded.model.pointIndex.get(id);
    if (i === undefined) throw new Error(`no point ${id}`);
    return i;
  };
  const cell: RunningCell = {
    app,
    loaded,
    cycles,
    idx,
    latest: (id) => cycles.at(-1)?.image[idx(id)],
    sample: (c, id) => c.image[idx(id)]!,
    async waitCycle(pred, ms, what) {
      try {
        return await firstValueFrom(app.loop.cycles$.pipe(filter(pred), timeout({ first: ms })));
      } catch (e) {
        const last = cycles.at(-1);
        const state = last
          ? loaded.model.points.map((p) => `${p.id}=${String(last.image[p.index]?.value)}/${last.image[p.index]?.status}`).join(" ")
          : "no cycle published";
        throw new Error(`timed out after ${ms} ms waiting for ${what}; last cycle ${last?.cycle ?? "-"} mode ${last?.mode ?? "-"}: ${state}`, {
          cause: e,
        });
      }
    },
  };
  if (opts.start !== false) await app.start();
  return cell;
}

/** Poll `cond` every 5 ms until it is true; rejects after `ms` saying what it waited for. */
export async function waitFor(cond: () => boolean, ms: number, what: string | (() => string)): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(5);
  }
  return performance.now() - t0;
}

/** Timestamps (performance.now()) of the requests a simulator receives, taken as they arrive (test/helpers/request-hook.ts). */
export function recordRequestTimes(server: ModbusTcpSimServer): { readonly times: number[]; stop(): void } {
  const times: number[] = [];
  const hook = onRequests(server, (t) => times.push(t));
  return { times, stop: () => hook.stop() };
}

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Gaps between consecutive times. */
export function intervals(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

/**
 * Fail the test on any unhandled rejection or uncaught exception in this
 * process while it runs. Returns the list (to assert on) and a detach function.
 */
export function trapUnhandled(t: Teardown): unknown[] {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => void seen.push(reason);
  const onException = (err: unknown): void => void seen.push(err);
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  t.add(() => {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
  });
  return seen;
}

// ---- the built CLI ------------------------------------------------------------

/*
 * The CLI is compiled with the project's tsconfig.build.json (restricted to
 * src/main.ts and what it imports) into a private folder keyed by a hash of
 * the sources, node_modules/.cache/cellio-cli-test/<hash>/, as
 * test/cli/validate.test.ts does (same layout, so the two share builds). So a
 * test never races a developer's `npm run build` or another test run over
 * dist/, never runs a stale build, and compiles only when a source changed.
 */
const CLI_CACHE = path.join(ROOT, "node_modules", ".cache", "cellio-cli-test");
const SOURCE_DIRS = ["src", "simulators"];
const BUILD_CONFIGS = ["tsconfig.json", "tsconfig.build.json", "package.json"];

function sourceHash(): string {
  const h = createHash("sha256");
  for (const dir of SOURCE_DIRS) {
    if (!existsSync(path.join(ROOT, dir))) continue;
    const files = readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" })
      .filter((f) => /\.(ts|mts|cts|json)$/.test(f))
      .sort();
    for (const f of files) h.update(`${dir}/${f}\0`).update(readFileSync(path.join(ROOT, dir, f))).update("\0");
  }
  for (const f of BUILD_CONFIGS) h.update(readFileSync(path.join(ROOT, f)));
  return h.digest("hex").slice(0, 16);
}

/**
 * Path of the built src/main.js, compiling it first when the sources changed.
 * `--noCheck`: emit only (type checking is `npm run typecheck`'s job and most
 * of tsc's time); tsc emits despite type errors elsewhere, so only a missing
 * main.js is a failure.
 */
export async function builtCli(): Promise<string> {
  const hash = sourceHash();
  const out = path.join(CLI_CACHE, hash);
  const main = path.join(out, "src", "main.js");
  if (existsSync(main)) return main;
  mkdirSync(CLI_CACHE, { recursive: true });
  const tmp = mkdtempSync(path.join(CLI_CACHE, `${hash}.tmp-`));
  const tsconfig = {
    extends: path.join(ROOT, "tsconfig.build.json"),
    files: [path.join(ROOT, "src", "main.ts")],
    include: [],
    compilerOptions: { outDir: "." },
  };
  writeFileSync(path.join(tmp, "tsconfig.json"), JSON.stringify(tsconfig));
  const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const log = await new Promise<string>((resolve) => {
    execFile(
      process.execPath,
      [tsc, "-p", path.join(tmp, "tsconfig.json"), "--noCheck"],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (_err, stdout, stderr) => resolve(`${stdout}${stderr}`),
    );
  });
  if (!existsSync(path.join(tmp, "src", "main.js"))) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`tsc (tsconfig.build.json, src/main.ts) did not emit src/main.js:\n${log}`);
  }
  try {
    renameSync(tmp, out);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // a parallel run got there first: use its build
  }
  return main;
}

/** The compiled north worker entry of builtCli()'s build (the daemon's worker path, for in-process tests). */
export async function builtNorthWorker(): Promise<string> {
  return path.join(path.dirname(await builtCli()), "north", "host", "worker.js");
}
