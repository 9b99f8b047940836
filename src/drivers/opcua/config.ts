/**
 * The OPC UA client piece of the cell schema: a device with `protocol: opcua`.
 * Documented key by key in ./README.md; ./sample.yaml is a working example.
 */
import { z } from "zod";
import { name, pointBase } from "../../config/common.js";

export const OPCUA_SECURITY_MODES = ["None", "Sign", "SignAndEncrypt"] as const;
export const OPCUA_SECURITY_POLICIES = ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] as const;

const deadbandSchema = z
  .object({
    type: z.enum(["absolute", "percent"]).describe("absolute: in the variable's units; percent: of its EURange (the server must have one)"),
    value: z.number().nonnegative(),
  })
  .strict()
  .describe("Server-side deadband of a numeric monitored item (the server filters smaller changes); where the server supports it");

/** Monitored-item settings, per device and per point. */
const monitoringFields = {
  sampling_interval_ms: z
    .number()
    .min(0)
    .max(3_600_000)
    .optional()
    .describe("How often the server samples the variable (0: as fast as it can / on change). node-opcua servers revise anything below 50 ms up"),
  queue_size: z.number().int().min(1).max(1000).optional().describe("Server queue of the monitored item; cellio uses the newest value (default 1)"),
  server_deadband: deadbandSchema.optional(),
};

export const opcuaPointSchema = z
  .object({
    address: z
      .string()
      .min(1)
      .optional()
      .describe(
        'NodeId ("ns=2;s=Robot.ServoOn", "ns=3;i=1001", "nsu=urn:vendor:robot;s=ServoOn") or a browse path from Objects ("/2:Robot/2:ServoOn"). Optional only for a point that overrides one of the device profile\'s points',
      ),
    ...pointBase,
    ...monitoringFields,
  })
  .strict();

export const opcuaSecuritySchema = z
  .object({
    mode: z
      .enum(OPCUA_SECURITY_MODES)
      .describe("Message security mode. None (no signing, no encryption) only when written here explicitly"),
    policy: z
      .enum(OPCUA_SECURITY_POLICIES)
      .optional()
      .describe("Security policy (default Basic256Sha256 for Sign/SignAndEncrypt, None for mode None)"),
    user: z.string().min(1).optional().describe("User name; without it the session is anonymous"),
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name")
      .optional()
      .describe("Environment variable holding the user's password (passwords never live in the config)"),
    pki_dir: z
      .string()
      .min(1)
      .optional()
      .describe("PKI folder: cellio's application certificate (own/), trusted/ and rejected/ server certificates. Default: pki/ in the cell's state folder (--state-dir, state.dir, $STATE_DIRECTORY, else ./state next to the config file)"),
    trust_unknown_server: z
      .boolean()
      .default(false)
      .describe("Accept a server certificate that is not in trusted/ (and trust it from then on). Off: it is rejected and saved in rejected/"),
  })
  .strict();

/** An OPC UA endpoint URL: host (1), port (2, optional), path (3, optional). */
export const ENDPOINT_URL = /^opc\.tcp:\/\/([^/\s:]+)(?::(\d+))?(\/\S*)?$/;

export const opcuaDeviceSchema = z
  .object({
    protocol: z.literal("opcua"),
    description: z.string().optional(),
    endpoint: z
      .string()
      .regex(ENDPOINT_URL, 'an endpoint URL like "opc.tcp://host:4840"')
      .describe("Endpoint URL of the OPC UA server"),
    security: opcuaSecuritySchema.describe("Security: required, so that mode None is always a written decision"),
    mode: z
      .enum(["subscription", "polled"])
      .default("subscription")
      .describe("subscription: monitored items, the newest value each cycle (>= 50 ms on node-opcua servers); polled: one Read of every point per poll"),
    timeout_ms: z.number().int().min(1).max(60_000).default(500).describe("Timeout of one Read or Write request"),
    connect_timeout_ms: z
      .number()
      .int()
      .min(100)
      .max(120_000)
      .default(5000)
      .describe("Connect + session + node resolution + subscription must finish within this, else the attempt is dropped"),
    session_timeout_ms: z.number().int().min(1000).max(3_600_000).default(30_000).describe("Requested session timeout"),
    subscription: z
      .object({
        publishing_interval_ms: z.number().min(1).max(3_600_000).default(50),
        keepalive_count: z.number().int().min(1).max(1000).default(10).describe("Empty publishing intervals before the server sends a keep-alive"),
        lifetime_count: z.number().int().min(3).max(100_000).default(60),
        ...monitoringFields,
      })
      .strict()
      .default({ publishing_interval_ms: 50, keepalive_count: 10, lifetime_count: 60 })
      .describe("Subscription and device-wide monitored-item settings (subscription mode)"),
    liveness_ms: z
      .number()
      .int()
      .min(100)
      .max(3_600_000)
      .optional()
      .describe(
        "Subscription mode: no publish response (data or keep-alive) for this long rebuilds client, session and subscription (default: 3 keep-alive periods + timeout_ms)",
      ),
    poll_every: z.number().int().min(1).max(100_000).default(1).describe("Poll every N cycles (the subscription's values are taken every N cycles)"),
    stale_after_ms: z.number().int().positive().optional().describe("A sample older than this turns uncertain (default: the larger of 3 poll periods and 3 request timeouts)"),
    required: z.boolean().default(true).describe("Readiness needs this device to be good"),
    reconnect: z
      .object({
        min_ms: z.number().int().min(10).default(200),
        max_ms: z.number().int().min(10).default(10_000),
      })
      .strict()
      .default({ min_ms: 200, max_ms: 10_000 })
      .describe("Reconnect backoff (exponential with jitter)"),
    fail_after: z.number().int().min(1).max(100).default(1).describe("Consecutive failed polls before points turn bad"),
    heartbeat_writes: z.boolean().default(false).describe("Write all outputs every cycle, not only on change"),
    profile: z
      .enum(["motoman-yrc1000"])
      .optional()
      .describe("Device profile: expands to named points; `points` entries override or add to them"),
    profile_options: z
      .object({
        namespace_uri: z.string().min(1).default("urn:cellio:simulator:motoman").describe("Namespace URI of the profile's nodes"),
        folder: z.string().min(1).default("Motoman").describe("Prefix of the string NodeIds: <folder>.<Signal>"),
        axes: z.number().int().min(1).max(8).default(6),
      })
      .strict()
      .default({ namespace_uri: "urn:cellio:simulator:motoman", folder: "Motoman", axes: 6 }),
    points: z.record(name("point name"), opcuaPointSchema).default({}),
  })
  .strict();

export type OpcuaDeviceConfig = z.infer<typeof opcuaDeviceSchema>;
export type OpcuaPointConfig = z.infer<typeof opcuaPointSchema>;
export type OpcuaSecurityConfig = z.infer<typeof opcuaSecuritySchema>;
