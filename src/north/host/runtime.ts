/**
 * What runs in the north worker: the mirror of the cell, MQTT and the OPC UA
 * server built on it, status for the main thread, and a clean stop.
 *
 * mqtt and node-opcua are imported here, on demand: only the worker (or,
 * in-thread, a test) ever loads them, and only what the config asks for.
 */
import { firstValueFrom, timeout } from "rxjs";
import { pino, type Logger } from "pino";
import type { CommandPort } from "../mqtt/ports.js";
import type { MqttService } from "../mqtt/service.js";
import type { CellOpcuaServer } from "../opcua-server/server.js";
import { systemClock, type Clock } from "../../infra/clock.js";
import { errorMessage } from "../../infra/errors.js";
import { CellMirror } from "./mirror.js";
import { setAppliedSeq } from "./sync-call.js";
import type { FromWorker, NorthInit, NorthStatus, ToWorker } from "./protocol.js";

export interface RuntimeDeps {
  readonly init: NorthInit;
  /** To the main thread. */
  readonly post: (m: FromWorker) => void;
  /** The command path (worker: SyncCommandClient; in-thread: the router itself). */
  readonly commands: CommandPort;
  /** In-thread only: the main logger (the worker forwards its log lines instead). */
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Status pushed at least this often (default 1000 ms). */
  readonly statusEveryMs?: number;
}

/** A pino logger whose lines go to the main thread, which logs them with its own logger. */
export function forwardingLogger(level: string, post: (m: FromWorker) => void): Logger {
  return pino({ level, base: undefined, timestamp: false }, { write: (line: string) => post({ t: "log", line }) });
}

export class NorthRuntime {
  readonly mirror: CellMirror;
  mqtt: MqttService | undefined;
  opcua: CellOpcuaServer | undefined;
  private readonly log: Logger;
  private phase: NorthStatus["phase"] = "starting";
  private timer: NodeJS.Timeout | undefined;
  private lastSent = "";
  private lastSentAt = 0;
  private stopping: Promise<void> | undefined;

  constructor(private readonly deps: RuntimeDeps) {
    this.mirror = new CellMirror(deps.init);
    this.log = deps.log ?? forwardingLogger(deps.init.logLevel, deps.post);
  }

  /** One message from the main thread. */
  onMessage(m: ToWorker): void {
    if (m.t === "cycle") {
      if (m.droppedEvents !== undefined && m.droppedEvents > 0) {
        this.log.warn({ component: "north", dropped: m.droppedEvents }, `${m.droppedEvents} cycle events dropped before they reached north (the worker lagged): counted in MQTT diagnostics`);
      }
      this.mirror.apply(m);
      setAppliedSeq(this.deps.init.shared, m.seq);
    } else if (m.t === "stop") {
      void this.stop(m.timeoutMs).then(() => this.deps.post({ t: "stopped" }));
    }
  }

  /** Build and start what the config asks for. A service that fails is logged; the other one runs. */
  async start(): Promise<void> {
    const { init } = this.deps;
    const clock = this.deps.clock ?? systemClock;
    const every = this.deps.statusEveryMs ?? 1000;
    this.timer = setInterval(() => this.pushStatus(false, every), Math.min(250, every));
    this.timer.unref();
    // The OPC UA address space first: seconds of busy worker, during which an embedded broker that
    // already listened could not answer its clients. MQTT comes up right after.
    if (init.opcua) {
      try {
        const { CellOpcuaServer } = await import("../opcua-server/server.js");
        const server = new CellOpcuaServer({
          config: init.opcua,
          view: this.mirror.opcuaView(),
          commands: this.deps.commands,
          log: this.log,
          clock,
          baseDir: init.baseDir,
          stateDir: init.stateDir,
        });
        await server.prepare();
        this.opcua = server;
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, "OPC UA server could not be prepared: the cell runs without it");
      }
    }
    if (init.mqtt && this.stopping === undefined) {
      try {
        const { MqttService, cellioVersion, configHash } = await import("../mqtt/service.js");
        const service = new MqttService(init.mqtt, this.mirror.mqttView(), this.deps.commands, {
          log: this.log,
          clock,
          version: cellioVersion(),
          configHash: configHash(init.config),
          baseDir: init.baseDir,
        });
        this.mqtt = service;
        await service.start();
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, "MQTT could not start: the cell runs without MQTT");
      }
    }
    // OPC UA listens once the first cycle is here, so clients never see an empty cell.
    if (this.opcua && this.stopping === undefined) {
      try {
        await firstValueFrom(this.mirror.cycles$.pipe(timeout({ first: Math.max(2000, 10 * init.periodMs) }))).catch(() => undefined);
        if (this.stopping === undefined) await this.opcua.start();
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, "OPC UA server could not start: the cell runs without it");
      }
    }
    if (this.stopping === undefined) this.phase = "ready";
    this.pushStatus(true, every);
  }

  status(): NorthStatus {
    const m = this.mqtt;
    const o = this.opcua;
    return {
      phase: this.phase,
      applied: this.mirror.applied,
      ...(m
        ? {
            mqtt: {
              url: m.url,
              connected: m.connected,
              reconnects: m.reconnects,
              published: m.counters.published,
              publishErrors: m.counters.publishErrors,
              queued: m.outbox.size,
              commandsAccepted: m.commands.accepted,
              commandsRejected: m.commands.rejected,
            },
          }
        : {}),
      ...(o ? { opcua: { started: o.started, sessions: o.raw?.currentSessionCount ?? 0 } } : {}),
    };
  }

  /** Push the status when something other than the counters changed, or every `every` ms. */
  private pushStatus(force: boolean, every: number): void {
    const s = this.status();
    const key = JSON.stringify([s.phase, s.mqtt?.url, s.mqtt?.connected, s.opcua?.started?.port, s.opcua?.sessions]);
    const now = Date.now();
    if (!force && key === this.lastSent && now - this.lastSentAt < every) return;
    this.lastSent = key;
    this.lastSentAt = now;
    this.deps.post({ t: "status", status: s });
  }

  /** Stop both (MQTT publishes its explicit offline), within `timeoutMs`. */
  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= (async () => {
      this.phase = "stopping";
      clearInterval(this.timer);
      const results = await Promise.allSettled([this.mqtt?.stop(timeoutMs), this.opcua?.stop(timeoutMs)]);
      for (const r of results) if (r.status === "rejected") this.log.warn({ err: errorMessage(r.reason) }, "north stop failed");
      this.phase = "stopped";
      this.pushStatus(true, 0);
    })();
    return this.stopping;
  }
}
