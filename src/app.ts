/**
 * Composition root: build everything from the loaded config, start in order,
 * stop in reverse with a time bound. Nothing else in cellio wires components.
 */
import path from "node:path";
import { asyncScheduler, type SchedulerLike, type Subscription } from "rxjs";
import type { LoadedConfig } from "./config/load.js";
import type { DeviceConfig } from "./config/schema.js";
import type { PointDef } from "./core/points.js";
import { InputTable } from "./core/input-table.js";
import { systemClock, type Clock } from "./infra/clock.js";
import type { Logger } from "./infra/logger.js";
import { errorMessage } from "./infra/errors.js";
import { sharedGcPauses } from "./infra/gc-monitor.js";
import { NOT_REQUESTED, SINGLE_THREADED_GC, applyRealtime, dropRealtime, gcOnLoopThread, missingDaemonFlags, type RealtimeState } from "./infra/realtime.js";
import { CycleSummary } from "./cycle-summary.js";
import { ControlLoop, type CycleResult } from "./loop/control-loop.js";
import { DeviceRunner } from "./loop/device-runner.js";
import type { DeviceDriver } from "./loop/device-port.js";
import { PreciseScheduler } from "./loop/precise-scheduler.js";
import { ModbusLinks } from "./drivers/modbus/links.js";
// No node-opcua here: the OPC UA driver imports its node-opcua side in start(), only when an opcua device exists.
import { OpcuaDriver, type OpcuaDriverOptions } from "./drivers/opcua/driver.js";
import type { NorthHost } from "./north/host/host.js";
import { northHostOf, type NorthOptions } from "./north/host/wiring.js";
import { HttpService } from "./north/http/server.js";
import type { NorthStats } from "./north/http/metrics.js";
import { StatePersister } from "./persist/persister.js";
import { DEFAULT_MIN_WRITE_INTERVAL_MS, resolveStateDir } from "./persist/config.js";

export interface AppOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly tickScheduler?: SchedulerLike;
  readonly scheduler?: SchedulerLike;
  /** Log a one-line cycle summary this often (0: never). */
  readonly summaryEveryMs?: number;
  /** Where MQTT and the OPC UA server run: a worker thread (default) or, for tests on TypeScript sources, in-thread. */
  readonly north?: NorthOptions;
  /**
   * Folder of the state file (retained interlock trips, counters, retained
   * sequence steps; src/persist). `cellio run` always passes one
   * (resolveStateDir). Without it, only a config with `state.dir` persists.
   */
  readonly stateDir?: string;
}

function createDriver(
  name: string,
  cfg: DeviceConfig,
  points: PointDef[],
  clock: Clock,
  log: Logger,
  buses: ModbusLinks,
  files: OpcuaDriverOptions,
): DeviceDriver {
  switch (cfg.protocol) {
    case "modbus-tcp":
    case "modbus-rtu":
      // One bus per serial path, one connection per host:port, shared by every device on it.
      return buses.driver(name, cfg, points, clock, log);
    case "opcua":
      return new OpcuaDriver(name, cfg, points, clock, log, files);
  }
}

export class CellApp {
  readonly table: InputTable;
  readonly loop: ControlLoop;
  readonly drivers: readonly DeviceDriver[];
  readonly runners: readonly DeviceRunner[];
  /** MQTT for technicians and the OPC UA server for the PLC/HMI (`mqtt:` / `opcua:` blocks), in their own worker thread. */
  readonly north: NorthHost | undefined;
  /** Prometheus /metrics, /healthz, /readyz, when the config has an enabled `http:` block. */
  readonly http: HttpService | undefined;
  /** The state file keeper, when there is a state folder (AppOptions.stateDir or config state.dir). */
  readonly state: StatePersister | undefined;
  /**
   * The cell's state folder: AppOptions.stateDir, else the config's state.dir, else $STATE_DIRECTORY,
   * else ./state next to the config file. OPC UA certificates (client and server) default into it.
   */
  readonly stateDir: string;
  /** The loop thread's scheduling (config cycle.realtime_priority), as read back from the kernel at start. */
  realtime: RealtimeState = NOT_REQUESTED;
  private readonly log: Logger;
  private readonly summary: CycleSummary;
  private eventSub: Subscription | undefined;
  private started = false;

