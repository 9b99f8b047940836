/**
 * The top-level `mqtt:` block of the cell config (one zod schema: types,
 * validation and JSON Schema). See README.md in this folder for every field.
 *
 * Either `broker: embedded` (aedes in this process, MQTT 3.1.1, the demo
 * default) or `url: mqtt://host:1883` / `mqtts://host:8883` (mosquitto, EMQX,
 * HiveMQ; MQTT 5 by default).
 */
import { z } from "zod";

/** MQTT user names as they appear in topics: one topic level, no wildcards. */
export const USERNAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** Topic prefix: levels of letters, digits, _ . -, no wildcards, no leading or trailing slash. */
export const PREFIX_RE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const URL_RE = /^mqtts?:\/\/[^\s/@]+(:[0-9]{1,5})?\/?$/;

const username = z.string().regex(USERNAME_RE, "MQTT user names: 1-64 letters, digits, _ . - (they name reply and command topics)");
const envName = z.string().regex(ENV_RE, "an environment variable name");
const qos = z.union([z.literal(0), z.literal(1)]);

export const mqttRoleSchema = z.enum(["viewer", "operator", "engineer"]);

export const embeddedBrokerSchema = z
  .object({
    host: z.string().min(1).default("127.0.0.1").describe("Address the embedded broker listens on"),
    port: z.number().int().min(0).max(65535).default(1883).describe("TCP port (0: any free port)"),
    allow_anonymous: z
      .boolean()
      .default(true)
      .describe("Clients without a user name may connect and read (never command)"),
    users: z
      .record(username, z.object({ password_env: envName.describe("Environment variable holding the password") }).strict())
      .default({})
      .describe("Users the embedded broker authenticates; their role comes from mqtt.roles"),
  })
  .strict();

export const mqttConfigSchema = z
  .object({
    broker: z.literal("embedded").optional().describe("Run the embedded broker (aedes, MQTT 3.1.1) in this process"),
    url: z.string().regex(URL_RE, "mqtt://host:port or mqtts://host:port").optional().describe("External broker"),
    embedded: embeddedBrokerSchema.default({ host: "127.0.0.1", port: 1883, allow_anonymous: true, users: {} }),
    client_id: z.string().regex(USERNAME_RE, "client id: 1-64 letters, digits, _ . -").optional().describe("Default cellio-<cell id>"),
    username: username.optional().describe("cellio's own user name on an external broker"),
    password_env: envName.optional().describe("Environment variable holding cellio's own password"),
    tls: z
      .object({
        ca: z.string().optional().describe("CA certificate file (PEM), relative to the config file"),
        cert: z.string().optional().describe("Client certificate file (PEM)"),
        key: z.string().optional().describe("Client key file (PEM)"),
        reject_unauthorized: z.boolean().default(true).describe("Verify the broker's certificate"),
      })
      .strict()
      .optional(),
    keepalive_s: z.number().int().min(1).max(3600).default(10).describe("Keep alive: the broker publishes the Will after 1.5 x this of silence"),
    qos: z
      .object({
        state: qos.default(1).describe("QoS of retained state, status and diagnostics"),
        events: qos.default(1).describe("QoS of events"),
        commands: qos.default(1).describe("QoS of the command subscription and of replies"),
      })
      .strict()
      .default({ state: 1, events: 1, commands: 1 }),
    protocol_version: z
      .union([z.literal(4), z.literal(5)])
      .optional()
      .describe("4 = MQTT 3.1.1, 5 = MQTT 5 (default 5 for url, 4 for embedded)"),
    prefix: z.string().regex(PREFIX_RE, "topic levels of letters, digits, _ . -, no wildcards, no leading or trailing /").optional().describe("Default cellio/<cell id>"),
    roles: z.record(username, mqttRoleSchema).default({}).describe("MQTT user name -> role; anyone else is a viewer"),
    publish_interval_ms: z.number().int().min(20).max(10_000).default(100).describe("How often changed state is compared and published"),
    diagnostics_interval_s: z.number().min(1).max(3600).default(5),
    session_expiry_s: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(60)
      .describe("MQTT 5: how long the broker keeps cellio's session (and queued commands) over a connection loss"),
    reconnect_ms: z.number().int().min(100).max(60_000).default(1000).describe("Wait between reconnect attempts"),
    rate_limit: z
      .object({
        burst: z.number().int().min(1).max(1000).default(5).describe("Commands a user may send at once"),
        per_second: z.number().positive().max(1000).default(2).describe("Sustained commands per second per user"),
      })
      .strict()
      .default({ burst: 5, per_second: 2 }),
    event_buffer: z.number().int().min(10).max(100_000).default(1000).describe("Events kept while the broker is away (oldest dropped)"),
    max_inflight: z.number().int().min(1).max(65_535).default(500).describe("QoS 1 publishes awaiting PUBACK at most"),
  })
  .strict()
  .superRefine((m, ctx) => {
    if ((m.broker === undefined) === (m.url === undefined)) {
      ctx.addIssue({ code: "custom", path: ["broker"], message: "set either broker: embedded or url: mqtt://host:port (one of them)" });
    }
    if (m.broker === "embedded" && m.protocol_version === 5) {
      ctx.addIssue({ code: "custom", path: ["protocol_version"], message: "the embedded broker (aedes) speaks MQTT 3.1.1 only: use protocol_version 4 or an external broker" });
    }
    if (m.broker === "embedded" && m.tls !== undefined) {
      ctx.addIssue({ code: "custom", path: ["tls"], message: "tls applies to an external broker (url: mqtts://...)" });
    } else if (m.tls !== undefined && m.url?.startsWith("mqtt://")) {
      // mqtt.js would connect in plain text and ignore the certificates: say so instead.
      ctx.addIssue({ code: "custom", path: ["url"], message: "tls is set but the url is mqtt:// (plain text): use mqtts://host:8883" });
    }
    if (m.broker === "embedded" && Object.prototype.hasOwnProperty.call(m.embedded.users, "cellio")) {
      ctx.addIssue({ code: "custom", path: ["embedded", "users", "cellio"], message: "the user name cellio is cellio's own login on the embedded broker: pick another" });
    }
    if (m.tls !== undefined && (m.tls.cert === undefined) !== (m.tls.key === undefined)) {
      ctx.addIssue({ code: "custom", path: ["tls", m.tls.cert === undefined ? "cert" : "key"], message: "a client certificate needs both cert and key" });
    }
  });

export type MqttConfig = z.infer<typeof mqttConfigSchema>;
export type MqttConfigInput = z.input<typeof mqttConfigSchema>;
export type MqttRole = z.infer<typeof mqttRoleSchema>;
