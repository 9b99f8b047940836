/**
 * The embedded broker (aedes, MQTT 3.1.1) for the demo and small cells:
 * nothing to install. It enforces the same rules the mosquitto ACL in
 * config/mosquitto/ does:
 *
 * - cellio itself logs in with a random per-process secret and is the only
 *   client that may publish under the prefix (state, status, replies...).
 * - Users in `embedded.users` log in with their password; anonymous clients
 *   only when `allow_anonymous` (default true: the demo on 127.0.0.1).
 * - Under the prefix, a user may publish only `<prefix>/cmd/<kind>/<own user
 *   name>`, not retained. Anything else under the prefix is refused and the
 *   client disconnected (MQTT 3.1.1 has no way to refuse one PUBLISH).
 *   Anonymous clients may not publish at all. Topics outside the prefix are
 *   free for authenticated users (their own dashboards' topics).
 * - Replies `<prefix>/reply/<user>/…` are delivered only to <user>, and
 *   command topics only to cellio, even to a `#` subscriber.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import net from "node:net";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import type { Logger } from "../../infra/logger.js";
import { parseCommandTopic, type Topics } from "./contract.js";

export interface EmbeddedBrokerOptions {
  readonly host: string;
  readonly port: number;
  readonly allowAnonymous: boolean;
  /** user → password (already read from the environment). */
  readonly users: ReadonlyMap<string, string>;
  readonly topics: Topics;
}

/** Return codes of CONNACK (MQTT 3.1.1): 4 bad user name or password, 5 not authorized. */
function authError(returnCode: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
}

function sameSecret(a: string, b: Buffer | undefined): boolean {
  if (b === undefined) return false;
  const x = Buffer.from(a);
  return x.length === b.length && timingSafeEqual(x, b);
}

export class EmbeddedBroker {
  /** cellio's own login on this broker. */
  readonly internal = { username: "cellio", password: randomBytes(24).toString("base64url") };
  private aedes: Aedes | undefined;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly usernames = new WeakMap<Client, string | undefined>();
  private boundPort = 0;

  constructor(
    private readonly o: EmbeddedBrokerOptions,
    private readonly log: Logger,
  ) {}

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.o.host.includes(":") ? `[${this.o.host}]` : this.o.host;
    return `mqtt://${host === "0.0.0.0" ? "127.0.0.1" : host}:${this.boundPort}`;
  }

  async start(): Promise<void> {
    const { topics } = this.o;
    const prefix = `${topics.prefix}/`;
    const aedes = await Aedes.createBroker({
      drainTimeout: 10_000,
      authenticate: (client, username, password, done) => {
        if (username === this.internal.username) {
          if (sameSecret(this.internal.password, password)) return this.accept(client, username, done);
          return done(authError(4, "bad user name or password"), false);
        }
        if (username === undefined || username === "") {
          if (this.o.allowAnonymous) return this.accept(client, undefined, done);
          return done(authError(5, "anonymous clients are not allowed"), false);
        }
        const expected = this.o.users.get(username);
        if (expected !== undefined && sameSecret(expected, password)) return this.accept(client, username, done);
        this.log.warn({ user: username, client: client.id }, "MQTT login refused");
        return done(authError(4, "bad user name or password"), false);
      },
      authorizePublish: (client, packet, done) => {
        if (client === null) return done(null); // the broker's own ($SYS)
        const user = this.usernames.get(client);
        if (user === this.internal.username) return done(null);
        const denied = (why: string): void => {
          this.log.warn({ user, client: client.id, topic: packet.topic }, `MQTT publish refused: ${why}`);
          done(new Error(why));
        };
        if (user === undefined) return denied("anonymous clients may only read");
        if (!packet.topic.startsWith(prefix) && packet.topic !== topics.prefix) return done(null);
        const cmd = parseCommandTopic(topics, packet.topic);
        if (cmd === undefined || cmd.user !== user) return denied(`only ${topics.prefix}/cmd/<kind>/${user} may be published under ${topics.prefix}`);
        if (packet.retain) return denied("commands must not be retained");
        return done(null);
      },
      authorizeForward: (client, packet) => {
        const topic = packet.topic;
        if (!topic.startsWith(prefix)) return packet;
        const user = this.usernames.get(client);
        if (user === this.internal.username) return packet;
        const rest = topic.slice(prefix.length);
        if (rest.startsWith("cmd/")) return null;
        if (rest.startsWith("reply/")) {
          const owner = rest.split("/")[1];
          return owner !== undefined && owner === user ? packet : null;
        }
        return packet;
      },
    });
    aedes.on("clientError", (client, err) => this.log.debug({ client: client.id, err: err.message }, "MQTT client error"));
    this.aedes = aedes;
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const addr = server.address();
    this.boundPort = typeof addr === "object" && addr !== null ? addr.port : this.o.port;
    this.log.info({ host: this.o.host, port: this.boundPort }, "embedded MQTT broker listening (MQTT 3.1.1)");
  }

  private accept(client: Client, username: string | undefined, done: (e: AuthenticateError | null, ok: boolean | null) => void): void {
    this.usernames.set(client, username);
    done(null, true);
  }

  async stop(): Promise<void> {
    const server = this.server;
    const aedes = this.aedes;
    this.server = undefined;
    this.aedes = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of this.sockets) s.destroy();
      await closed;
    }
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}
