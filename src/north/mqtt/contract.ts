/**
 * The MQTT topic contract, typed in ONE place: topic builders, payload types
 * and the zod schemas of what technicians send. README.md in this folder
 * documents it for people; tests check payloads against these schemas.
 *
 * <prefix>/status                      retained  {state:"online",...} birth / {state:"offline",...} (Will and clean stop)
 * <prefix>/points/<device>/<point>     retained  {v, q, s, ts}
 * <prefix>/interlocks/<id>             retained  {tripped, permitted, latched, trip_count, last_cause, last_trip}
 * <prefix>/sequences/<id>              retained  {step, faulted, last_fault, since}
 * <prefix>/mode                        retained  {mode: auto|manual, since, by, manual_permitted} (the control mode)
 * <prefix>/diagnostics                 retained  every diagnostics_interval_s
 * <prefix>/events                      not retained, QoS 1 (interlock, sequence, device, cell, mode, command)
 * <prefix>/cmd/<kind>/<username>       technicians publish commands here (the broker ACL pins <username>)
 * <prefix>/reply/<username>[/...]      cellio publishes replies here
 */
import { z } from "zod";
import type { Command, RejectCode } from "../../core/commands.js";
import type { Quality, Sample, Status, Value } from "../../core/sample.js";

/** Bumped only on an incompatible change of a topic or payload. */
export const CONTRACT_VERSION = 1;

export const COMMAND_KINDS = ["set", "reset_interlock", "reset_sequence", "ack", "reset_fault", "set_mode"] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export function defaultPrefix(cellId: string): string {
  return `cellio/${cellId}`;
}

export interface Topics {
  readonly prefix: string;
  readonly status: string;
  readonly diagnostics: string;
  readonly events: string;
  /** The control mode (auto | manual), retained. */
  readonly mode: string;
  point(device: string, name: string): string;
  interlock(id: string): string;
  sequence(id: string): string;
  command(kind: CommandKind, user: string): string;
  /** What cellio subscribes to for commands. */
  readonly commandFilter: string;
  /** Default reply topic of a user; any topic below it is allowed as a reply topic. */
  replyRoot(user: string): string;
}

export function topics(prefix: string): Topics {
  return Object.freeze({
    prefix,
    status: `${prefix}/status`,
    diagnostics: `${prefix}/diagnostics`,
    events: `${prefix}/events`,
    mode: `${prefix}/mode`,
    point: (device: string, name: string) => `${prefix}/points/${device}/${name}`,
    interlock: (id: string) => `${prefix}/interlocks/${id}`,
    sequence: (id: string) => `${prefix}/sequences/${id}`,
    command: (kind: CommandKind, user: string) => `${prefix}/cmd/${kind}/${user}`,
    commandFilter: `${prefix}/cmd/+/+`,
    replyRoot: (user: string) => `${prefix}/reply/${user}`,
  });
}

/** `<prefix>/cmd/<kind>/<user>` → its parts; undefined for anything else. `kind` is not checked here. */
export function parseCommandTopic(t: Topics, topic: string): { kind: string; user: string } | undefined {
  const head = `${t.prefix}/cmd/`;
  if (!topic.startsWith(head)) return undefined;
  const rest = topic.slice(head.length).split("/");
  if (rest.length !== 2 || rest[0] === "" || rest[1] === "") return undefined;
  return { kind: rest[0]!, user: rest[1]! };
}

export function isCommandKind(k: string): k is CommandKind {
  return (COMMAND_KINDS as readonly string[]).includes(k);
}

/** A reply topic the user may ask for: their reply root or below it, no wildcards. */
export function replyTopicAllowed(t: Topics, user: string, topic: string): boolean {
  const root = t.replyRoot(user);
  if (topic.includes("+") || topic.includes("#")) return false;
  return topic === root || (topic.startsWith(`${root}/`) && topic.length > root.length + 1);
}

// ---- retained state ------------------------------------------------------------

const isoOrNull = z.iso.datetime({ offset: true }).nullable();

