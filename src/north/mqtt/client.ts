/**
 * cellio's MQTT connection (mqtt.js): Last Will, reconnects, sessions and
 * the command subscription.
 *
 * - The Will is `<prefix>/status` {state:"offline", reason:"connection lost"},
 *   retained: the broker publishes it when cellio dies or goes silent for
 *   1.5 × keepalive.
 * - The first connect of a process starts clean (commands queued for a
 *   previous run are dropped). Reconnects ask to resume the session (MQTT 5:
 *   kept `session_expiry_s`), so a short network blip loses no command.
 * - mqtt.js does not resubscribe a resumed session, and a broker that
 *   restarted without persistence has no session at all: on every CONNACK
 *   with sessionPresent false we subscribe the command topics again
 *   (`resubscribe: false`: mqtt.js's own bookkeeping is off, this is the one
 *   place that decides).
 * - Nothing is ever handed to mqtt.js while disconnected (its offline queue
 *   is unbounded); the Outbox upstream holds the latest per topic instead.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from "mqtt";
import type { Logger } from "../../infra/logger.js";
import { CellioError, errorMessage } from "../../infra/errors.js";
import type { OutMessage, QoS } from "./publisher.js";

export interface ConnectionOptions {
  readonly url: string;
  readonly protocolVersion: 4 | 5;
  readonly clientId: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly keepaliveS: number;
  readonly reconnectMs: number;
  readonly sessionExpiryS: number;
  readonly tls?: { readonly ca?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined; readonly rejectUnauthorized: boolean } | undefined;
  /** Directory relative TLS file names are resolved against (the config file's). */
  readonly baseDir: string;
  readonly will: { readonly topic: string; readonly payload: string; readonly qos: QoS };
  readonly subscriptions: readonly { readonly topic: string; readonly qos: QoS }[];
}

export interface ConnectionHandlers {
  /** After CONNACK and (when needed) the command subscription: publish birth and state now. */
  onOnline(info: { sessionPresent: boolean; reconnect: boolean }): void;
  onOffline(): void;
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void;
}

/** mqtt.js client options for these connection options (exported for tests). */
export function clientOptions(o: ConnectionOptions): IClientOptions {
  const file = (f: string | undefined, field: string): Buffer | undefined => {
    if (f === undefined) return undefined;
    const full = path.resolve(o.baseDir, f);
    try {
      return readFileSync(full);
    } catch (e) {
      throw new CellioError("CELLIO_ERR_CONFIG_IO", `mqtt.tls.${field}: cannot read ${full}: ${errorMessage(e)}`, { field: `mqtt.tls.${field}`, file: full });
    }
  };
  const v5 = o.protocolVersion === 5;
  return {
    protocolVersion: o.protocolVersion,
    clientId: o.clientId,
    username: o.username,
    password: o.password,
    keepalive: o.keepaliveS,
    reconnectPeriod: o.reconnectMs,
    connectTimeout: Math.max(2000, o.keepaliveS * 1000),
    clean: true,
    resubscribe: false,
    queueQoSZero: false,
    ...(v5 ? { properties: { sessionExpiryInterval: o.sessionExpiryS } } : {}),
    will: { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: o.will.qos, retain: true },
    ...(o.tls
      ? { ca: file(o.tls.ca, "ca"), cert: file(o.tls.cert, "cert"), key: file(o.tls.key, "key"), rejectUnauthorized: o.tls.rejectUnauthorized }
      : {}),
  };
}

export class MqttConnection {
  reconnects = 0;
  /** MQTT 5: the broker's Receive Maximum from the last CONNACK (QoS 1 publishes it accepts in flight); 65535 otherwise. */
  receiveMaximum = 65_535;
  private client: MqttClient | undefined;
  private online = false;
  private connects = 0;
  private lastError = "";

  constructor(
    private readonly o: ConnectionOptions,
    private readonly h: ConnectionHandlers,
    private readonly log: Logger,
  ) {}

  /** Publishing is possible now (connected and subscribed). */
  get connected(): boolean {
    return this.online && this.client?.connected === true;
  }

