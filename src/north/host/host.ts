/**
 * NorthHost: MQTT and the OPC UA server in ONE worker thread, so nothing
 * northbound runs on the control loop's thread. See README.md.
 *
 * The main thread keeps: a cycles$ subscriber that hands compact deltas to
 * the worker (bridge.ts: a few µs per cycle, nothing queued for a lagging
 * worker), the answers to the worker's commands (CommandRouter.submit, via
 * shared memory: sync-call.ts), the worker's log lines (logged with the cell's
 * logger) and its status. A worker that dies is logged and restarted with
 * backoff; the loop and the outputs never notice.
 *
 * Mode "in-thread" runs the same runtime on this thread over a
 * MessageChannel (unit tests under vitest, which cannot start a TypeScript
 * worker); the daemon always runs "worker" from the compiled dist/ files.
 */
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import type { Observable, Subscription } from "rxjs";
import type { Caller, Command, CommandResult } from "../../core/commands.js";
import { systemClock, type Clock } from "../../infra/clock.js";
import { CellioError, errorMessage } from "../../infra/errors.js";
import type { Logger } from "../../infra/logger.js";
import { CycleBridge, type BridgeCounters, type BridgeCycle, type BridgeSource } from "./bridge.js";
import type { FromWorker, NorthInit, NorthStatus, ToWorker } from "./protocol.js";
import type { NorthRuntime } from "./runtime.js";
import { answerCommand, appliedSeq, createShared } from "./sync-call.js";
import type { NorthWorkerName } from "./worker.js";

export type NorthMode = "worker" | "in-thread";

export interface NorthHostOptions {
  readonly init: Omit<NorthInit, "shared" | "logLevel" | "commandTimeoutMs" | "alarms">;
  readonly cycles$: Observable<BridgeCycle>;
  readonly source: BridgeSource;
  /** The command router. */
  readonly commands: { submit(command: Command, from: Caller): CommandResult };
  readonly log: Logger;
  readonly clock?: Clock;
  /** Default "worker". */
  readonly mode?: NorthMode;
  /** The compiled worker entry (default: worker.js next to this file). */
  readonly workerEntry?: string | URL;
  /** Least time between two deltas (default 10 ms). */
  readonly paceMs?: number;
  readonly commandTimeoutMs?: number;
  /** start() waits at most this long for the worker to report ready (default 60 s). */
  readonly readyTimeoutMs?: number;
}

const LEVELS: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };
const WORKER_NAME: NorthWorkerName = "cellio-north";
const STARTING: NorthStatus = Object.freeze({ phase: "starting", applied: 0 });

export class NorthHost {
  private readonly bridge: CycleBridge;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly mode: NorthMode;
  private readonly entry: URL;
  private current: NorthStatus = STARTING;
  private shared: SharedArrayBuffer = createShared();
  private send: ((m: ToWorker, transfer?: ArrayBuffer[]) => void) | undefined;
  private w: Worker | undefined;
  private runtime: NorthRuntime | undefined;
  private ports: [MessagePort, MessagePort] | undefined;
  private sub: Subscription | undefined;
  private running = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readyAt = 0;
  private readonly waiters = new Set<() => void>();
  private stoppedWaiter: (() => void) | undefined;

  constructor(private readonly opts: NorthHostOptions) {
    this.log = opts.log.child({ component: "north" });
    this.clock = opts.clock ?? systemClock;
    this.mode = opts.mode ?? "worker";
    this.entry = opts.workerEntry instanceof URL ? opts.workerEntry : opts.workerEntry ? pathToFileURL(opts.workerEntry) : new URL("./worker.js", import.meta.url);
    if (this.mode === "worker" && !existsSync(fileURLToPath(this.entry))) {
      throw new CellioError(
        "CELLIO_ERR_CONFIG",
        `the north worker ${fileURLToPath(this.entry)} does not exist: run cellio from its build (npm run build), or give north: { mode: "in-thread" } (tests)`,
      );
    }
    this.bridge = new CycleBridge(opts.source, { points: opts.init.points.length, clock: this.clock, ...(opts.paceMs === undefined ? {} : { paceMs: opts.paceMs }) });
  }

  /** Latest status from the worker (MQTT connection, OPC UA endpoint and sessions). */
  get status(): NorthStatus {
    return this.current;
  }

  /** Main-thread cost and pacing of the bridge (benchmarks, metrics). */
  get bridgeCounters(): Readonly<BridgeCounters> {
    return this.bridge.counters;
  }

  /** Main-thread time per cycle of the bridge, as a histogram (p50/p99/max; reset() between windows). */
  get bridgeTime(): CycleBridge["busy"] {
    return this.bridge.busy;
  }

  /** The worker thread (tests: terminate it to see a restart). */
  get worker(): Worker | undefined {
    return this.w;
  }

  /** In-thread mode: the runtime and its services (tests). */
  get local(): NorthRuntime | undefined {
    return this.runtime;
  }