export const pointPayloadSchema = z
  .object({
    v: z.union([z.boolean(), z.number(), z.string()]).nullable(),
    q: z.enum(["good", "uncertain", "bad"]),
    s: z.string(),
    ts: isoOrNull,
  })
  .strict();

export interface PointPayload {
  /** Last value read (null: never read). When q is not good, it is NOT current. */
  readonly v: Value | null;
  readonly q: Quality;
  /** Status reason, maps 1:1 onto an OPC UA StatusCode (src/core/sample.ts). */
  readonly s: Status;
  /** Source time of v (ISO-8601 UTC), null when never read. Never refreshed without a re-read. */
  readonly ts: string | null;
}

export function iso(epochMs: number): string | null {
  return epochMs > 0 && Number.isFinite(epochMs) ? new Date(epochMs).toISOString() : null;
}

export function pointPayload(s: Sample): PointPayload {
  return { v: typeof s.value === "number" && !Number.isFinite(s.value) ? null : s.value, q: s.quality, s: s.status, ts: iso(s.sourceTs) };
}

export const interlockPayloadSchema = z
  .object({
    tripped: z.boolean(),
    permitted: z.boolean(),
    latched: z.boolean(),
    trip_count: z.number().int(),
    last_cause: z.string(),
    last_trip: isoOrNull,
  })
  .strict();
export type InterlockPayload = z.infer<typeof interlockPayloadSchema>;

export const sequencePayloadSchema = z
  .object({
    step: z.string(),
    faulted: z.boolean(),
    last_fault: z.string(),
    /** Wall time of the cycle in which cellio first published this step. */
    since: isoOrNull,
  })
  .strict();
export type SequencePayload = z.infer<typeof sequencePayloadSchema>;

/**
 * `<prefix>/mode`: the control mode (core/control-mode.ts), the same words the
 * set_mode command takes. `since`: wall time of the cycle that applied the
 * switch (of the first cycle cellio published when it never switched); `by`:
 * "<role> <caller>" of that switch ("" when it never switched);
 * `manual_permitted`: manual_mode is configured and its permit holds now (a
 * set_mode to manual is not refused for the permit).
 */
export const modePayloadSchema = z
  .object({
    mode: z.enum(["auto", "manual"]),
    since: isoOrNull,
    by: z.string(),
    manual_permitted: z.boolean(),
  })
  .strict();
export type ModePayload = z.infer<typeof modePayloadSchema>;

export const birthPayloadSchema = z
  .object({
    state: z.literal("online"),
    version: z.string(),
    config_hash: z.string(),
    started: z.string(),
    contract: z.number().int(),
  })
  .strict();
export type BirthPayload = z.infer<typeof birthPayloadSchema>;

export const offlinePayloadSchema = z
  .object({
    state: z.literal("offline"),
    /** "connection lost" (the Will) or "shutdown" (explicit, on a clean stop). */
    reason: z.enum(["connection lost", "shutdown"]),
    started: z.string(),
    ts: isoOrNull.optional(),
  })
  .strict();
export type OfflinePayload = z.infer<typeof offlinePayloadSchema>;

export const statusPayloadSchema = z.discriminatedUnion("state", [birthPayloadSchema, offlinePayloadSchema]);

// ---- events and diagnostics ------------------------------------------------------

export const EVENT_TYPES = ["interlock", "sequence", "device", "cell", "mode", "command"] as const;

export const eventPayloadSchema = z
  .object({
    ts: z.string(),
    type: z.enum(EVENT_TYPES),
    /** interlock/sequence id, device name, or the cell id (cell, mode). */
    id: z.string(),
    /**
     * interlock: trip|clear|reset; sequence: step|fault|reset; device: lost|stale|recovered;
     * cell: running|faulted|starting; mode: switch|permit_lost; command: applied|refused.
     */
    event: z.string(),
    cause: z.string(),
    /** command: who sent it ("mqtt:<user>", an OPC UA session). */
    caller: z.string().optional(),
    /** mode: "<role> <caller>" of a switch; "cellio" for a lost permit. */
    by: z.string().optional(),
    from: z.string().optional(),
    to: z.string().optional(),
    cycle: z.number().int().optional(),
  })
  .strict();
