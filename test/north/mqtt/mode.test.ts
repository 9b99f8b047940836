/**
 * The control mode on MQTT, end to end: a real CellApp (manual_mode with a
 * key-switch permit) scanning a Modbus simulator, its north side in-thread
 * (the same bridge, mirror and MqttService as the worker), a real mosquitto
 * with the shipped ACL. An engineer's set_mode shows in the retained
 * `<prefix>/mode` and as a `mode` event; a fresh subscriber gets the retained
 * mode; the key switch dropping in manual is a `permit_lost` event and
 * `manual_permitted: false`; back to auto; the mode is published again after
 * a reconnect; diagnostics carry `control_mode`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventPayloadSchema, modePayloadSchema, type ModePayload } from "../../../src/north/mqtt/contract.js";
import { Mosquitto, mosquittoInstalled } from "../../helpers/mosquitto.js";
import { SimDevice, Teardown, startCell, waitFor } from "../../integration/helpers.js";
import { manualModeCellYaml, setKeySwitch } from "../manual-mode-cell.js";
import { ROOT, Tech, parse, retained, sendCommand } from "./helpers.js";

const USERS = { "cellio-demo-cell": "cellio-secret", bob: "bob-pw", erin: "erin-pw", alice: "alice-pw" } as const;
const P = "cellio/demo-cell"; // the cell id the shipped ACL names
const PW_ENV = "CELLIO_TEST_MODE_MQTT_PW";

/** The shipped ACL, unchanged: it must let every user read `<prefix>/mode`. */
function acl(): string {
  return readFileSync(path.join(ROOT, "config", "mosquitto", "cellio.acl"), "utf8");
}

let broker: Mosquitto | undefined;
const t = new Teardown();

beforeAll(async () => {
  if (!mosquittoInstalled()) throw new Error("mosquitto is not installed: apt-get install -y mosquitto (these tests need a real broker)");
  const text = acl();
  expect(text.split("\n")).toContain("pattern read cellio/+/mode");
  broker = await Mosquitto.start({ users: USERS, acl: text });
  process.env[PW_ENV] = USERS["cellio-demo-cell"];
});
afterEach(() => t.run(), 20_000);
afterAll(async () => {
  delete process.env[PW_ENV];
  await broker?.stop();
});

const auth = (user: keyof typeof USERS) => ({ username: user, password: USERS[user] });
const isMode = (m: ModePayload["mode"], extra: (p: ModePayload) => boolean = () => true) => (j: unknown) => {
  const p = modePayloadSchema.safeParse(j);
  return p.success && p.data.mode === m && extra(p.data);
};

