/**
 * MqttService: the MQTT component of cellio (lifecycle: the constructor only
 * stores; start()/stop() do the work).
 *
 * Never touches the loop: the cycle subscription only keeps a reference to
 * the latest cycle and copies its (rare) events; a timer every
 * `publish_interval_ms` starts comparing that image with what was last
 * queued, and the differences are published with at most `max_inflight` QoS 1
 * messages awaiting PUBACK. All of that work runs in slices of at most
 * SLICE_MS, one setImmediate apart, so the loop's timers always get their
 * turn: publishing 10,000 messages a second in one synchronous burst would
 * hold the thread for tens of milliseconds. While the broker is away the
 * Outbox keeps the latest message per topic; on every (re)connect: command
 * subscription (when the session is gone), birth, then ALL retained state
 * again.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Subscription } from "rxjs";
import type { IPublishPacket } from "mqtt";
import { systemClock, type Clock } from "../../infra/clock.js";
import type { Logger } from "../../infra/logger.js";
import { errorMessage } from "../../infra/errors.js";
import { EmbeddedBroker } from "./broker.js";
import { MqttConnection, type ConnectionOptions } from "./client.js";
import { MqttCommandHandler, type CommandReply } from "./commands.js";
import type { MqttConfig } from "./config.js";
import {
  CONTRACT_VERSION,
  defaultPrefix,
  iso,
  topics as buildTopics,
  type BirthPayload,
  type DiagnosticsPayload,
  type OfflinePayload,
  type Topics,
} from "./contract.js";
import type { CellView, CommandPort, CycleView } from "./ports.js";
import { Outbox, StatePublisher, type OutMessage } from "./publisher.js";

export interface MqttServiceOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  /** cellio's version, in the birth payload. */
  readonly version: string;
  /** Hash of the loaded config, in the birth payload (configHash()). */
  readonly configHash: string;
  /** Directory that relative TLS file names are resolved against. */
  readonly baseDir?: string;
  /** Environment to read password_env variables from (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** cellio's version from its package.json (found upward from this file, in src/ or dist/src/). */
export function cellioVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "cellio" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not here: one level up
    }
    dir = path.dirname(dir);
  }
  return "unknown";
}

/** Short stable hash of a config object (sha256 of its JSON, 12 hex digits). */
export function configHash(config: unknown): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 12);
}

/** Longest stretch of MQTT work (collecting, publishing) before yielding to the event loop. */
const SLICE_MS = 1;

export interface MqttCounters {
  published: number;
  publishErrors: number;
}

export class MqttService {
  readonly topics: Topics;
  readonly outbox: Outbox;
  readonly counters: MqttCounters = { published: 0, publishErrors: 0 };
  readonly commands: MqttCommandHandler;
  private readonly publisher: StatePublisher;
  private readonly clock: Clock;
  private readonly log: Logger;
  private broker: EmbeddedBroker | undefined;
  private conn: MqttConnection | undefined;
  private cycleSub: Subscription | undefined;
  private latest: CycleView | undefined;
  private pace: NodeJS.Timeout | undefined;
  private diag: NodeJS.Timeout | undefined;
  private inflight = 0;
  /** Points being compared, resumable across slices. */
  private job: { c: CycleView; next: number; all: boolean } | undefined;
  private pumpQueued = false;
  /** Bumped on every disconnect: PUBACKs of an older connection are not counted against the new one. */
  private generation = 0;
  private startedWall = 0;
  private startedMono = 0;
  private running = false;

  constructor(
    readonly config: MqttConfig,
    private readonly view: CellView,
    commandPort: CommandPort,
    private readonly opts: MqttServiceOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log.child({ component: "mqtt" });
    this.topics = buildTopics(config.prefix ?? defaultPrefix(view.cellId));
    this.outbox = new Outbox(config.event_buffer);
    this.publisher = new StatePublisher({
      topics: this.topics,
      points: view.points,
      cellId: view.cellId,
      stateQos: config.qos.state,
      eventQos: config.qos.events,
    });
    this.commands = new MqttCommandHandler({
      topics: this.topics,
      roles: config.roles,
      port: commandPort,
      rateLimit: { burst: config.rate_limit.burst, perSecond: config.rate_limit.per_second },
      clock: this.clock,
      log: this.log,
    });
  }

