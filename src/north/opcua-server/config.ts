/**
 * The `opcua:` block of the cell config: the OPC UA server's piece of the ONE
 * schema (zod gives the types, the validation and the JSON Schema), and the
 * checks that need the point table (`opcuaConfigIssues`).
 *
 * Secure by default: no SecurityPolicy None, no anonymous sessions, only
 * Basic256Sha256 / Aes128_Sha256_RsaOaep / Aes256_Sha256_RsaPss with Sign and
 * SignAndEncrypt. The deprecated Basic128Rsa15 and Basic256 are not even
 * accepted by the schema.
 */
import { z } from "zod";
import type { ConfigIssue, PathKey } from "../../config/issues.js";
import { closest } from "../../core/expr/check.js";
import { HASH_PREFIX, isPasswordHash } from "./password.js";
import { missingRobotPoints } from "./robot-map.js";

export const SECURITY_POLICIES = ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] as const;
export type SecurityPolicyName = (typeof SECURITY_POLICIES)[number];
export const SECURITY_MODES = ["Sign", "SignAndEncrypt"] as const;
export type SecurityModeName = (typeof SECURITY_MODES)[number];
export const ROLES = ["viewer", "operator", "engineer"] as const;
export type OpcuaRole = (typeof ROLES)[number];

const policy = z.enum(SECURITY_POLICIES, {
  error: (iss) =>
    `security policy ${JSON.stringify(iss.input)} is not offered; use ${SECURITY_POLICIES.join(", ")} (Basic128Rsa15 and Basic256 are deprecated, None is allow_none)`,
});
const mode = z.enum(SECURITY_MODES, {
  error: (iss) => `security mode ${JSON.stringify(iss.input)} is not offered; use Sign or SignAndEncrypt (None is allow_none)`,
});
const role = z.enum(ROLES).describe("viewer: read only; operator: write operator-writable outputs, reset, acknowledge; engineer: everything");

const DEFAULT_SECURITY = {
  policies: [...SECURITY_POLICIES],
  modes: [...SECURITY_MODES],
  allow_none: false,
  allow_anonymous: false,
  anonymous_role: "viewer" as const,
};
const DEFAULT_LIMITS = {
  max_sessions: 10,
  max_connections: 20,
  max_subscriptions_per_session: 10,
  max_monitored_items_per_subscription: 1000,
  max_queue_size: 100,
};

export const opcuaSecuritySchema = z
  .object({
    policies: z.array(policy).min(1).default([...SECURITY_POLICIES]).describe("Security policies offered (each with every mode in `modes`)"),
    modes: z.array(mode).min(1).default([...SECURITY_MODES]).describe("Message security modes offered"),
    allow_none: z.boolean().default(false).describe("Also offer SecurityPolicy None (no signing, no encryption). Demo only: logged as a warning"),
    allow_anonymous: z.boolean().default(false).describe("Accept sessions without a user. Demo only: logged as a warning"),
    anonymous_role: role.default("viewer").describe("Role of an anonymous session (only with allow_anonymous)"),
  })
  .strict()
  .describe("Endpoints and authentication");

export const opcuaUserSchema = z
  .object({
    password_hash: z
      .string()
      .refine(isPasswordHash, `password_hash must be a scrypt hash ("${HASH_PREFIX}N$r$p$salt$key"); make one with \`cellio hash-password\``)
      .describe("scrypt hash from `cellio hash-password`; never the password itself"),
    role,
  })
  .strict();

export const opcuaLimitsSchema = z
  .object({
    max_sessions: z.number().int().min(1).max(1000).default(DEFAULT_LIMITS.max_sessions).describe("Concurrent sessions; one more is refused (BadTooManySessions)"),
    max_connections: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(DEFAULT_LIMITS.max_connections)
      .describe("Concurrent TCP connections (secure channels); keep it above max_sessions so a refused session can be told why"),
    max_subscriptions_per_session: z.number().int().min(1).max(1000).default(DEFAULT_LIMITS.max_subscriptions_per_session),
    max_monitored_items_per_subscription: z.number().int().min(1).max(100_000).default(DEFAULT_LIMITS.max_monitored_items_per_subscription),
    max_queue_size: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(DEFAULT_LIMITS.max_queue_size)
      .describe("Largest queue a client may ask for per monitored item (bounds memory per client)"),
  })
  .strict()
  .describe("Resource limits per server and per session");

export const opcuaRobotSchema = z
  .object({
    device: z.string().min(1).describe("The robot's device: profile motoman-yrc1000 (Modbus or OPC UA), or a device with the same point names"),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, "robot name: 1-64 letters, digits, _ and -")
      .optional()
      .describe("Browse name of its MotionDeviceSystem under DeviceSet (default: the device name)"),
    manufacturer: z.string().default("YASKAWA").describe("Manufacturer of the manipulator and the controller"),
    model: z.string().default("MOTOMAN").describe("Manipulator model (also its ProductCode)"),
    serial_number: z.string().default("").describe("Manipulator serial number (empty: not configured)"),
    controller_model: z.string().default("YRC1000").describe("Controller model (also its ProductCode)"),
    controller_serial_number: z.string().default("").describe("Controller serial number (empty: not configured)"),
  })
  .strict()
  .describe("A robot shown under DeviceSet with the OPC 40010 Robotics model, fed from its device's points");

