/**
 * The embedded broker (aedes, MQTT 3.1.1): the same contract as against
 * mosquitto, with the broker's rules enforced in-process: logins, state
 * topics only cellio may write, commands only under one's own name, replies
 * only to their user.
 */
import { afterEach, describe, expect, it } from "vitest";
import { birthPayloadSchema, offlinePayloadSchema, pointPayloadSchema } from "../../../src/north/mqtt/contract.js";
import type { MqttConfigInput } from "../../../src/north/mqtt/config.js";
import type { MqttService } from "../../../src/north/mqtt/service.js";
import { FakeCell, Tech, mqttConfig, newService, parse, retained, routerPort, sendCommand, sleep, type FakePort } from "./helpers.js";

const P = "cellio/t1";
const ENV = { ALICE_PW: "alice-pw", ERIN_PW: "erin-pw", BOB_PW: "bob-pw" };
const PASSWORDS = { alice: ENV.ALICE_PW, erin: ENV.ERIN_PW, bob: ENV.BOB_PW } as const;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function startCellio(extra: Partial<MqttConfigInput> = {}): Promise<{ cell: FakeCell; service: MqttService; port: FakePort; url: string }> {
  const cell = new FakeCell("t1");
  cell.set(0, true, Date.UTC(2026, 0, 2, 3, 4, 5, 678));
  cell.set(1, 5.5);
  const port = routerPort();
  const config = mqttConfig({
    broker: "embedded",
    embedded: {
      port: 0,
      users: { alice: { password_env: "ALICE_PW" }, erin: { password_env: "ERIN_PW" }, bob: { password_env: "BOB_PW" } },
    },
    publish_interval_ms: 50,
    roles: { alice: "operator", erin: "engineer" },
    ...extra,
  });
  const service = newService(config, cell, port, ENV);
  cleanups.push(async () => {
    cell.stop();
    await service.stop(500);
  });
  await service.start();
  cell.run();
  const t0 = Date.now();
  while (!service.connected) {
    if (Date.now() - t0 > 5000) throw new Error("cellio did not connect to its embedded broker");
    await sleep(20);
  }
  return { cell, service, port, url: service.url! };
}

async function tech(url: string, user?: keyof typeof PASSWORDS): Promise<Tech> {
  const t = await Tech.connect(url, { protocolVersion: 4, ...(user ? { username: user, password: PASSWORDS[user] } : {}) });
  cleanups.push(() => t.end());
  return t;
}

