/**
 * cellio's MQTT side against a real mosquitto 2 (its own process, password
 * file, and the ACL shipped in config/mosquitto/cellio.acl): retained state,
 * device loss, the Will, a clean stop, a broker restart, the ACL, and
 * commands with request/response for MQTT 5 and MQTT 3.1.1 clients.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { birthPayloadSchema, offlinePayloadSchema, pointPayloadSchema } from "../../../src/north/mqtt/contract.js";
import type { MqttConfigInput } from "../../../src/north/mqtt/config.js";
import type { MqttService } from "../../../src/north/mqtt/service.js";
import { Mosquitto, mosquittoInstalled } from "../../helpers/mosquitto.js";
import { FakeCell, Gate, ROOT, Tech, mqttConfig, newService, parse, retained, routerPort, sendCommand, sleep, type FakePort } from "./helpers.js";

const CELL = "demo-cell"; // the shipped ACL names cellio-demo-cell
const P = `cellio/${CELL}`;
const USERS = { "cellio-demo-cell": "cellio-secret", alice: "alice-pw", bob: "bob-pw", erin: "erin-pw" };
const ENV = { CELLIO_MQTT_PASSWORD: USERS["cellio-demo-cell"] };
const ROLES = { alice: "operator", erin: "engineer" } as const;

let broker: Mosquitto;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

beforeAll(async () => {
  if (!mosquittoInstalled()) throw new Error("mosquitto is not installed: apt-get install -y mosquitto (these tests need a real broker)");
  const acl = readFileSync(path.join(ROOT, "config", "mosquitto", "cellio.acl"), "utf8");
  broker = await Mosquitto.start({ users: USERS, acl });
});
afterAll(async () => {
  await broker?.stop();
});

function cellioConfig(extra: Partial<MqttConfigInput> = {}, url = broker.url): MqttConfigInput {
  return {
    url,
    username: "cellio-demo-cell",
    password_env: "CELLIO_MQTT_PASSWORD",
    keepalive_s: 2,
    reconnect_ms: 200,
    publish_interval_ms: 50,
    diagnostics_interval_s: 1,
    roles: ROLES,
    ...extra,
  };
}

async function startCellio(extra: Partial<MqttConfigInput> = {}, port: FakePort = routerPort(), url?: string): Promise<{ cell: FakeCell; service: MqttService; port: FakePort }> {
  const cell = new FakeCell(CELL);
  cell.set(0, true, Date.UTC(2026, 0, 2, 3, 4, 5, 678));
  cell.set(1, 5.5);
  cell.set(3, 10);
  const service = newService(mqttConfig(cellioConfig(extra, url)), cell, port, ENV);
  cleanups.push(async () => {
    cell.stop();
    await service.stop(500);
  });
  await service.start();
  cell.run();
  const t0 = Date.now();
  while (!service.connected) {
    if (Date.now() - t0 > 5000) throw new Error(`cellio did not connect to ${broker.url}:\n${broker.log()}`);
    await sleep(20);
  }
  return { cell, service, port };
}

async function tech(user: keyof typeof USERS, protocolVersion: 4 | 5 = 5): Promise<Tech> {
  const t = await Tech.connect(broker.url, { username: user, password: USERS[user], protocolVersion });
  cleanups.push(() => t.end());
  return t;
}

const auth = (user: keyof typeof USERS) => ({ username: user, password: USERS[user] });

describe("retained state", () => {
  it("a technician who subscribes later gets birth, every point {v,q,s,ts} and diagnostics, all retained", async () => {
    await startCellio();
    await sleep(300);
    const t = await tech("alice");
    await t.sub(`${P}/#`);
    const status = await t.wait(`${P}/status`, (j, r) => r.packet.retain && (j as { state?: string }).state === "online", 2000);
    const birth = birthPayloadSchema.parse(parse(status));
    expect(birth).toMatchObject({ version: "0.0.0-test", config_hash: "abc123", contract: 1 });
    expect(Date.parse(birth.started)).toBeGreaterThan(Date.now() - 60_000);

    const door = await t.wait(`${P}/points/io1/door_closed`, (_j, r) => r.packet.retain, 2000);
    expect(pointPayloadSchema.parse(parse(door))).toEqual({ v: true, q: "good", s: "good", ts: "2026-01-02T03:04:05.678Z" });
    const speed = await t.wait(`${P}/points/robot/speed`, (_j, r) => r.packet.retain, 2000);
    expect(parse(speed)).toMatchObject({ v: 10, q: "good" });
    // Never read: unknown, not unavailable.
    const run = await t.wait(`${P}/points/io1/conveyor_run`, (_j, r) => r.packet.retain, 2000);
    expect(parse(run)).toEqual({ v: null, q: "bad", s: "bad_waiting_for_initial_data", ts: null });
    // The retained diagnostics may still be the one published while the cell was starting;
    // they come every second here, so wait for one from the running cell.
    const diag = await t.wait(`${P}/diagnostics`, (j) => (j as { mode?: string }).mode === "running", 4000);
    expect(parse(diag)).toMatchObject({ mode: "running", period_ms: 10, devices: { io1: { state: "good" } } });
  });

  it("a lost device turns its points bad at once (last value and source time kept), with a device event", async () => {
    const { cell } = await startCellio();
    const t = await tech("bob");
    await t.sub([`${P}/points/#`, `${P}/events`]);
    const before = parse(await t.wait(`${P}/points/io1/door_closed`, () => true, 2000));
    const lostAt = Date.now();
    cell.lose("io1");
    const bad = parse(await t.wait(`${P}/points/io1/door_closed`, (j) => (j as { q?: string }).q === "bad", 2000, "door_closed bad"));
    // The fake marks the points bad the moment the device is lost; MQTT adds at most a pacing step or two.
    expect(Date.now() - lostAt).toBeLessThan(1000);
    expect(bad).toEqual({ v: true, q: "bad", s: "bad_no_communication", ts: before["ts"] });
    const ev = parse(await t.wait(`${P}/events`, (j) => (j as { type?: string }).type === "device", 2000));
    expect(ev).toMatchObject({ type: "device", id: "io1", event: "lost", cause: "no answer" });
    // The other device's points are untouched.
    const speed = t.on(`${P}/points/robot/speed`);
    expect(speed.every((r) => parse(r)["q"] === "good")).toBe(true);
  });

  it("publishes a point on change only: a re-read with the same value publishes nothing", async () => {
    const { cell } = await startCellio();
    const t = await tech("bob");
    await t.sub(`${P}/points/robot/speed`);
    await t.wait(`${P}/points/robot/speed`, () => true, 2000);
    const n = t.messages.length;
    cell.set(3, 10); // same value, new source time
    await sleep(400);
    expect(t.messages.length).toBe(n);
    cell.set(3, 11);
    expect(parse(await t.wait(`${P}/points/robot/speed`, (j) => (j as { v?: number }).v === 11, 2000))["q"]).toBe("good");
  });
});

describe("status: birth, Will, clean stop", () => {
  it("a clean stop publishes a retained offline (reason shutdown) and no Will follows", async () => {
    const { service } = await startCellio();
    const t = await tech("bob");
    await t.sub(`${P}/status`);
    await t.wait(`${P}/status`, (j) => (j as { state?: string }).state === "online", 2000);
    await service.stop(1000);
    const off = offlinePayloadSchema.parse(parse(await t.wait(`${P}/status`, (j) => (j as { state?: string }).state === "offline", 2000)));
    expect(off.reason).toBe("shutdown");
    await sleep(500);
    expect(t.on(`${P}/status`).filter((r) => parse(r)["reason"] === "connection lost")).toEqual([]);
    expect(await retained(broker.url, auth("bob"), `${P}/status`)).toMatchObject({ state: "offline", reason: "shutdown" });
  });

  it("a lost connection makes the broker publish the Will (offline, connection lost); the reconnect publishes birth again", async () => {
    const { service } = await startCellio();
    const t = await tech("bob");
    await t.sub(`${P}/status`);
    await t.wait(`${P}/status`, (j) => (j as { state?: string }).state === "online", 2000);
    const from = t.messages.length;
    service.dropConnection();
    await t.wait(`${P}/status`, (j) => (j as { reason?: string }).reason === "connection lost", 3000);
    const back = await t.wait(`${P}/status`, (j, r) => (j as { state?: string }).state === "online" && t.messages.indexOf(r) > from, 5000);
    expect(birthPayloadSchema.safeParse(parse(back)).success).toBe(true);
    expect(service.reconnects).toBeGreaterThanOrEqual(1);
  });
});

describe("broker restart", () => {
  it("is survived: birth and the LATEST state are retained again, and commands are received again (resubscribed)", async () => {
    const { cell, service, port } = await startCellio();
    await sleep(200);
    await broker.kill9();
    // While the broker is away the values keep changing; only the latest must come out.
    for (let v = 100; v <= 150; v++) {
      cell.set(3, v);
      await sleep(5);
    }
    expect(service.outbox.size).toBeLessThanOrEqual(cell.points.length + 10); // latest per topic, not a backlog
    await broker.restart();
    const t0 = Date.now();
    while (service.reconnects < 1 || !service.connected) {
      if (Date.now() - t0 > 8000) throw new Error("cellio did not reconnect after the broker restart");
      await sleep(50);
    }
    expect(await retained(broker.url, auth("bob"), `${P}/status`, 3000)).toMatchObject({ state: "online" });
    expect(await retained(broker.url, auth("bob"), `${P}/points/robot/speed`, 3000)).toMatchObject({ v: 150, q: "good" });
    expect(await retained(broker.url, auth("bob"), `${P}/points/io1/door_closed`, 3000)).toMatchObject({ v: true });

    const t = await tech("alice");
    await t.sub(`${P}/reply/alice/#`);
    await t.client.publishAsync(`${P}/cmd/set/alice`, JSON.stringify({ point: "robot.speed", value: 7 }), {
      qos: 1,
      properties: { responseTopic: `${P}/reply/alice/r1`, correlationData: Buffer.from("after-restart") },
    });
    const reply = await t.wait(`${P}/reply/alice/r1`, () => true, 3000, "a reply after the restart");
    expect(parse(reply)).toEqual({ accepted: true });
    expect(port.received.at(-1)?.command).toEqual({ kind: "set_point", point: "robot.speed", value: 7 });
  });
});

describe("the ACL", () => {
  it("a technician's publish to a state or status topic has no effect, nor a command under someone else's name", async () => {
    const { port } = await startCellio();
    await sleep(300);
    // MQTT 5: the broker refuses with PUBACK reason code 0x87 (not authorized).
    const alice5 = await tech("alice", 5);
    const fake = JSON.stringify({ v: false, q: "good", s: "good", ts: null });
    await expect(alice5.client.publishAsync(`${P}/points/io1/door_closed`, fake, { qos: 1, retain: true })).rejects.toThrow(/Not authorized/);
    await expect(alice5.client.publishAsync(`${P}/cmd/set/erin`, JSON.stringify({ point: "robot.speed", value: 1 }), { qos: 1 })).rejects.toThrow(
      /Not authorized/,
    );
    // MQTT 3.1.1 has no way to say no: the broker acknowledges and drops it.
    const alice4 = await tech("alice", 4);
    await alice4.client.publishAsync(`${P}/points/io1/door_closed`, fake, { qos: 1, retain: true });
    await alice4.client.publishAsync(`${P}/status`, JSON.stringify({ state: "offline" }), { qos: 1, retain: true });
    await alice4.client.publishAsync(`${P}/cmd/set/erin`, JSON.stringify({ point: "robot.speed", value: 1 }), { qos: 1 });
    await sleep(500);
    expect(await retained(broker.url, auth("bob"), `${P}/points/io1/door_closed`)).toMatchObject({ v: true, q: "good" });
    expect(await retained(broker.url, auth("bob"), `${P}/status`)).toMatchObject({ state: "online" });
    expect(port.received).toEqual([]);
  });

  it("replies reach only their user, even a # subscriber", async () => {
    await startCellio();
    const bob = await tech("bob");
    await bob.sub("cellio/#");
    const alice = await tech("alice");
    await alice.sub(`${P}/reply/alice/#`);
    await alice.client.publishAsync(`${P}/cmd/set/alice`, JSON.stringify({ point: "robot.speed", value: 3 }), {
      qos: 1,
      properties: { responseTopic: `${P}/reply/alice/x`, correlationData: Buffer.from("1") },
    });
    await alice.wait(`${P}/reply/alice/x`, () => true, 3000);
    await sleep(300);
    expect(bob.messages.filter((m) => m.topic.includes("/reply/") || m.topic.includes("/cmd/"))).toEqual([]);
  });
});

describe.each([5, 4] as const)("commands from an MQTT %i client", (version) => {
  async function command(user: "alice" | "bob" | "erin", kind: string, payload: string | object): Promise<Record<string, unknown>> {
    return sendCommand(await tech(user, version), P, user, kind, payload, version);
  }

  it("accepted: an operator sets an operator-writable point; the command reaches the port with the user's role", async () => {
    const { port } = await startCellio();
    expect(await command("alice", "set", { point: "robot.speed", value: 42 })).toMatchObject({ accepted: true });
    expect(port.received).toHaveLength(1);
    expect(port.received[0]!.command).toEqual({ kind: "set_point", point: "robot.speed", value: 42 });
    expect(port.received[0]!.from).toMatchObject({ role: "operator", caller: "mqtt:alice" });
  });

  it("rejected by role: a user not in mqtt.roles is a viewer; an operator may not reset an engineer-only interlock", async () => {
    await startCellio();
    expect(await command("bob", "set", { point: "robot.speed", value: 1 })).toMatchObject({ accepted: false, code: "forbidden" });
    expect(await command("alice", "reset_interlock", { id: "door" })).toMatchObject({ accepted: false, code: "forbidden" });
    expect(await command("erin", "reset_interlock", { id: "door" })).toMatchObject({ accepted: true });
  });

  it("rejected by interlock: an output forced by a tripped interlock cannot be set, even by an engineer", async () => {
    await startCellio();
    expect(await command("erin", "set", { point: "io1.conveyor_run", value: true })).toMatchObject({ accepted: false, code: "interlocked" });
  });

  it("malformed JSON, wrong types, unknown points and unknown kinds are rejected with a reply and change nothing", async () => {
    const { port } = await startCellio({ rate_limit: { burst: 20, per_second: 20 } });
    expect(await command("erin", "set", "{not json")).toMatchObject({ accepted: false, code: "bad_command" });
    expect(await command("erin", "set", { point: "robot.speed", value: [1] })).toMatchObject({ accepted: false, code: "bad_command" });
    expect(await command("erin", "set", { point: "robot.speed", value: 1, extra: 1 })).toMatchObject({ accepted: false, code: "bad_command" });
    expect(await command("erin", "reboot", { id: "x" })).toMatchObject({ accepted: false, code: "bad_command" });
    // These pass the MQTT schema and are refused by the command router: nothing is queued.
    expect(await command("erin", "set", { point: "robot.sped", value: 1 })).toMatchObject({ accepted: false, code: "unknown_target" });
    expect(await command("erin", "set", { point: "robot.speed", value: "fast" })).toMatchObject({ accepted: false, code: "bad_value" });
    expect(await command("erin", "set", { point: "io1.pressure", value: 1 })).toMatchObject({ accepted: false, code: "read_only" });
    expect(port.received.every((r) => r.command.kind === "set_point")).toBe(true);
    expect(port.received).toHaveLength(3);
  });

  it("expired: a payload `expires` in the past is rejected with a reply and never reaches the port", async () => {
    const { port } = await startCellio();
    const expires = new Date(Date.now() - 1000).toISOString();
    expect(await command("erin", "ack", { id: "a1", expires })).toMatchObject({ accepted: false, code: "expired" });
    expect(await command("erin", "ack", { id: "a1", expires: Date.now() - 1 })).toMatchObject({ accepted: false, code: "expired" });
    expect(port.received).toEqual([]);
  });

  it("rate-limited per user", async () => {
    await startCellio({ rate_limit: { burst: 2, per_second: 0.1 } });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await command("erin", "reset_fault", {}));
    expect(results.map((r) => r["code"] ?? "ok")).toEqual(["not_ready", "not_ready", "rate_limited"]);
  });
});

describe("MQTT 5 message expiry", () => {
  it("a command whose expiry passes while cellio is away is deleted by the broker and never applied; one still valid is applied after the reconnect", async () => {
    const gate = await Gate.start(broker.port);
    cleanups.push(() => gate.stop());
    const { service, port } = await startCellio({ session_expiry_s: 60 }, routerPort(), `mqtt://127.0.0.1:${gate.port}`);
    // Let the first connection settle: the reconnect below must resume this session.
    await sleep(200);
    gate.down();
    const t = await tech("erin");
    await t.sub(`${P}/reply/erin/#`);
    const send = (corr: string, expiry: number) =>
      t.client.publishAsync(`${P}/cmd/set/erin`, JSON.stringify({ point: "robot.speed", value: expiry }), {
        qos: 1,
        properties: { responseTopic: `${P}/reply/erin/${corr}`, correlationData: Buffer.from(corr), messageExpiryInterval: expiry },
      });
    await send("short", 1);
    await send("long", 60);
    await sleep(2500);
    gate.up();
    await t.wait(`${P}/reply/erin/long`, () => true, 8000, "the reply to the still-valid command");
    await sleep(300);
    expect(t.on(`${P}/reply/erin/short`)).toEqual([]);
    expect(port.received.map((r) => r.command)).toEqual([{ kind: "set_point", point: "robot.speed", value: 60 }]);
    expect(service.reconnects).toBeGreaterThanOrEqual(1);
  });
});
