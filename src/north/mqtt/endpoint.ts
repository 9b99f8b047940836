/**
 * Where the MQTT service (service.ts) connects and as whom, from its config:
 * the embedded broker with its users' passwords read from the environment,
 * cellio's login (its own secret on the embedded broker, else the configured
 * user and password variable) and the connection options (protocol, client
 * id, TLS, the Will, the command subscription).
 */
import type { Logger } from "../../infra/logger.js";
import { EmbeddedBroker } from "./broker.js";
import type { ConnectionOptions } from "./client.js";
import type { MqttConfig } from "./config.js";
import type { Topics } from "./contract.js";

export type Env = Readonly<Record<string, string | undefined>>;

/** Where cellio connects and as whom. */
export interface Login {
  readonly url: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
}

/** The embedded broker of `c.embedded` (not started); a user whose password variable is empty or unset cannot log in (warned). */
export function embeddedBroker(c: MqttConfig, topics: Topics, env: Env, log: Logger): EmbeddedBroker {
  const users = new Map<string, string>();
  for (const [user, u] of Object.entries(c.embedded.users)) {
    const pw = env[u.password_env];
    if (pw === undefined || pw === "") log.warn({ user, env: u.password_env }, "no password in the environment: this user cannot log in");
    else users.set(user, pw);
  }
  return new EmbeddedBroker(
    { host: c.embedded.host, port: c.embedded.port, allowAnonymous: c.embedded.allow_anonymous, users, topics },
    log.child({ component: "mqtt-broker" }),
  );
}

/** cellio's login: on the started embedded `broker` its own secret, else the configured url, user and password variable (warned when unset). */
export function loginOf(c: MqttConfig, broker: EmbeddedBroker | undefined, env: Env, log: Logger): Login {
  if (broker) return { url: broker.url, username: broker.internal.username, password: broker.internal.password };
  const password = c.password_env === undefined ? undefined : env[c.password_env];
  if (c.password_env !== undefined && password === undefined) log.warn({ env: c.password_env }, "MQTT password variable is not set");
  return { url: c.url!, username: c.username, password }; // the schema demands url when broker is not embedded
}

export interface ConnectionContext {
  readonly cellId: string;
  readonly topics: Topics;
  /** The Will's payload (retained on the status topic when the connection is lost). */
  readonly willPayload: string;
  /** Directory that relative TLS file names are resolved against. */
  readonly baseDir: string;
}

/** The connection options for `c` and `login`: MQTT 3.1.1 on the embedded broker and 5 elsewhere unless configured. */
export function connectionOptions(c: MqttConfig, login: Login, x: ConnectionContext): ConnectionOptions {
  return {
    url: login.url,
    protocolVersion: c.protocol_version ?? (c.broker === "embedded" ? 4 : 5),
    clientId: c.client_id ?? `cellio-${x.cellId}`,
    username: login.username,
    password: login.password,
    keepaliveS: c.keepalive_s,
    reconnectMs: c.reconnect_ms,
    sessionExpiryS: c.session_expiry_s,
    tls: c.tls ? { ca: c.tls.ca, cert: c.tls.cert, key: c.tls.key, rejectUnauthorized: c.tls.reject_unauthorized } : undefined,
    baseDir: x.baseDir,
    will: { topic: x.topics.status, payload: x.willPayload, qos: c.qos.state },
    subscriptions: [{ topic: x.topics.commandFilter, qos: c.qos.commands }],
  };
}