describe("embedded broker", () => {
  it("an anonymous dashboard that subscribes later gets birth and every point, retained", async () => {
    const { url } = await startCellio();
    await sleep(200);
    const t = await tech(url);
    await t.sub(`${P}/#`);
    const status = await t.wait(`${P}/status`, (_j, r) => r.packet.retain, 2000);
    expect(birthPayloadSchema.parse(parse(status)).state).toBe("online");
    const door = await t.wait(`${P}/points/io1/door_closed`, (_j, r) => r.packet.retain, 2000);
    expect(pointPayloadSchema.parse(parse(door))).toEqual({ v: true, q: "good", s: "good", ts: "2026-01-02T03:04:05.678Z" });
  });

  it("refuses a wrong password and an unknown user", async () => {
    const { url } = await startCellio();
    await expect(Tech.connect(url, { protocolVersion: 4, username: "alice", password: "nope", reconnectPeriod: 0 })).rejects.toThrow();
    await expect(Tech.connect(url, { protocolVersion: 4, username: "mallory", password: "x", reconnectPeriod: 0 })).rejects.toThrow();
    await expect(Tech.connect(url, { protocolVersion: 4, username: "cellio", password: "guess", reconnectPeriod: 0 })).rejects.toThrow();
  });

  it("refuses anonymous clients when allow_anonymous is false", async () => {
    const { url } = await startCellio({ embedded: { port: 0, allow_anonymous: false } });
    await expect(Tech.connect(url, { protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow();
  });

  it("a technician's publish to a state topic, a command under another name, or an anonymous command has no effect", async () => {
    const { url, port } = await startCellio();
    await sleep(200);
    const alice = await tech(url, "alice");
    alice.client.publish(`${P}/points/io1/door_closed`, JSON.stringify({ v: false, q: "good", s: "good", ts: null }), { qos: 1, retain: true });
    const erinName = await tech(url, "alice");
    erinName.client.publish(`${P}/cmd/set/erin`, JSON.stringify({ point: "robot.speed", value: 1 }), { qos: 1 });
    const anon = await tech(url);
    anon.client.publish(`${P}/cmd/set/anonymous`, JSON.stringify({ point: "robot.speed", value: 1 }), { qos: 1 });
    const retainedCmd = await tech(url, "erin");
    retainedCmd.client.publish(`${P}/cmd/set/erin`, JSON.stringify({ point: "robot.speed", value: 2 }), { qos: 1, retain: true });
    await sleep(500);
    expect(await retained(url, {}, `${P}/points/io1/door_closed`)).toMatchObject({ v: true, q: "good" });
    expect(port.received).toEqual([]);
  });

  it("commands from an MQTT 3.1.1 client: accepted, rejected by role, by interlock, malformed, expired; each with its correlated reply", async () => {
    const { url, port } = await startCellio({ rate_limit: { burst: 20, per_second: 20 } });
    const alice = await tech(url, "alice");
    const bob = await tech(url, "bob");
    const erin = await tech(url, "erin");
    expect(await sendCommand(alice, P, "alice", "set", { point: "robot.speed", value: 42 }, 4)).toMatchObject({ accepted: true });
    expect(port.received.at(-1)).toMatchObject({ command: { kind: "set_point", point: "robot.speed", value: 42 }, from: { role: "operator", caller: "mqtt:alice" } });
    expect(await sendCommand(bob, P, "bob", "set", { point: "robot.speed", value: 1 }, 4)).toMatchObject({ accepted: false, code: "forbidden" });
    expect(await sendCommand(alice, P, "alice", "reset_interlock", { id: "door" }, 4)).toMatchObject({ accepted: false, code: "forbidden" });
    expect(await sendCommand(erin, P, "erin", "set", { point: "io1.conveyor_run", value: true }, 4)).toMatchObject({ accepted: false, code: "interlocked" });
    const n = port.received.length;
    expect(await sendCommand(erin, P, "erin", "set", "[1,2", 4)).toMatchObject({ accepted: false, code: "bad_command" });
    expect(await sendCommand(erin, P, "erin", "set", { point: "robot.speed", value: { x: 1 } }, 4)).toMatchObject({ accepted: false, code: "bad_command" });
    expect(await sendCommand(erin, P, "erin", "ack", { id: "a", expires: Date.now() - 1 }, 4)).toMatchObject({ accepted: false, code: "expired" });
    expect(port.received.length).toBe(n);
  });

  it("rate-limits commands per user, with a correlated reply; another user is not held back", async () => {
    const { url, port } = await startCellio({ rate_limit: { burst: 2, per_second: 0.1 } });
    const erin = await tech(url, "erin");
    const alice = await tech(url, "alice");
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await sendCommand(erin, P, "erin", "set", { point: "robot.speed", value: i }, 4))["code"] ?? "ok");
    expect(codes).toEqual(["ok", "ok", "rate_limited"]);
    expect(port.received).toHaveLength(2);
    expect(await sendCommand(alice, P, "alice", "set", { point: "robot.speed", value: 9 }, 4)).toMatchObject({ accepted: true });
  });

  it("a reply topic outside the user's reply root is refused (reply on the root) and nothing is applied", async () => {
    const { url, port } = await startCellio();
    const alice = await tech(url, "alice");
    await alice.sub(`${P}/reply/alice/#`);
    alice.client.publish(`${P}/cmd/set/alice`, JSON.stringify({ point: "robot.speed", value: 5, reply_to: `${P}/points/robot/speed` }), { qos: 1 });
    const r = await alice.wait(`${P}/reply/alice`, () => true, 3000);
    expect(parse(r)).toMatchObject({ accepted: false, code: "bad_command" });
    expect(port.received).toEqual([]);
    expect(await retained(url, {}, `${P}/points/robot/speed`)).toMatchObject({ q: "bad" });
  });

  it("replies and commands are not delivered to other users, even a # subscriber", async () => {
    const { url } = await startCellio();
    const spy = await tech(url, "bob");
    await spy.sub("#");
    const alice = await tech(url, "alice");
    await sendCommand(alice, P, "alice", "set", { point: "robot.speed", value: 3 }, 4);
    await sleep(200);
    expect(spy.messages.filter((m) => m.topic.includes("/reply/") || m.topic.includes("/cmd/"))).toEqual([]);
    expect(spy.messages.some((m) => m.topic === `${P}/points/robot/speed`)).toBe(true);
  });

  it("publishes interlock and sequence state (retained, on change) and trip, step, device and command events", async () => {
    const { url, cell } = await startCellio();
    cell.interlockStates = [{ id: "door", permitted: true, tripped: false, latched: true, tripCount: 0, lastCause: "", lastTripWallMs: 0 }];
    cell.sequenceStates = [{ id: "main", step: "idle", lastFault: "", faulted: false }];
    const t = await tech(url);
    await t.sub([`${P}/interlocks/#`, `${P}/sequences/#`, `${P}/events`]);
    await t.wait(`${P}/interlocks/door`, (j) => (j as { tripped?: boolean }).tripped === false, 2000);
    await t.wait(`${P}/sequences/main`, (j) => (j as { step?: string }).step === "idle", 2000);
    const from = t.messages.length;
    const now = Date.now();
    cell.interlockStates = [{ ...cell.interlockStates[0]!, permitted: false, tripped: true, tripCount: 1, lastCause: "permit false: io1.door_closed", lastTripWallMs: now }];
    cell.sequenceStates = [{ id: "main", step: "pick", lastFault: "", faulted: false }];
    cell.emit({
      interlockEvents: [{ kind: "trip", id: "door", cycle: 5, wallMs: now, cause: "permit false: io1.door_closed" }],
      sequenceEvents: [{ kind: "step", id: "main", from: "idle", to: "pick", cycle: 5, wallMs: now, cause: "io1.part_present" }],
      commands: [{ cycle: 5, command: { kind: "reset_interlock" }, role: "operator", caller: "mqtt:alice", result: { accepted: false, code: "interlocked", reason: "permit false" } }],
    });
    const il = await t.wait(`${P}/interlocks/door`, (j) => (j as { tripped?: boolean }).tripped === true, 2000, "door tripped", from);
    expect(parse(il)).toMatchObject({ permitted: false, trip_count: 1, last_cause: "permit false: io1.door_closed", last_trip: new Date(now).toISOString() });
    expect(il.packet.retain).toBe(false); // live delivery; a later subscriber gets it retained:
    expect(await retained(url, {}, `${P}/interlocks/door`)).toMatchObject({ tripped: true });
    await t.wait(`${P}/sequences/main`, (j) => (j as { step?: string }).step === "pick", 2000, "step pick", from);
    const events = () => t.on(`${P}/events`, from).map(parse);
    await t.wait(`${P}/events`, (j) => (j as { type?: string }).type === "command", 2000, "command event", from);
    expect(events()).toEqual([
      { ts: new Date(now).toISOString(), type: "interlock", id: "door", event: "trip", cause: "permit false: io1.door_closed", cycle: 5 },
      { ts: new Date(now).toISOString(), type: "sequence", id: "main", event: "step", cause: "io1.part_present", from: "idle", to: "pick", cycle: 5 },
      expect.objectContaining({ type: "command", id: "reset_interlock", event: "refused", cause: "interlocked: permit false", caller: "mqtt:alice", cycle: 5 }),
    ]);
    expect(t.on(`${P}/events`, from).every((r) => !r.packet.retain)).toBe(true);
    // Subscribed with QoS 1: delivered with QoS 1 only if cellio published them with QoS 1 (qos.events).
    expect(t.on(`${P}/events`, from).map((r) => r.packet.qos)).toEqual([1, 1, 1]);
  });

  it("a clean stop publishes offline (reason shutdown) before the broker goes", async () => {
    const { url, service } = await startCellio();
    const t = await tech(url);
    await t.sub(`${P}/status`);
    await t.wait(`${P}/status`, (j) => (j as { state?: string }).state === "online", 2000);
    await service.stop(1000);
    const off = await t.wait(`${P}/status`, (j) => (j as { state?: string }).state === "offline", 2000);
    expect(offlinePayloadSchema.parse(parse(off)).reason).toBe("shutdown");
  });
});