  constructor(
    readonly loaded: LoadedConfig,
    private readonly opts: AppOptions,
  ) {
    const { model } = loaded;
    const clock = opts.clock ?? systemClock;
    this.log = opts.log.child({ cell: model.cellId });
    this.table = new InputTable(model.points.length);
    const drivers: DeviceDriver[] = [];
    const runners: DeviceRunner[] = [];
    const buses = new ModbusLinks(this.log);
    const configDir = path.dirname(path.resolve(loaded.file));
    const st = loaded.config.state;
    // The state file is kept when a folder is given (cellio run always gives one); certificates always have a home.
    const persistDir = opts.stateDir ?? (st?.dir === undefined ? undefined : resolveStateDir({ configured: st.dir, configFile: loaded.file }));
    this.stateDir = persistDir ?? resolveStateDir({ configFile: loaded.file });
    for (const d of model.devices) {
      const points = d.points.map((i) => model.points[i]!);
      const log = this.log.child({ component: "driver", device: d.name });
      const driver = createDriver(d.name, d.config, points, clock, log, buses, { baseDir: configDir, stateDir: this.stateDir });
      drivers.push(driver);
      runners.push(
        new DeviceRunner(
          driver,
          {
            pollEvery: d.config.poll_every,
            staleAfterMs: d.staleAfterMs,
            failAfter: d.config.fail_after,
            points: d.points,
            outputs: points.filter((p) => p.direction === "output").map((p) => p.index),
            heartbeatWrites: d.config.heartbeat_writes,
          },
          this.table,
          clock,
          log,
        ),
      );
    }
    this.drivers = drivers;
    this.runners = runners;
    this.loop = new ControlLoop({
      model,
      runners,
      table: this.table,
      clock,
      // quiet: between cycles with nothing in flight, the wait for the next tick is one sleep (precise-scheduler.ts)
      tickScheduler: opts.tickScheduler ?? new PreciseScheduler(clock, { quiet: () => this.loop.quiet }),
      scheduler: opts.scheduler ?? asyncScheduler,
      // a phase deadline that fired late ends right after that turn's socket reads (virtual time: on the scheduler)
      afterIo: opts.scheduler ? undefined : (fn) => void setImmediate(fn),
      log: this.log.child({ component: "loop" }),
    });
    // One observer of this thread's GC pauses, for the summary line and /metrics.
    const gcPauses = sharedGcPauses();
    this.summary = new CycleSummary({ loop: this.loop, runners, periodMs: model.cycle.periodMs, log: this.log, gc: gcPauses });
    this.north = northHostOf(this, this.log, clock, opts.north);
    const http = loaded.config.http;
    this.http = http?.enabled
      ? new HttpService({
          config: http,
          cell: { model, loop: this.loop, runners, drivers, northStats: () => this.northStats(), realtimePriority: () => this.realtime.priority },
          clock,
          log: this.log,
          gcPauses,
        })
      : undefined;
    this.state = persistDir
      ? new StatePersister({
          dir: persistDir,
          cell: model.cellId,
          engines: this.loop.logic,
          log: this.log,
          clock,
          minWriteIntervalMs: st?.min_write_interval ?? DEFAULT_MIN_WRITE_INTERVAL_MS,
        })
      : undefined;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { model } = this.loaded;
    this.log.info(
      { devices: model.devices.length, points: model.points.length, periodMs: model.cycle.periodMs },
      "starting cell",
    );
    // Retained state back into the engines before any cycle: a latched trip is tripped from cycle 0.
    await this.state?.load();
    for (const d of this.drivers) await d.start();
    this.eventSub = this.loop.cycles$.subscribe((r) => {
      this.logEvents(r);
      // Trips, resets and steps are what change the retained state; the write happens later, off the cycle.
      if (r.interlockEvents.length > 0 || r.sequenceEvents.length > 0) this.state?.request();
    });
    await this.http?.start(); // observes from the first cycle; a port in use is logged, the cell runs on
    // North (MQTT, OPC UA) in its worker: it sees the first cycle, builds the OPC UA address space
    // (seconds, off this thread) and listens after the first cycle. A part that cannot start is
    // logged and the cell runs without it; an absent broker never blocks start (it reconnects).
    const northReady = this.north?.start().catch((e: unknown) => {
      this.log.error({ err: errorMessage(e) }, "MQTT and OPC UA could not start: the cell runs without them");
    });
    this.startRealtime();
    this.loop.start();
    await northReady;
    this.summary.start(this.opts.summaryEveryMs ?? 0);
  }

  /**
   * SCHED_FIFO for this thread (the loop's) when the config asks for it; refused: logged, the cell runs on.
   * Node started without the daemon's flags: logged.
   */
  private startRealtime(): void {
    const missing = missingDaemonFlags();
    if (missing.length > 0) {
      this.log.info(
        { missing },
        `node was started without ${missing.join(" ")}, which the daemon runs with (systemd unit, npm start, the cellio command): the loop thread's GC pauses can be longer (src/infra/realtime.ts)`,
      );
    }
    const priority = this.loaded.model.cycle.realtimePriority;
    if (priority === undefined) return;
    this.realtime = applyRealtime(priority);
    if (this.realtime.applied) {
      this.log.info({ priority }, `loop thread runs under SCHED_FIFO at priority ${priority}`);
      if (!gcOnLoopThread()) {
        this.log.warn(
          `node runs without ${SINGLE_THREADED_GC}: a garbage collection on the real-time loop thread can wait for V8's helper threads at normal priority (tens of ms under load); start node with ${SINGLE_THREADED_GC} (the systemd unit and npm start do)`,
        );
      }
    } else this.log.warn({ priority, reason: this.realtime.reason }, `real-time priority refused, the loop runs at normal priority: ${this.realtime.reason ?? ""}`);
  }