  /** The broker URL in use (the embedded broker's once started). */
  get url(): string | undefined {
    return this.config.url ?? this.broker?.url;
  }

  get connected(): boolean {
    return this.conn?.connected === true;
  }

  get reconnects(): number {
    return this.conn?.reconnects ?? 0;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.startedWall = this.clock.wall();
    this.startedMono = this.clock.now();
    const c = this.config;
    const env = this.opts.env ?? process.env;
    let url: string;
    let username: string | undefined;
    let password: string | undefined;
    if (c.broker === "embedded") {
      const users = new Map<string, string>();
      for (const [user, u] of Object.entries(c.embedded.users)) {
        const pw = env[u.password_env];
        if (pw === undefined || pw === "") this.log.warn({ user, env: u.password_env }, "no password in the environment: this user cannot log in");
        else users.set(user, pw);
      }
      this.broker = new EmbeddedBroker(
        { host: c.embedded.host, port: c.embedded.port, allowAnonymous: c.embedded.allow_anonymous, users, topics: this.topics },
        this.log.child({ component: "mqtt-broker" }),
      );
      try {
        await this.broker.start();
      } catch (e) {
        this.broker = undefined;
        this.running = false;
        throw e;
      }
      url = this.broker.url;
      username = this.broker.internal.username;
      password = this.broker.internal.password;
    } else {
      url = c.url!; // the schema demands url when broker is not embedded
      username = c.username;
      password = c.password_env === undefined ? undefined : env[c.password_env];
      if (c.password_env !== undefined && password === undefined) this.log.warn({ env: c.password_env }, "MQTT password variable is not set");
    }
    this.cycleSub = this.view.cycles$.subscribe((cy) => this.onCycle(cy));
    const options: ConnectionOptions = {
      url,
      protocolVersion: c.protocol_version ?? (c.broker === "embedded" ? 4 : 5),
      clientId: c.client_id ?? `cellio-${this.view.cellId}`,
      username,
      password,
      keepaliveS: c.keepalive_s,
      reconnectMs: c.reconnect_ms,
      sessionExpiryS: c.session_expiry_s,
      tls: c.tls ? { ca: c.tls.ca, cert: c.tls.cert, key: c.tls.key, rejectUnauthorized: c.tls.reject_unauthorized } : undefined,
      baseDir: this.opts.baseDir ?? process.cwd(),
      will: { topic: this.topics.status, payload: JSON.stringify(this.offline("connection lost")), qos: c.qos.state },
      subscriptions: [{ topic: this.topics.commandFilter, qos: c.qos.commands }],
    };
    this.conn = new MqttConnection(
      options,
      {
        onOnline: () => this.onOnline(),
        onOffline: () => this.onOffline(),
        onMessage: (topic, payload, packet) => this.onMessage(topic, payload, packet),
      },
      this.log,
    );
    try {
      this.conn.start(); // throws on unreadable TLS files (CELLIO_ERR_CONFIG_IO, naming mqtt.tls.<field>)
    } catch (e) {
      this.cycleSub.unsubscribe();
      this.conn = undefined;
      await this.broker?.stop();
      this.broker = undefined;
      this.running = false;
      throw e;
    }
    this.pace = setInterval(() => this.tick(), c.publish_interval_ms);
    this.pace.unref();
    this.diag = setInterval(() => this.queueDiagnostics(), c.diagnostics_interval_s * 1000);
    this.diag.unref();
  }