describe("the control mode on MQTT (mosquitto, CellApp with manual_mode)", () => {
  it("set_mode by an engineer: retained <prefix>/mode and a mode event; a fresh subscriber gets it; permit lost; back to auto; again after a reconnect", async () => {
    const sim = await SimDevice.start(t);
    setKeySwitch(sim, true);
    const cell = await startCell(
      manualModeCellYaml({
        cellId: "demo-cell",
        port: sim.port,
        periodMs: 20,
        north: `
mqtt:
  url: ${broker!.url}
  username: cellio-demo-cell
  password_env: ${PW_ENV}
  keepalive_s: 2
  reconnect_ms: 200
  publish_interval_ms: 50
  diagnostics_interval_s: 1
  roles: { erin: engineer, alice: operator }
`,
      }),
      t,
    );
    const north = cell.app.north!;
    await waitFor(() => north.status.mqtt?.connected === true, 30_000, "MQTT connected");
    await cell.waitCycle((c) => c.mode === "running", 10_000, "running");

    const bob = await Tech.connect(broker!.url, { protocolVersion: 5, ...auth("bob") });
    t.add(() => bob.end());
    await bob.sub([`${P}/mode`, `${P}/events`, `${P}/diagnostics`]);
    // The retained mode at subscribe time may still be the one published before the key switch was
    // first read (manual_permitted false): wait for the current one (a fresh subscriber is checked below).
    const first = modePayloadSchema.parse(
      parse(await bob.wait(`${P}/mode`, (j) => isMode("auto", (p) => p.manual_permitted)(j), 5000, "mode auto, manual permitted")),
    );
    expect(first).toMatchObject({ mode: "auto", by: "", manual_permitted: true });
    expect(Date.parse(first.since!)).toBeGreaterThan(Date.now() - 120_000);

    // An operator may not switch (manual_mode.roles defaults to engineer): nothing changes.
    const erin = await Tech.connect(broker!.url, { protocolVersion: 5, ...auth("erin") });
    t.add(() => erin.end());
    const alice = await Tech.connect(broker!.url, { protocolVersion: 5, ...auth("alice") });
    t.add(() => alice.end());
    expect(await sendCommand(alice, P, "alice", "set_mode", { mode: "manual" }, 5)).toMatchObject({ accepted: false, code: "forbidden" });

    const before = Date.now();
    const from = bob.messages.length;
    expect(await sendCommand(erin, P, "erin", "set_mode", { mode: "manual" }, 5)).toEqual({ accepted: true });
    const manual = modePayloadSchema.parse(parse(await bob.wait(`${P}/mode`, isMode("manual"), 5000, "mode manual", from)));
    expect(manual).toMatchObject({ mode: "manual", by: "engineer mqtt:erin", manual_permitted: true });
    expect(Date.parse(manual.since!)).toBeGreaterThanOrEqual(before - 50);
    const ev = eventPayloadSchema.parse(parse(await bob.wait(`${P}/events`, (j) => (j as { type?: string }).type === "mode", 5000, "mode event", from)));
    expect(ev).toMatchObject({ type: "mode", id: "demo-cell", event: "switch", from: "auto", to: "manual", by: "engineer mqtt:erin", cause: "set_mode" });
    expect(ev.ts).toBe(manual.since); // the cycle that applied it
    expect(bob.on(`${P}/events`, from).filter((r) => parse(r)["type"] === "mode")).toHaveLength(1);

    // A dashboard opened now gets the mode at once (retained).
    expect(await retained(broker!.url, auth("bob"), `${P}/mode`, 3000)).toEqual(manual);
    const diag = parse(await bob.wait(`${P}/diagnostics`, (j) => (j as { control_mode?: string }).control_mode === "manual", 5000, "diagnostics in manual", from));
    expect(diag).toMatchObject({ mode: "running", control_mode: "manual" });

    // The key switch drops while in manual: permit_lost, the cell stays in manual, not permitted.
    const keyOff = bob.messages.length;
    setKeySwitch(sim, false);
    const lost = eventPayloadSchema.parse(parse(await bob.wait(`${P}/events`, (j) => (j as { event?: string }).event === "permit_lost", 5000, "permit_lost", keyOff)));
    expect(lost).toMatchObject({ type: "mode", id: "demo-cell", from: "manual", to: "manual", by: "cellio" });
    expect(lost.cause).toMatch(/key_manual/);
    const stale = modePayloadSchema.parse(parse(await bob.wait(`${P}/mode`, isMode("manual", (p) => !p.manual_permitted), 5000, "manual, not permitted", keyOff)));
    expect(stale).toMatchObject({ by: "engineer mqtt:erin", since: manual.since }); // still the same switch
    setKeySwitch(sim, true);
    await bob.wait(`${P}/mode`, isMode("manual", (p) => p.manual_permitted), 5000, "permitted again", keyOff);

    // Back to auto.
    const back = bob.messages.length;
    expect(await sendCommand(erin, P, "erin", "set_mode", { mode: "auto" }, 5)).toEqual({ accepted: true });
    const auto = modePayloadSchema.parse(parse(await bob.wait(`${P}/mode`, isMode("auto"), 5000, "mode auto", back)));
    expect(auto.by).toBe("engineer mqtt:erin");
    const ev2 = eventPayloadSchema.parse(parse(await bob.wait(`${P}/events`, (j) => (j as { type?: string }).type === "mode", 5000, "mode event auto", back)));
    expect(ev2).toMatchObject({ event: "switch", from: "manual", to: "auto" });

    // The retained mode is gone from the broker (deleted with cellio's own login): a reconnect publishes it again.
    const own = await Tech.connect(broker!.url, { protocolVersion: 5, clientId: "test-clears-mode", ...auth("cellio-demo-cell") });
    t.add(() => own.end());
    await own.client.publishAsync(`${P}/mode`, "", { qos: 1, retain: true });
    expect(await retained(broker!.url, auth("bob"), `${P}/mode`, 800)).toBeUndefined();
    north.local!.mqtt!.dropConnection();
    await waitFor(() => (north.local?.mqtt?.reconnects ?? 0) >= 1 && north.status.mqtt?.connected === true, 15_000, "MQTT reconnected");
    let again: unknown;
    for (const t0 = Date.now(); again === undefined && Date.now() - t0 < 10_000; ) again = await retained(broker!.url, auth("bob"), `${P}/mode`, 1000);
    expect(again).toEqual(auto);
  }, 90_000);
});