  /** Start the worker and wait (bounded) until it has started MQTT and the OPC UA server. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.sub = this.opts.cycles$.subscribe((c) => this.onCycle(c));
    await this.spawn();
    await this.untilReady(this.opts.readyTimeoutMs ?? 60_000);
  }

  private onCycle(c: BridgeCycle): void {
    const send = this.send;
    if (send === undefined) {
      this.bridge.observe(c); // no worker now: keep its events and the control mode for the next one
      return;
    }
    const t0 = this.clock.now();
    const out = this.bridge.onCycle(c, appliedSeq(this.shared));
    if (out) send(out.delta, out.transfer);
    this.bridge.addBusy(this.clock.now() - t0);
  }

  private untilReady(ms: number): Promise<void> {
    if (this.current.phase !== "starting") return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        this.log.warn({ ms }, "north worker not ready in time: the cell runs on, MQTT and OPC UA follow when they can");
        resolve();
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.add(done);
    });
  }

  private async spawn(): Promise<void> {
    this.shared = createShared();
    this.bridge.reset();
    this.current = STARTING;
    const init: NorthInit = { ...this.opts.init, alarms: this.opts.source.alarms !== undefined, shared: this.shared, logLevel: this.opts.log.level, commandTimeoutMs: this.opts.commandTimeoutMs ?? 1000 };
    if (this.mode === "in-thread") {
      const { NorthRuntime } = await import("./runtime.js");
      const { port1, port2 } = new MessageChannel();
      this.ports = [port1, port2];
      port1.on("message", (m: FromWorker) => this.onWorkerMessage(m));
      const runtime = new NorthRuntime({ init, post: (m) => port2.postMessage(m), commands: { submit: (c, from) => this.submit(c, from) }, clock: this.clock });
      port2.on("message", (m: ToWorker) => runtime.onMessage(m));
      port1.unref();
      port2.unref();
      this.runtime = runtime;
      this.send = (m, transfer) => port1.postMessage(m, transfer);
      void runtime.start();
      return;
    }
    const w = new Worker(this.entry, { workerData: init, name: WORKER_NAME });
    this.w = w;
    this.send = (m, transfer) => w.postMessage(m, transfer);
    w.on("message", (m: FromWorker) => this.onWorkerMessage(m));
    w.on("error", (e) => this.log.error({ err: errorMessage(e) }, `north worker failed: ${errorMessage(e)}`));
    w.on("exit", (code) => this.onExit(w, code));
  }

  private onExit(w: Worker, code: number): void {
    if (this.w !== w) return;
    this.w = undefined;
    this.send = undefined;
    this.stoppedWaiter?.();
    // start() does not wait for the restarts: the cell runs on without north meanwhile.
    for (const done of this.waiters) done();
    this.waiters.clear();
    if (!this.running) return;
    if (this.readyAt > 0 && this.clock.now() - this.readyAt > 60_000) this.restarts = 0;
    const delay = Math.min(30_000, 1000 * 2 ** this.restarts);
    this.restarts++;
    this.current = { phase: "starting", applied: 0 };
    this.log.error({ code, restartInMs: delay, restarts: this.restarts }, `north worker exited (code ${code}): MQTT and OPC UA restart in ${delay} ms; the control loop runs on`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.running) void this.spawn();
    }, delay);
    this.restartTimer.unref();
  }

  private submit(command: Command, from: Caller): CommandResult {
    if (!this.running) return { accepted: false, code: "not_ready", reason: "the cell is stopping" };
    // The router's rate limiter needs this thread's monotonic clock (a restarted worker's starts again at 0).
    return this.opts.commands.submit(command, { role: from.role, caller: from.caller, nowMs: this.clock.now() });
  }

  private onWorkerMessage(m: FromWorker): void {
    switch (m.t) {
      case "cmd":
        answerCommand(this.shared, m, (c, from) => this.submit(c, from));
        break;
      case "status":
        this.current = m.status;
        if (m.status.phase !== "starting") {
          if (this.readyAt === 0 || m.status.phase === "ready") this.readyAt = this.clock.now();
          for (const done of this.waiters) done();
          this.waiters.clear();
        }
        break;
      case "log":
        this.relog(m.line);
        break;
      case "stopped":
        this.stoppedWaiter?.();
        break;
    }
  }

  private relog(line: string): void {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, ...rest } = o;
    const fn = LEVELS[typeof level === "number" ? level : 30] ?? "info";
    // The cell's logger (not this component's child): the line carries its own component.
    this.opts.log[fn](rest, typeof msg === "string" ? msg : "");
  }

  /**
   * Stop MQTT (explicit offline) and the OPC UA server within `timeoutMs`;
   * the worker then ends by itself. One that does not (busy, hung) is
   * terminated, but only once `beforeTerminate` has settled (CellApp: the
   * outputs are safe): terminating a worker in the middle of a crypto job can
   * abort the whole process (Node 20), which must never come first.
   */
  async stop(timeoutMs = 1000, beforeTerminate: Promise<unknown> = Promise.resolve()): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.restartTimer);
    this.sub?.unsubscribe();
    for (const done of this.waiters) done();
    this.waiters.clear();
    const runtime = this.runtime;
    if (runtime) {
      await runtime.stop(timeoutMs);
      this.send = undefined;
      for (const p of this.ports ?? []) p.close();
      this.ports = undefined;
      this.runtime = undefined;
      return;
    }
    const w = this.w;
    if (w === undefined) return;
    const exited = new Promise<void>((resolve) => w.once("exit", () => resolve()));
    const stopped = new Promise<void>((resolve) => (this.stoppedWaiter = resolve));
    w.postMessage({ t: "stop", timeoutMs } satisfies ToWorker);
    this.send = undefined;
    const answered = await within(Promise.race([stopped, exited]), timeoutMs + 500);
    if (!answered) this.log.warn({ timeoutMs }, "north worker did not confirm its stop in time");
    const gone = await within(exited, 1000);
    this.stoppedWaiter = undefined;
    if (!gone) {
      await beforeTerminate.catch(() => undefined);
      this.log.warn("north worker still running after its stop: terminating it");
      await within(w.terminate(), 1000);
    }
    this.w = undefined;
    this.current = { ...this.current, phase: "stopped" };
  }
}

/** Did `p` settle within `ms`? */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return r;
}