  /** Start connecting; never waits for the broker (cellio runs without one) and never throws for an absent broker. */
  start(): void {
    if (this.client) return;
    const options = clientOptions(this.o);
    if (this.o.tls?.rejectUnauthorized === false) {
      this.log.warn({ url: this.o.url }, "the broker's TLS certificate is NOT verified (mqtt.tls.reject_unauthorized: false): a man in the middle would get cellio's password");
    }
    const c = mqtt.connect(this.o.url, options);
    this.client = c;
    c.on("connect", (connack) => this.onConnect(c, connack));
    c.on("close", () => this.onClose());
    c.on("error", (e) => {
      const msg = errorMessage(e);
      if (msg !== this.lastError) this.log.warn({ err: msg }, "MQTT connection error");
      this.lastError = msg;
    });
    c.on("message", (topic, payload, packet) => this.h.onMessage(topic, payload, packet));
  }

  private onConnect(c: MqttClient, connack: IConnackPacket): void {
    const reconnect = this.connects > 0;
    this.connects++;
    if (reconnect) this.reconnects++;
    // From now on ask to resume the session (short blips keep queued commands).
    c.options.clean = false;
    const sessionPresent = connack.sessionPresent;
    this.receiveMaximum = connack.properties?.receiveMaximum ?? 65_535;
    this.log.info({ sessionPresent, reconnect, url: this.o.url }, reconnect ? "MQTT reconnected" : "MQTT connected");
    this.lastError = "";
    const online = (): void => {
      this.online = true;
      this.h.onOnline({ sessionPresent, reconnect });
    };
    if (sessionPresent || this.o.subscriptions.length === 0) return online();
    const subs = Object.fromEntries(this.o.subscriptions.map((s) => [s.topic, { qos: s.qos }]));
    c.subscribe(subs, (err, granted) => {
      if (err) {
        this.log.error({ err: errorMessage(err) }, "MQTT subscribe to the command topics failed: commands will not be received");
      } else {
        const refused = (granted ?? []).filter((g) => g.qos === 128);
        if (refused.length > 0) this.log.error({ topics: refused.map((g) => g.topic) }, "the broker refused the command subscription (ACL?)");
      }
      if (c.connected) online();
    });
  }

  private onClose(): void {
    if (!this.online) return;
    this.online = false;
    this.log.warn("MQTT disconnected: state is kept (latest per topic) until the broker is back");
    this.h.onOffline();
  }

  /** Publish now (only while connected). `done` is called with the outcome (QoS 1: on PUBACK). */
  publish(m: OutMessage, done: (err?: Error) => void, properties?: IPublishPacket["properties"]): boolean {
    const c = this.client;
    if (!c || !this.connected) return false;
    c.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain, ...(properties ? { properties } : {}) }, (err) => done(err));
    return true;
  }

  /**
   * Clean shutdown: publish `final` (the explicit offline) and wait for it at
   * most `timeoutMs`, then DISCONNECT (so the broker does NOT publish the
   * Will; MQTT 5: and drops the session).
   */
  async stop(final: OutMessage | undefined, timeoutMs: number): Promise<void> {
    const c = this.client;
    if (!c) return;
    this.client = undefined;
    this.online = false;
    if (final && c.connected) {
      await withTimeout(
        new Promise<void>((resolve) => c.publish(final.topic, final.payload, { qos: final.qos, retain: final.retain }, () => resolve())),
        timeoutMs,
      );
    }
    const opts = this.o.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {};
    await withTimeout(new Promise<void>((resolve) => c.end(false, opts, () => resolve())), timeoutMs);
    if (!c.disconnected) await new Promise<void>((resolve) => c.end(true, {}, () => resolve()));
    c.removeAllListeners();
    c.on("error", () => undefined);
  }

  /** Test hook: drop the TCP connection without DISCONNECT, as a crash or cable pull would (the broker publishes the Will). */
  dropConnection(): void {
    this.client?.stream?.destroy();
  }
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    void p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
