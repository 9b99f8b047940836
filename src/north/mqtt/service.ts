/**
 * MqttService: the MQTT component of cellio (lifecycle: the constructor only
 * stores; start()/stop() do the work).
 *
 * Never touches the loop: the cycle subscription only keeps a reference to
 * the latest cycle and copies its (rare) events; every `publish_interval_ms`
 * the PublishPump (pump.ts) compares that image with what was last queued and
 * publishes the differences, in slices. While the broker is away the Outbox
 * keeps the latest message per topic; on every (re)connect: command
 * subscription (when the session is gone), birth, then ALL retained state.
 * Where it connects and as whom (the embedded broker, the login, the
 * connection options) follows from the config in endpoint.ts.
 */
import type { Subscription } from "rxjs";
import type { IPublishPacket } from "mqtt";
import { systemClock, type Clock } from "../../infra/clock.js";
import type { Logger } from "../../infra/logger.js";
import { errorMessage } from "../../infra/errors.js";
import type { EmbeddedBroker } from "./broker.js";
import { MqttConnection } from "./client.js";
import { MqttCommandHandler, type CommandReply } from "./commands.js";
import type { MqttConfig } from "./config.js";
import { connectionOptions, embeddedBroker, loginOf } from "./endpoint.js";
import { defaultPrefix, topics as buildTopics, type OfflinePayload, type Topics } from "./contract.js";
import type { CellView, CommandPort, CycleView } from "./ports.js";
import { Outbox, StatePublisher, type OutMessage } from "./publisher.js";
import { PublishPump, type MqttCounters } from "./pump.js";
import { birthPayload, diagnosticsPayload, offlinePayload } from "./status.js";

export { cellioVersion, configHash } from "./identity.js";
export type { MqttCounters } from "./pump.js";

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

export class MqttService {
  readonly topics: Topics;
  readonly outbox: Outbox;
  readonly counters: MqttCounters = { published: 0, publishErrors: 0 };
  readonly commands: MqttCommandHandler;
  private readonly publisher: StatePublisher;
  private readonly pump: PublishPump;
  private readonly clock: Clock;
  private readonly log: Logger;
  private broker: EmbeddedBroker | undefined;
  private conn: MqttConnection | undefined;
  private cycleSub: Subscription | undefined;
  private latest: CycleView | undefined;
  private pace: NodeJS.Timeout | undefined;
  private diag: NodeJS.Timeout | undefined;
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
    this.pump = new PublishPump({
      view,
      outbox: this.outbox,
      publisher: this.publisher,
      clock: this.clock,
      counters: this.counters,
      maxInflight: config.max_inflight,
      conn: () => this.conn,
      running: () => this.running,
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
    const broker = c.broker === "embedded" ? embeddedBroker(c, this.topics, env, this.log) : undefined;
    if (broker) {
      this.broker = broker;
      try {
        await broker.start();
      } catch (e) {
        this.broker = undefined;
        this.running = false;
        throw e;
      }
    }
    const login = loginOf(c, broker, env, this.log);
    this.cycleSub = this.view.cycles$.subscribe((cy) => this.onCycle(cy));
    const options = connectionOptions(c, login, {
      cellId: this.view.cellId,
      topics: this.topics,
      willPayload: JSON.stringify(this.offline("connection lost")),
      baseDir: this.opts.baseDir ?? process.cwd(),
    });
    this.conn = new MqttConnection(
      options,
      {
        onOnline: () => this.onOnline(),
        onOffline: () => this.pump.disconnected(),
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
    const md = c.modeEvents;
    // Transitions only (rare): formatted here so none is missed between ticks; the Outbox bounds them.
    // A switch first: it is why sequences reset in the same cycle.
    if (md && md.length > 0) this.publisher.collectModeEvents(md, this.outbox);
    if ((il && il.length > 0) || (sq && sq.length > 0) || (cmd && cmd.length > 0)) {
      this.publisher.collectEvents(il ?? [], sq ?? [], this.outbox, cmd ?? [], c.wallMs);
    }
  }

  /** One pacing step: note device and mode transitions (cheap), start comparing the latest image. */
  private tick(): void {
    const c = this.latest;
    if (c === undefined) return;
    this.publisher.collectTransitions(this.view.devices(), c.mode, c.wallMs, this.outbox);
    this.pump.compare(c, false);
  }

  private onOnline(): void {
    // Birth first, then every retained topic again: a broker that restarted
    // without persistence has none of it, and a resumed one gets fresh state.
    const birth = birthPayload(this.opts.version, this.opts.configHash, this.startedWall);
    this.pump.send({ topic: this.topics.status, payload: JSON.stringify(birth), retain: true, qos: this.config.qos.state });
    this.outbox.clearState();
    if (this.latest) {
      this.publisher.collectTransitions(this.view.devices(), this.latest.mode, this.latest.wallMs, this.outbox);
      this.pump.compare(this.latest, true);
    }
    this.queueDiagnostics();
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
    if (!this.pump.send(m, reply.correlationData ? { correlationData: reply.correlationData } : undefined)) {
      this.log.warn({ topic: reply.topic }, "command reply not sent: MQTT disconnected");
    }
  }

  private offline(reason: OfflinePayload["reason"]): OfflinePayload {
    return offlinePayload(reason, this.startedWall, this.clock.wall());
  }

  private queueDiagnostics(): void {
    const d = diagnosticsPayload({
      view: this.view,
      latest: this.latest,
      nowWall: this.clock.wall(),
      uptimeMs: this.clock.now() - this.startedMono,
      mqtt: {
        published: this.counters.published,
        reconnects: this.reconnects,
        queued: this.outbox.size,
        dropped_events: this.outbox.droppedEvents + (this.view.droppedEvents?.() ?? 0),
        commands_accepted: this.commands.accepted,
        commands_rejected: this.commands.rejected,
      },
    });
    this.outbox.putState({ topic: this.topics.diagnostics, payload: JSON.stringify(d), retain: true, qos: this.config.qos.state });
    this.pump.schedule();
  }
}