  /**
   * Clean stop: publish an explicit retained `offline` (what is still queued is dropped),
   * then DISCONNECT (no Will), then stop the embedded broker. Bounded by `timeoutMs`.
   */
  async stop(timeoutMs = 1000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.pace);
    clearInterval(this.diag);
    this.cycleSub?.unsubscribe();
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      try {
        const final: OutMessage = {
          topic: this.topics.status,
          payload: JSON.stringify(this.offline("shutdown")),
          retain: true,
          qos: this.config.qos.state,
        };
        await conn.stop(final, timeoutMs);
      } catch (e) {
        this.log.warn({ err: errorMessage(e) }, "MQTT stop failed");
      }
    }
    await this.broker?.stop();
    this.broker = undefined;
    this.log.info("MQTT stopped");
  }

  /** Test hook: lose the connection as a crash would (the broker publishes the Will); mqtt.js reconnects. */
  dropConnection(): void {
    this.conn?.dropConnection();
  }

  private onCycle(c: CycleView): void {
    this.latest = c;
    const il = c.interlockEvents;
    const sq = c.sequenceEvents;
    const cmd = c.commands;
    // Transitions only (rare): formatted here so none is missed between ticks; the Outbox bounds them.
    if ((il && il.length > 0) || (sq && sq.length > 0) || (cmd && cmd.length > 0)) {
      this.publisher.collectEvents(il ?? [], sq ?? [], this.outbox, cmd ?? [], c.wallMs);
    }
  }

  /** One pacing step: note device and mode transitions (cheap), start comparing the latest image. */
  private tick(): void {
    const c = this.latest;
    if (c === undefined) return;
    this.publisher.collectTransitions(this.view.devices(), c.mode, c.wallMs, this.outbox);
    // A comparison still running (a slow machine) finishes first; the next tick takes the latest image.
    this.job ??= { c, next: 0, all: false };
    this.schedulePump();
  }

  private onOnline(): void {
    // Birth first, then every retained topic again: a broker that restarted
    // without persistence has none of it, and a resumed one gets fresh state.
    this.send({ topic: this.topics.status, payload: JSON.stringify(this.birth()), retain: true, qos: this.config.qos.state });
    this.outbox.clearState();
    if (this.latest) {
      this.publisher.collectTransitions(this.view.devices(), this.latest.mode, this.latest.wallMs, this.outbox);
      this.job = { c: this.latest, next: 0, all: true };
    }
    this.queueDiagnostics();
  }

  /** QoS 1 publishes allowed in flight: ours, and never more than the broker's Receive Maximum (MQTT 5 3.3.4-7). */
  private get window(): number {
    return Math.min(this.config.max_inflight, this.conn?.receiveMaximum ?? 65_535);
  }

  private onOffline(): void {
    this.generation++;
    this.inflight = 0;
  }

  private schedulePump(): void {
    if (this.pumpQueued || !this.running) return;
    this.pumpQueued = true;
    setImmediate(() => this.pump());
  }

  /** Work for at most SLICE_MS: finish comparing, then publish; come back later for the rest. */
  private pump(): void {
    this.pumpQueued = false;
    if (!this.running) return;
    const until = this.clock.now() + SLICE_MS;
    const more = (): boolean => this.clock.now() < until;
    const job = this.job;
    if (job) {
      job.next = this.publisher.collectPoints(job.c, this.outbox, job.all, job.next, more);
      if (job.next >= this.view.points.length) {
        this.publisher.collectOthers(this.view.interlocks?.() ?? job.c.interlocks ?? [], this.view.sequences?.() ?? job.c.sequences ?? [], job.c.wallMs, this.outbox, job.all);
        this.job = undefined;
      }
    }
    const conn = this.conn;
    if (conn?.connected) {
      const window = this.window;
      while (this.inflight < window && this.outbox.size > 0 && more()) {
        const batch = this.outbox.take(Math.min(16, window - this.inflight));
        for (let i = 0; i < batch.length; i++) {
          if (!this.send(batch[i]!)) {
            // Lost the connection mid-batch: put the rest back (newer values queued since win).
            for (let j = i; j < batch.length; j++) this.requeue(batch[j]!);
            return;
          }
        }
      }
    }
    if (this.job !== undefined || (conn?.connected && this.outbox.size > 0 && this.inflight < this.window)) this.schedulePump();
  }

  private requeue(m: OutMessage): void {
    if (m.retain) {
      if (!this.outbox.has(m.topic)) this.outbox.putState(m);
    } else this.outbox.putEvent(m);
  }

  private send(m: OutMessage, properties?: IPublishPacket["properties"]): boolean {
    const conn = this.conn;
    if (!conn) return false;
    const gen = this.generation;
    const counted = m.qos > 0;
    if (counted) this.inflight++;
    const ok = conn.publish(
      m,
      (err) => {
        if (err) this.counters.publishErrors++;
        else this.counters.published++;
        if (counted && gen === this.generation) {
          this.inflight--;
          if (this.outbox.size > 0) this.schedulePump();
        }
      },
      properties,
    );
    if (!ok && counted) this.inflight--;
    return ok;
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    let reply: CommandReply | undefined;
    try {
      reply = this.commands.handle({
        topic,
        payload,
        retain: packet.retain,
        responseTopic: packet.properties?.responseTopic,
        correlationData: packet.properties?.correlationData,
      });
    } catch (e) {
      this.log.error({ err: errorMessage(e), topic }, "command handling failed");
      return;
    }
    if (!reply) return;
    const m: OutMessage = { topic: reply.topic, payload: JSON.stringify(reply.payload), retain: false, qos: this.config.qos.commands };
    if (!this.send(m, reply.correlationData ? { correlationData: reply.correlationData } : undefined)) {
      this.log.warn({ topic: reply.topic }, "command reply not sent: MQTT disconnected");
    }
  }

  private birth(): BirthPayload {
    return {
      state: "online",
      version: this.opts.version,
      config_hash: this.opts.configHash,
      started: iso(this.startedWall) ?? "",
      contract: CONTRACT_VERSION,
    };
  }

  private offline(reason: OfflinePayload["reason"]): OfflinePayload {
    const base = { state: "offline" as const, reason, started: iso(this.startedWall) ?? "" };
    return reason === "shutdown" ? { ...base, ts: iso(this.clock.wall()) } : base;
  }

  private queueDiagnostics(): void {
    const c = this.latest;
    const loop = this.view.loop();
    const devices: Record<string, { state: string; error: string }> = {};
    for (const d of this.view.devices()) devices[d.name] = { state: d.state, error: d.lastError };
    const r = (x: number): number => Math.round(x * 1000) / 1000;
    const d: DiagnosticsPayload = {
      ts: iso(this.clock.wall()),
      uptime_s: Math.round((this.clock.now() - this.startedMono) / 1000),
      mode: c?.mode ?? "starting",
      cycle: c?.cycle ?? 0,
      period_ms: this.view.periodMs,
      loop: loop
        ? {
            cycles: loop.cycles,
            skipped: loop.skipped,
            overruns: loop.overruns,
            input_misses: loop.inputMisses,
            lateness_p99_ms: r(loop.latenessP99Ms),
            lateness_max_ms: r(loop.latenessMaxMs),
            cycle_p99_ms: r(loop.cycleP99Ms),
          }
        : null,
      devices,
      mqtt: {
        published: this.counters.published,
        reconnects: this.reconnects,
        queued: this.outbox.size,
        dropped_events: this.outbox.droppedEvents,
        commands_accepted: this.commands.accepted,
        commands_rejected: this.commands.rejected,
      },
    };
    this.outbox.putState({ topic: this.topics.diagnostics, payload: JSON.stringify(d), retain: true, qos: this.config.qos.state });
    this.schedulePump();
  }
}
