/**
 * cellio's MQTT side against a real mosquitto 2 (its own process, password
 * file, and the ACL shipped in config/mosquitto/cellio.acl): retained state,
 * device loss, the Will, a clean stop, and commands with request/response
 * for MQTT 5 and MQTT 3.1.1 clients. The ACL: mosquitto-acl.test.ts; broker
 * restarts and sessions: mosquitto-session.test.ts; TLS: tls.test.ts.
 */
import { describe, expect, it } from "vitest";
import { birthPayloadSchema, offlinePayloadSchema, pointPayloadSchema } from "../../../src/north/mqtt/contract.js";
import { parse, retained, sendCommand, sleep } from "./helpers.js";
import { P, mosquittoSuite, type User } from "./mosquitto-suite.js";

const { broker, startCellio, tech: techAs, auth } = mosquittoSuite();
const tech = (user: User, protocolVersion: 4 | 5 = 5) => techAs(user, protocolVersion);

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
    expect(await retained(broker().url, auth("bob"), `${P}/status`)).toMatchObject({ state: "offline", reason: "shutdown" });
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

  it("rate-limited per user: the refusal is answered, nothing reaches the port, and another user is not held back", async () => {
    const { port } = await startCellio({ rate_limit: { burst: 2, per_second: 0.1 } });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await command("erin", "reset_fault", {}));
    expect(results.map((r) => r["code"] ?? "ok")).toEqual(["not_ready", "not_ready", "rate_limited"]);
    expect(port.received).toHaveLength(2);
    expect(await command("alice", "set", { point: "robot.speed", value: 5 })).toMatchObject({ accepted: true });
  });
});

