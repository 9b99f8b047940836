/**
 * The ACL shipped in config/mosquitto/cellio.acl, on a real mosquitto 2:
 * technicians cannot write state, status or someone else's commands, and
 * read only their own replies; user names that are not one plain topic level
 * cannot get around that.
 */
import { describe, expect, it } from "vitest";
import { parse, retained, sendCommand, sleep } from "./helpers.js";
import { P, mosquittoSuite } from "./mosquitto-suite.js";

const { broker, startCellio, tech, auth } = mosquittoSuite({ users: { "x/alice": "x-pw", "+": "plus-pw" } });

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
    expect(await retained(broker().url, auth("bob"), `${P}/points/io1/door_closed`)).toMatchObject({ v: true, q: "good" });
    expect(await retained(broker().url, auth("bob"), `${P}/status`)).toMatchObject({ state: "online" });
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

  it("MQTT 3.1.1 without reply_to: the reply goes to <prefix>/reply/<user>, which the shipped ACL lets that user read", async () => {
    await startCellio();
    const alice = await tech("alice", 4);
    await alice.sub(`${P}/reply/alice/#`); // `#` also matches the parent level itself
    await alice.client.publishAsync(`${P}/cmd/set/alice`, JSON.stringify({ point: "robot.speed", value: 4, correlation_id: "k1" }), { qos: 1 });
    const r = await alice.wait(`${P}/reply/alice`, () => true, 3000, "the reply on the reply root");
    expect(parse(r)).toEqual({ accepted: true, correlation_id: "k1" });
  });
});

/**
 * Why the user name is the last level of the command topic: a subscriber
 * (cellio) cannot learn from MQTT who published a message, but the broker
 * knows who logged in, and its ACL (`pattern write cellio/+/cmd/+/%u`) pins
 * that level to the publisher's own user name. These check the edges of
 * that: names that are not one plain topic level.
 */
describe("the user name in the command topic", () => {
  it("a user whose name contains a slash cannot pose as the user after it; cellio ignores its topic", async () => {
    const { port } = await startCellio();
    const x = await tech("x/alice", 5);
    await x.sub(`${P}/reply/#`);
    await expect(x.client.publishAsync(`${P}/cmd/set/alice`, JSON.stringify({ point: "robot.speed", value: 1 }), { qos: 1 })).rejects.toThrow(/Not authorized/);
    // Its "own" command topic has one level too many for cellio's subscription (<prefix>/cmd/+/+).
    await x.client.publishAsync(`${P}/cmd/set/x/alice`, JSON.stringify({ point: "robot.speed", value: 1 }), { qos: 1 });
    await sleep(500);
    expect(port.received).toEqual([]);
    expect(x.messages).toEqual([]);
  });

  it("a user named + reads nobody's replies: mosquitto refuses %u patterns for names with wildcards", async () => {
    await startCellio();
    const plus = await tech("+", 5);
    await plus.sub(`${P}/reply/+/#`).catch(() => undefined); // refused or granted-but-filtered: either way nothing may arrive
    const alice = await tech("alice", 5);
    expect(await sendCommand(alice, P, "alice", "set", { point: "robot.speed", value: 2 }, 5)).toEqual({ accepted: true });
    await sleep(300);
    expect(plus.messages).toEqual([]);
  });
});