  /** Interlock trips and resets, sequence steps, applied commands, mode switches and alarms: transitions only. */
  private logEvents(r: CycleResult): void {
    for (const e of r.interlockEvents) {
      const fields = { interlock: e.id, cycle: e.cycle, cause: e.cause };
      if (e.kind === "trip") this.log.warn(fields, `interlock ${e.id} tripped: ${e.cause}`);
      else this.log.info(fields, `interlock ${e.id} ${e.kind === "reset" ? "reset" : "cleared"}`);
    }
    for (const e of r.sequenceEvents) {
      const fields = { sequence: e.id, from: e.from, to: e.to, cycle: e.cycle, cause: e.cause };
      if (e.kind === "fault") this.log.warn(fields, `sequence ${e.id} fault: ${e.cause}`);
      else this.log.info(fields, `sequence ${e.id}: ${e.from} → ${e.to}`);
    }
    for (const c of r.commands) {
      const fields = { command: c.command, role: c.role, caller: c.caller, result: c.result };
      if (c.result.accepted) this.log.info(fields, `command ${c.command.kind} applied`);
      else this.log.warn(fields, `command ${c.command.kind} refused: ${c.result.reason}`);
    }
    for (const e of r.modeEvents) {
      const fields = { from: e.from, to: e.to, by: e.by, cycle: e.cycle, cause: e.cause };
      if (e.kind === "switch") this.log.warn(fields, `control mode ${e.from} → ${e.to} by ${e.by}`);
      else this.log.warn(fields, `manual permit lost (${e.cause}): every manual value cleared, outputs safe`);
    }
    for (const e of r.alarmEvents) {
      const fields = { alarm: e.id, cycle: e.cycle, cause: e.cause };
      if (e.kind === "raise") this.log.warn(fields, `alarm ${e.id}: ${e.cause}`);
      else this.log.info(fields, `alarm ${e.id} ${e.kind === "ack" ? e.cause : "cleared"}`);
    }
  }

  /** MQTT and OPC UA client counts for /metrics (a part not configured stays undefined). */
  northStats(): NorthStats {
    const s = this.north?.status;
    return {
      mqttConnected: this.loaded.config.mqtt ? s?.mqtt?.connected === true : undefined,
      opcuaSessions: this.loaded.config.opcua ? (s?.opcua?.sessions ?? 0) : undefined,
    };
  }

  /** Log the cycle summary line now (and start a new window). */
  logSummary(): void {
    this.summary.log();
  }

  /**
   * Stop: no more cycles, every output written to its safe value (bounded by
   * `timeoutMs`), then drivers stopped in reverse order.
   */
  async stop(timeoutMs = 2000): Promise<{ safeWritten: boolean }> {
    if (!this.started) return { safeWritten: true };
    this.started = false;
    // North first (MQTT: a retained explicit `offline`, then DISCONNECT; OPC UA: stop publishing and
    // taking commands), but not awaited here: the outputs go safe without waiting for a broker or a client.
    let outputsSafe: () => void = () => undefined;
    const outputsDone = new Promise<void>((resolve) => (outputsSafe = resolve));
    const northStopped = this.north?.stop(Math.min(1000, timeoutMs), outputsDone).catch((e: unknown) => {
      this.log.warn({ err: errorMessage(e) }, "MQTT / OPC UA stop failed");
    });
    const httpStopped = this.http?.stop();
    this.summary.stop();
    this.eventSub?.unsubscribe();
    this.loop.stop();
    dropRealtime(this.realtime);
    this.realtime = NOT_REQUESTED;
    const stateSaved = this.state?.flush(Math.min(1000, timeoutMs));
    const res = await this.loop.writeSafeOutputs(timeoutMs);
    outputsSafe(); // only now may a hung north worker be terminated
    if (res.ok) this.log.info("outputs written to their safe values");
    else this.log.error({ failed: res.failed }, "could not confirm safe outputs on every device");
    for (const d of [...this.drivers].reverse()) {
      try {
        await d.stop();
      } catch (e) {
        this.log.warn({ device: d.name, err: errorMessage(e) }, "driver stop failed");
      }
    }
    await northStopped;
    await httpStopped;
    await stateSaved;
    this.log.info("cell stopped");
    return { safeWritten: res.ok };
  }
}