export const opcuaConfigSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(4840).describe("TCP port (0: any free port, for tests)"),
    host: z.string().min(1).optional().describe("Address to listen on (default: every interface)"),
    hostname: z.string().min(1).optional().describe("Host name in endpoint URLs and the certificate (default: host, else this machine's name)"),
    state_dir: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The OPC UA server's folder, relative to the config file. Default: opcua-server/ in the cell's state folder (cellio run --state-dir, state.dir, $STATE_DIRECTORY, else ./state next to the config file)",
      ),
    pki_dir: z.string().min(1).optional().describe("PKI folder: own certificate, trusted/, rejected/, relative to the config file (default <state_dir>/pki)"),
    security: opcuaSecuritySchema.default(DEFAULT_SECURITY),
    users: z.record(z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, "user name: 1-64 letters, digits, _ . @ -"), opcuaUserSchema).default({}).describe("Users by name"),
    publish_interval_ms: z
      .number()
      .int()
      .min(10)
      .max(10_000)
      .default(50)
      .describe("Values go to the address space at most this often, and only when they change"),
    limits: opcuaLimitsSchema.default(DEFAULT_LIMITS),
    robots: z
      .array(opcuaRobotSchema)
      .default([])
      .describe("Robots to show under Objects/DeviceSet with the OPC 40010 Robotics model (loads the DI, IA and Robotics nodesets: a few seconds more at start)"),
  })
  .strict()
  .describe("The OPC UA server for the PLC/HMI");

export type OpcuaConfig = z.infer<typeof opcuaConfigSchema>;
export type OpcuaRobotConfig = z.infer<typeof opcuaRobotSchema>;
export type OpcuaConfigInput = z.input<typeof opcuaConfigSchema>;

/** What opcuaConfigIssues needs of a point. */
export interface PointRef {
  readonly id: string;
  readonly device: string;
  readonly name: string;
}

/** Anything that turns a path and a message into a located issue (config/issues.ts SourceMap). */
export interface IssueMaker {
  issue(path: readonly PathKey[], message: string): ConfigIssue;
}

/**
 * Checks that need the point table and the devices; compileCell calls it with
 * the source map, so each problem has its YAML path and line. Returns every
 * problem at once.
 */
export function opcuaConfigIssues(cfg: OpcuaConfig, points: readonly PointRef[], devices: readonly string[], map: IssueMaker): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const at = (path: PathKey[], message: string): void => void issues.push(map.issue(["opcua", ...path], message));
  for (const p of points) {
    if (p.name === "Status") {
      issues.push(map.issue(["devices", p.device, "points", p.name], `point ${p.id} is named Status, which the OPC UA server uses for the device status node; rename the point`));
    }
  }
  if (!cfg.security.allow_anonymous && Object.keys(cfg.users).length === 0) {
    at(["users"], "no users and allow_anonymous is false: nobody could open a session");
  }
  if (new Set(cfg.security.policies).size !== cfg.security.policies.length) at(["security", "policies"], "a policy is listed twice");
  if (new Set(cfg.security.modes).size !== cfg.security.modes.length) at(["security", "modes"], "a mode is listed twice");
  if (cfg.limits.max_connections < cfg.limits.max_sessions) {
    at(["limits", "max_connections"], `max_connections (${cfg.limits.max_connections}) is below max_sessions (${cfg.limits.max_sessions})`);
  }
  for (const name of Object.keys(cfg.users)) {
    if (name === "anonymous") at(["users", name], '"anonymous" is reserved for anonymous sessions');
  }
  robotIssues(cfg.robots, points, devices, at);
  return issues;
}

function robotIssues(robots: readonly OpcuaRobotConfig[], points: readonly PointRef[], devices: readonly string[], at: (path: PathKey[], message: string) => void): void {
  const names = new Map<string, number>();
  robots.forEach((r, i) => {
    const name = r.name ?? r.device;
    const first = names.get(name);
    if (first !== undefined) at(["robots", i, r.name === undefined ? "device" : "name"], `robot name "${name}" is already used by robots[${first}]; give one a name`);
    else names.set(name, i);
    if (!devices.includes(r.device)) {
      const hint = closest(r.device, devices);
      at(["robots", i, "device"], `unknown device "${r.device}"${hint === undefined ? "" : ` (did you mean "${hint}"?)`}`);
      return;
    }
    const have = new Set(points.filter((p) => p.device === r.device).map((p) => p.name));
    const missing = missingRobotPoints(have);
    if (missing.length > 0) {
      at(
        ["robots", i, "device"],
        `device ${r.device} lacks the robot point${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: give it profile motoman-yrc1000 (or points with these names)`,
      );
    }
  });
}
