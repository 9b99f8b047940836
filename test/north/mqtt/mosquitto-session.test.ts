/**
 * Broker restarts and sessions against a real mosquitto 2: a broker killed
 * without persistence (the session is gone: cellio must subscribe again,
 * mqtt.js would not), a clean restart with persistence (the session is kept:
 * sessionPresent true), and MQTT 5 message expiry of commands queued in
 * cellio's session while it is away. Each time birth and the latest state
 * are published again and commands are received.
 */
import { describe, expect, it } from "vitest";
import { Gate } from "./gate.js";
import { Tech, parse, retained, routerPort, sendCommand, sleep } from "./helpers.js";
import { P, mosquittoSuite } from "./mosquitto-suite.js";

const { broker, startCellio, tech, auth, cleanup } = mosquittoSuite();
const durable = mosquittoSuite({ broker: { persistence: true } });

/** sessionPresent of every reconnect cellio logged. */
function reconnects(log: readonly Record<string, unknown>[]): boolean[] {
  return log.filter((l) => l["msg"] === "MQTT reconnected").map((l) => l["sessionPresent"] === true);
}

describe("broker restart", () => {
  it("kill -9 (no persistence) is survived: sessionPresent false, so cellio resubscribes; birth and the LATEST state are retained again, and commands are received again (resubscribed)", async () => {
    const { cell, service, port, log } = await startCellio();
    await sleep(200);
    await broker().kill9();
    // While the broker is away the values keep changing; only the latest must come out.
    for (let v = 100; v <= 150; v++) {
      cell.set(3, v);
      await sleep(5);
    }
    expect(service.outbox.size).toBeLessThanOrEqual(cell.points.length + 10); // latest per topic, not a backlog
    await broker().restart();
    const t0 = Date.now();
    while (service.reconnects < 1 || !service.connected) {
      if (Date.now() - t0 > 8000) throw new Error("cellio did not reconnect after the broker restart");
      await sleep(50);
    }
    // No persistence: the broker forgot the session, so cellio subscribed again itself.
    expect(reconnects(log())).toEqual([false]);
    expect(await retained(broker().url, auth("bob"), `${P}/status`, 3000)).toMatchObject({ state: "online" });
    expect(await retained(broker().url, auth("bob"), `${P}/points/robot/speed`, 3000)).toMatchObject({ v: 150, q: "good" });
    expect(await retained(broker().url, auth("bob"), `${P}/points/io1/door_closed`, 3000)).toMatchObject({ v: true });

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


describe("broker restart with persistence", () => {
  it("a clean restart keeps the session: sessionPresent true, no resubscription needed, commands still received, birth and state published again", async () => {
    // reconnect_ms 2000: time for a watcher to be subscribed before cellio comes back, to see the birth live.
    const { cell, service, port, log } = await durable.startCellio({ reconnect_ms: 2000 }, routerPort(), durable.broker().url);
    // mosquitto 2.0.11 saves a session across its own restart only when the client's current connection
    // asked to resume (clean start false): cellio's first connection starts clean, its reconnects resume.
    service.dropConnection();
    const t0 = Date.now();
    while (service.reconnects < 1 || !service.connected) {
      if (Date.now() - t0 > 8000) throw new Error("cellio did not reconnect after the dropped connection");
      await sleep(50);
    }
    cell.set(3, 77);
    await sleep(300);
    await durable.broker().restart("SIGTERM"); // mosquitto saves retained messages and sessions
    cell.set(3, 78); // changed while cellio is away
    const w = await Tech.connect(durable.broker().url, { ...durable.auth("bob"), protocolVersion: 5 });
    durable.cleanup(() => w.end());
    await w.sub([`${P}/status`, `${P}/points/robot/speed`]);
    await w.wait(`${P}/status`, (j, r) => !r.packet.retain && (j as { state?: string }).state === "online", 8000, "a live birth after the restart");
    await w.wait(`${P}/points/robot/speed`, (j) => (j as { v?: number }).v === 78, 3000, "the value changed during the restart");
    expect(reconnects(log())).toEqual([true, true]); // the dropped connection, then the broker restart
    const t = await durable.tech("alice");
    expect(await sendCommand(t, P, "alice", "set", { point: "robot.speed", value: 9 }, 5)).toEqual({ accepted: true });
    expect(port.received.at(-1)?.command).toEqual({ kind: "set_point", point: "robot.speed", value: 9 });
  });
});

describe("MQTT 5 message expiry", () => {
  it("a command whose expiry passes while cellio is away is deleted by the broker and never applied; one still valid is applied after the reconnect", async () => {
    const gate = await Gate.start(broker().port);
    cleanup(() => gate.stop());
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
