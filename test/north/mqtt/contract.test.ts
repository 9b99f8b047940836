/**
 * The topic contract, the `mqtt:` config block (and sample.yaml), and the
 * command handler's decisions, without a broker.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { silentLogger } from "../../../src/infra/logger.js";
import { MqttCommandHandler, type IncomingCommand } from "../../../src/north/mqtt/commands.js";
import { clientOptions } from "../../../src/north/mqtt/client.js";
import { mqttConfigSchema } from "../../../src/north/mqtt/config.js";
import { COMMAND_KINDS, commandPayloadSchemas, eventPayloadSchema, modePayloadSchema, parseCommandTopic, replyTopicAllowed, topics } from "../../../src/north/mqtt/contract.js";
import { configHash } from "../../../src/north/mqtt/service.js";
import { ROOT, routerPort } from "./helpers.js";

const T = topics("cellio/t1");

describe("topics", () => {
  it("builds every topic under the prefix", () => {
    expect([T.status, T.diagnostics, T.events, T.mode, T.point("io1", "door"), T.interlock("door"), T.sequence("main"), T.command("set", "alice"), T.commandFilter, T.replyRoot("alice")]).toEqual([
      "cellio/t1/status",
      "cellio/t1/diagnostics",
      "cellio/t1/events",
      "cellio/t1/mode",
      "cellio/t1/points/io1/door",
      "cellio/t1/interlocks/door",
      "cellio/t1/sequences/main",
      "cellio/t1/cmd/set/alice",
      "cellio/t1/cmd/+/+",
      "cellio/t1/reply/alice",
    ]);
  });

  it("parses command topics and nothing else", () => {
    expect(parseCommandTopic(T, "cellio/t1/cmd/set/alice")).toEqual({ kind: "set", user: "alice" });
    expect(parseCommandTopic(T, "cellio/t1/cmd/set")).toBeUndefined();
    expect(parseCommandTopic(T, "cellio/t1/cmd/set/alice/x")).toBeUndefined();
    expect(parseCommandTopic(T, "cellio/t2/cmd/set/alice")).toBeUndefined();
    expect(parseCommandTopic(T, "cellio/t1/cmd//alice")).toBeUndefined();
  });

  it("allows reply topics only at or below the user's own reply root, without wildcards", () => {
    expect(replyTopicAllowed(T, "alice", "cellio/t1/reply/alice")).toBe(true);
    expect(replyTopicAllowed(T, "alice", "cellio/t1/reply/alice/x/y")).toBe(true);
    expect(replyTopicAllowed(T, "alice", "cellio/t1/reply/alicex")).toBe(false);
    expect(replyTopicAllowed(T, "alice", "cellio/t1/reply/bob/x")).toBe(false);
    expect(replyTopicAllowed(T, "alice", "cellio/t1/points/io1/door")).toBe(false);
    expect(replyTopicAllowed(T, "alice", "cellio/t1/reply/alice/+")).toBe(false);
    expect(replyTopicAllowed(T, "alice", "cellio/t1/reply/alice/")).toBe(false);
  });

  it("has a payload schema for every command kind, strict", () => {
    expect(Object.keys(commandPayloadSchemas).sort()).toEqual([...COMMAND_KINDS].sort());
    expect(commandPayloadSchemas.set.safeParse({ point: "io1.x", value: 1, extra: 1 }).success).toBe(false);
    expect(commandPayloadSchemas.set.safeParse({ point: "io1.x", value: 1, expires: "2026-01-01T00:00:00Z" }).success).toBe(true);
    expect(commandPayloadSchemas.reset_fault.safeParse({}).success).toBe(true);
  });
});

describe("the control mode payloads", () => {
  it("<prefix>/mode: the set_mode command's words, strict; a `mode` event may say who switched", () => {
    const ok = { mode: "manual", since: "2026-01-01T00:00:00.020Z", by: "engineer mqtt:erin", manual_permitted: true };
    expect(modePayloadSchema.parse(ok)).toEqual(ok);
    expect(commandPayloadSchemas.set_mode.parse({ mode: ok.mode }).mode).toBe("manual");
    expect(modePayloadSchema.safeParse({ ...ok, mode: "running" }).success).toBe(false);
    expect(modePayloadSchema.safeParse({ ...ok, extra: 1 }).success).toBe(false);
    expect(modePayloadSchema.safeParse({ mode: "auto", since: null, by: "" }).success).toBe(false); // manual_permitted is always there
    const ev = { ts: ok.since, type: "mode", id: "t1", event: "switch", cause: "set_mode", from: "auto", to: "manual", by: ok.by, cycle: 3 };
    expect(eventPayloadSchema.parse(ev)).toEqual(ev);
  });
});

describe("config", () => {
  it("defaults: embedded broker on 127.0.0.1:1883, QoS 1, 100 ms pacing", () => {
    const c = mqttConfigSchema.parse({ broker: "embedded" });
    expect(c).toMatchObject({
      embedded: { host: "127.0.0.1", port: 1883, allow_anonymous: true, users: {} },
      keepalive_s: 10,
      qos: { state: 1, events: 1, commands: 1 },
      publish_interval_ms: 100,
      roles: {},
    });
    expect(c.prefix).toBeUndefined();
  });

  it("wants exactly one of broker: embedded and url", () => {
    expect(mqttConfigSchema.safeParse({}).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ broker: "embedded", url: "mqtt://x:1883" }).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ url: "mqtts://broker.plant:8883", tls: { ca: "ca.pem" } }).success).toBe(true);
    expect(mqttConfigSchema.safeParse({ url: "http://x" }).success).toBe(false);
  });

  it("refuses MQTT 5 and TLS for the embedded broker, wildcards in the prefix, and unknown keys", () => {
    expect(mqttConfigSchema.safeParse({ broker: "embedded", protocol_version: 5 }).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ broker: "embedded", tls: {} }).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ broker: "embedded", prefix: "cellio/#" }).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ broker: "embedded", prefix: "/cellio" }).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ broker: "embedded", roles: { alice: "admin" } }).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ broker: "embedded", qos: { state: 2 } }).success).toBe(false);
    expect(mqttConfigSchema.safeParse({ broker: "embedded", brokr: 1 }).success).toBe(false);
    // cellio's own login on its embedded broker
    expect(mqttConfigSchema.safeParse({ broker: "embedded", embedded: { users: { cellio: { password_env: "X" } } } }).error?.issues[0]?.path).toEqual(["embedded", "users", "cellio"]);
  });

  it("refuses TLS files with a plain mqtt:// url (they would be ignored) and a client certificate without its key", () => {
    const plain = mqttConfigSchema.safeParse({ url: "mqtt://broker.plant:1883", tls: { ca: "ca.pem" } });
    expect(plain.error?.issues.map((i) => [i.path.join("."), i.message])).toEqual([["url", expect.stringContaining("mqtts://") as unknown]]);
    const half = mqttConfigSchema.safeParse({ url: "mqtts://broker.plant:8883", tls: { ca: "ca.pem", cert: "c.pem" } });
    expect(half.error?.issues.map((i) => i.path.join("."))).toEqual(["tls.key"]);
    expect(mqttConfigSchema.safeParse({ url: "mqtts://broker.plant:8883", tls: { ca: "ca.pem", cert: "c.pem", key: "c.key" } }).success).toBe(true);
  });

  it("src/north/mqtt/sample.yaml validates", () => {
    const doc = parseYaml(readFileSync(path.join(ROOT, "src", "north", "mqtt", "sample.yaml"), "utf8")) as { mqtt: unknown };
    const r = mqttConfigSchema.safeParse(doc.mqtt);
    expect(r.error?.issues ?? []).toEqual([]);
  });

  it("builds mqtt.js options: Will retained on the status topic, clean first connect, own resubscription, MQTT 5 session expiry", () => {
    const o = clientOptions({
      url: "mqtt://x",
      protocolVersion: 5,
      clientId: "cellio-t1",
      keepaliveS: 10,
      reconnectMs: 1000,
      sessionExpiryS: 60,
      baseDir: ".",
      will: { topic: T.status, payload: '{"state":"offline"}', qos: 1 },
      subscriptions: [],
    });
    expect(o).toMatchObject({ clean: true, resubscribe: false, queueQoSZero: false, keepalive: 10, properties: { sessionExpiryInterval: 60 } });
    expect(o.will).toMatchObject({ topic: "cellio/t1/status", retain: true, qos: 1 });
  });

  it("configHash is short and stable", () => {
    expect(configHash({ a: 1 })).toMatch(/^[0-9a-f]{12}$/);
    expect(configHash({ a: 1 })).toBe(configHash({ a: 1 }));
    expect(configHash({ a: 2 })).not.toBe(configHash({ a: 1 }));
  });
});

describe("MqttCommandHandler", () => {
  let now = 1000;
  const clock = { now: () => now, wall: () => Date.UTC(2026, 0, 1) + now };
  const handler = (burst = 100) => {
    const port = routerPort();
    const h = new MqttCommandHandler({
      topics: T,
      roles: { alice: "operator", erin: "engineer" },
      port,
      rateLimit: { burst, perSecond: 1 },
      clock,
      log: silentLogger(),
    });
    return { h, port };
  };
  const msg = (topic: string, payload: unknown, extra: Partial<IncomingCommand> = {}): IncomingCommand => ({
    topic,
    payload: Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload)),
    retain: false,
    ...extra,
  });

  it("replies to the MQTT 5 response topic with the correlation data, and to the default reply root otherwise", () => {
    const { h } = handler();
    const corr = Buffer.from([1, 2, 3]);
    const r = h.handle(msg("cellio/t1/cmd/set/alice", { point: "robot.speed", value: 1 }, { responseTopic: "cellio/t1/reply/alice/7", correlationData: corr }));
    expect(r).toEqual({ topic: "cellio/t1/reply/alice/7", payload: { accepted: true }, correlationData: corr });
    expect(h.handle(msg("cellio/t1/cmd/set/alice", { point: "robot.speed", value: 2 }))?.topic).toBe("cellio/t1/reply/alice");
  });

  it("MQTT 3.1.1: reply_to and correlation_id from the payload", () => {
    const { h } = handler();
    const r = h.handle(msg("cellio/t1/cmd/ack/erin", { id: "nope", reply_to: "cellio/t1/reply/erin/x", correlation_id: "42" }));
    expect(r).toMatchObject({ topic: "cellio/t1/reply/erin/x", payload: { accepted: false, code: "unknown_target", correlation_id: "42" } });
  });

  it("maps MQTT command kinds onto internal commands with the user's role (unknown users are viewers)", () => {
    const { h, port } = handler();
    h.handle(msg("cellio/t1/cmd/reset_sequence/erin", { id: "main" }));
    h.handle(msg("cellio/t1/cmd/ack/alice", { id: "a1" }));
    h.handle(msg("cellio/t1/cmd/reset_fault/bob", {}));
    expect(port.received.map((r) => [r.command, r.from.role, r.from.caller])).toEqual([
      [{ kind: "reset_sequence", id: "main" }, "engineer", "mqtt:erin"],
      [{ kind: "acknowledge", id: "a1" }, "operator", "mqtt:alice"],
      [{ kind: "reset_fault" }, "viewer", "mqtt:bob"],
    ]);
  });

  it("ignores retained commands and topics that are not commands, without a reply", () => {
    const { h, port } = handler();
    expect(h.handle(msg("cellio/t1/cmd/set/erin", { point: "robot.speed", value: 1 }, { retain: true }))).toBeUndefined();
    expect(h.handle(msg("cellio/t1/cmd/set", { point: "robot.speed", value: 1 }))).toBeUndefined();
    expect(port.received).toEqual([]);
    expect(h.ignored).toBe(2);
  });

  it("rejects before the port: bad reply topic, unknown kind, not JSON, not an object, expired, schema", () => {
    const { h, port } = handler();
    const cases: [IncomingCommand, string][] = [
      [msg("cellio/t1/cmd/set/erin", { point: "robot.speed", value: 1, reply_to: "cellio/t1/status" }), "bad_command"],
      [msg("cellio/t1/cmd/set/erin", { point: "robot.speed", value: 1 }, { responseTopic: "cellio/t1/reply/alice" }), "bad_command"],
      [msg("cellio/t1/cmd/explode/erin", {}), "bad_command"],
      [msg("cellio/t1/cmd/set/erin", "{"), "bad_command"],
      [msg("cellio/t1/cmd/set/erin", ""), "bad_command"],
      [msg("cellio/t1/cmd/set/erin", "[1]"), "bad_command"],
      [msg("cellio/t1/cmd/set/erin", { point: "robot.speed", value: 1, expires: "2025-12-31T23:59:59Z" }), "expired"],
      [msg("cellio/t1/cmd/set/erin", { point: "robot.speed", value: null }), "bad_command"],
      [msg("cellio/t1/cmd/set/erin", { point: "speed", value: 1 }), "bad_command"],
    ];
    for (const [m, code] of cases) expect(h.handle(m)?.payload, m.payload.toString()).toMatchObject({ accepted: false, code });
    // A bad reply topic is answered on the user's own root, never on the topic asked for.
    expect(h.handle(cases[0]![0])?.topic).toBe("cellio/t1/reply/erin");
    expect(port.received).toEqual([]);
    // Not yet expired: goes through.
    expect(h.handle(msg("cellio/t1/cmd/set/erin", { point: "robot.speed", value: 1, expires: Date.UTC(2026, 0, 2) }))?.payload).toEqual({ accepted: true });
  });

  it("rate-limits per user: one user's flood does not block another", () => {
    const { h } = handler(3);
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push(h.handle(msg("cellio/t1/cmd/set/alice", "{"))?.payload);
    expect(codes.map((p) => (p && !p.accepted ? p.code : "ok"))).toEqual(["bad_command", "bad_command", "bad_command", "rate_limited", "rate_limited"]);
    expect(h.handle(msg("cellio/t1/cmd/set/erin", { point: "robot.speed", value: 1 }))?.payload).toEqual({ accepted: true });
    now += 1000; // one token back
    expect(h.handle(msg("cellio/t1/cmd/set/alice", { point: "robot.speed", value: 1 }))?.payload).toEqual({ accepted: true });
  });
});
