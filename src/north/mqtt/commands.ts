/**
 * Commands from technicians: `<prefix>/cmd/<kind>/<username>`.
 *
 * The broker authenticates the user and its ACL pins the last topic level to
 * the user's own name (mosquitto `pattern write cellio/+/cmd/+/%u`; the
 * embedded broker enforces the same), so the role comes from a name nobody
 * can forge. Then, in this order, each step refusing with a reply and
 * changing nothing:
 *   retained message (ignored, no reply: it would re-run on every resubscribe)
 *   → rate limit per user → reply topic (under <prefix>/reply/<user>)
 *   → JSON → expiry (payload `expires`) → payload schema (zod, per kind)
 *   → CommandPort.submit (role, target, value, interlocks).
 *
 * Replies go to the MQTT 5 Response Topic with the request's Correlation
 * Data, or to the payload's `reply_to` with its `correlation_id` echoed
 * (MQTT 3.1.1), or by default to <prefix>/reply/<user>.
 *
 * MQTT 5 Message Expiry is the broker's job: a command whose expiry passes
 * before delivery is deleted by the broker (MQTT 5 3.3.2-5) and never reaches
 * cellio, so it is never applied (and cannot be answered).
 */
import { RateLimiter, type Role } from "../../core/commands.js";
import type { Clock } from "../../infra/clock.js";
import type { Logger } from "../../infra/logger.js";
import {
  COMMAND_KINDS,
  commandPayloadSchemas,
  envelopeSchema,
  isCommandKind,
  parseCommandTopic,
  replyTopicAllowed,
  toCommand,
  type ReplyCode,
  type ReplyPayload,
  type Topics,
} from "./contract.js";
import type { CommandPort } from "./ports.js";

export interface IncomingCommand {
  readonly topic: string;
  readonly payload: Buffer;
  readonly retain: boolean;
  /** MQTT 5 Response Topic. */
  readonly responseTopic?: string | undefined;
  /** MQTT 5 Correlation Data. */
  readonly correlationData?: Buffer | undefined;
}

export interface CommandReply {
  readonly topic: string;
  readonly payload: ReplyPayload;
  /** MQTT 5: echo as Correlation Data. */
  readonly correlationData?: Buffer | undefined;
}

export interface CommandHandlerOptions {
  readonly topics: Topics;
  readonly roles: Readonly<Record<string, Role>>;
  readonly port: CommandPort;
  readonly rateLimit: { readonly burst: number; readonly perSecond: number };
  readonly clock: Clock;
  readonly log: Logger;
}

export class MqttCommandHandler {
  accepted = 0;
  rejected = 0;
  ignored = 0;
  private readonly limiter: RateLimiter;

  constructor(private readonly o: CommandHandlerOptions) {
    this.limiter = new RateLimiter({ capacity: o.rateLimit.burst, perSecond: o.rateLimit.perSecond, maxCallers: 1000 });
  }

  roleOf(user: string): Role {
    return Object.prototype.hasOwnProperty.call(this.o.roles, user) ? this.o.roles[user]! : "viewer";
  }

  /** Handle one message; returns the reply to publish (undefined: none). Synchronous. */
  handle(m: IncomingCommand): CommandReply | undefined {
    const { topics, log } = this.o;
    const parsed = parseCommandTopic(topics, m.topic);
    if (parsed === undefined) {
      this.ignored++;
      return undefined;
    }
    const { kind, user } = parsed;
    if (m.retain) {
      this.ignored++;
      log.warn({ topic: m.topic, user }, "retained command ignored (commands must not be retained; clear it with an empty retained message)");
      return undefined;
    }
    const text = m.payload.toString("utf8");
    let json: unknown;
    let jsonError: string | undefined;
    try {
      json = text.length === 0 ? undefined : JSON.parse(text);
    } catch (e) {
      jsonError = e instanceof Error ? e.message : String(e);
    }
    const env = envelopeSchema.safeParse(json);
    const envelope = env.success ? env.data : {};
    // Correlation: MQTT 5 properties win over payload fields.
    const correlationId = typeof envelope.correlation_id === "string" ? envelope.correlation_id : undefined;
    const asked = m.responseTopic ?? (typeof envelope.reply_to === "string" ? envelope.reply_to : undefined);
    const reply = (payload: ReplyPayload, topic = asked ?? topics.replyRoot(user)): CommandReply => ({
      topic,
      payload: correlationId === undefined ? payload : { ...payload, correlation_id: correlationId },
      correlationData: m.correlationData,
    });
    const reject = (code: ReplyCode, reason: string, topic?: string): CommandReply => {
      this.rejected++;
      log.info({ user, kind, code, reason }, "command rejected");
      return reply({ accepted: false, code, reason }, topic);
    };

    if (!this.limiter.allow(user, this.o.clock.now())) return reject("rate_limited", `too many commands from ${user}`);
    if (asked !== undefined && !replyTopicAllowed(topics, user, asked)) {
      return reject("bad_command", `reply topic must be ${topics.replyRoot(user)} or below it, without wildcards`, topics.replyRoot(user));
    }
    if (!isCommandKind(kind)) return reject("bad_command", `unknown command kind "${kind}" (${COMMAND_KINDS.join(", ")})`);
    if (jsonError !== undefined) return reject("bad_command", `payload is not JSON: ${jsonError}`);
    if (json === null || typeof json !== "object" || Array.isArray(json)) return reject("bad_command", "payload must be a JSON object");
    if (env.success && env.data.expires !== undefined) {
      const until = typeof env.data.expires === "number" ? env.data.expires : Date.parse(env.data.expires);
      if (!(this.o.clock.wall() < until)) return reject("expired", `expired at ${new Date(until).toISOString()}`);
    }
    const body = commandPayloadSchemas[kind].safeParse(json);
    if (!body.success) {
      const first = body.error.issues[0];
      const where = first && first.path.length > 0 ? `${first.path.join(".")}: ` : "";
      return reject("bad_command", `${where}${first?.message ?? "invalid payload"}`);
    }
    const role = this.roleOf(user);
    const result = this.o.port.submit(toCommand(kind, body.data), { role, caller: `mqtt:${user}`, nowMs: this.o.clock.now() });
    if (!result.accepted) return reject(result.code, result.reason);
    this.accepted++;
    log.info({ user, role, kind }, "command accepted");
    return reply({ accepted: true });
  }
}