export type EventPayload = z.infer<typeof eventPayloadSchema>;

export interface DiagnosticsPayload {
  readonly ts: string | null;
  readonly uptime_s: number;
  /** The loop's state: starting | running | faulted. */
  readonly mode: string;
  /** The control mode: auto | manual (null before the first cycle that carried it). */
  readonly control_mode: "auto" | "manual" | null;
  readonly cycle: number;
  readonly period_ms: number;
  readonly loop: {
    readonly cycles: number;
    readonly skipped: number;
    readonly overruns: number;
    readonly input_misses: number;
    readonly lateness_p99_ms: number;
    readonly lateness_max_ms: number;
    readonly cycle_p99_ms: number;
  } | null;
  readonly devices: Readonly<Record<string, { readonly state: string; readonly error: string }>>;
  readonly mqtt: {
    readonly published: number;
    readonly reconnects: number;
    readonly queued: number;
    readonly dropped_events: number;
    readonly commands_accepted: number;
    readonly commands_rejected: number;
  };
}

// ---- commands --------------------------------------------------------------------

/** Fields every command payload may carry. */
const envelope = {
  /** MQTT 3.1.1: where to reply (MQTT 5 clients use the Response Topic property). */
  reply_to: z.string().min(1).optional(),
  /** MQTT 3.1.1: echoed in the reply (MQTT 5 clients use Correlation Data). */
  correlation_id: z.string().optional(),
  /** Refuse the command after this time: ISO-8601 or epoch milliseconds. */
  expires: z.union([z.iso.datetime({ offset: true }), z.number().int().positive()]).optional(),
};

const pointId = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/, "a point id <device>.<point>");
const targetId = z.string().min(1);

export const commandPayloadSchemas = {
  set: z.object({ point: pointId, value: z.union([z.boolean(), z.number(), z.string()]), ...envelope }).strict(),
  reset_interlock: z.object({ id: targetId, ...envelope }).strict(),
  reset_sequence: z.object({ id: targetId, ...envelope }).strict(),
  ack: z.object({ id: targetId, ...envelope }).strict(),
  reset_fault: z.object({ ...envelope }).strict(),
  set_mode: z.object({ mode: z.enum(["auto", "manual"]), ...envelope }).strict(),
} as const satisfies Record<CommandKind, z.ZodType>;

/** Only the envelope, read before the body is validated (to know where to reply). */
export const envelopeSchema = z.object(envelope).loose();

export type CommandPayload<K extends CommandKind> = z.infer<(typeof commandPayloadSchemas)[K]>;

/** The internal command (src/core/commands.ts) for a validated MQTT payload. */
export function toCommand(kind: CommandKind, body: Record<string, unknown>): Command {
  switch (kind) {
    case "set":
      return { kind: "set_point", point: String(body["point"]), value: body["value"] };
    case "reset_interlock":
      return { kind: "reset_interlock", id: String(body["id"]) };
    case "reset_sequence":
      return { kind: "reset_sequence", id: String(body["id"]) };
    case "ack":
      return { kind: "acknowledge", id: String(body["id"]) };
    case "reset_fault":
      return { kind: "reset_fault" };
    case "set_mode":
      return { kind: "set_mode", mode: body["mode"] === "manual" ? "manual" : "auto" };
  }
}

export type ReplyCode = RejectCode | "expired";

export const replyPayloadSchema = z.union([
  z.object({ accepted: z.literal(true), correlation_id: z.string().optional() }).strict(),
  z.object({ accepted: z.literal(false), code: z.string(), reason: z.string(), correlation_id: z.string().optional() }).strict(),
]);

export type ReplyPayload =
  | { readonly accepted: true; readonly correlation_id?: string }
  | { readonly accepted: false; readonly code: ReplyCode; readonly reason: string; readonly correlation_id?: string };
