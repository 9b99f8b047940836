/**
 * cellio over TLS to a real mosquitto 2, with a PKI made by `openssl` at test
 * time: the broker's certificate is verified against the configured CA
 * (mqtt.tls.ca), cellio logs in with a client certificate (mosquitto
 * `require_certificate true`) and its password, and a broker whose
 * certificate is not signed by that CA (a man in the middle) or names
 * another host is refused before cellio sends anything.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import mqtt, { type IClientOptions } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { MqttConfigInput } from "../../../src/north/mqtt/config.js";
import { MqttService } from "../../../src/north/mqtt/service.js";
import { memoryLog } from "../../helpers/memory-log.js";
import { Mosquitto, mosquittoInstalled } from "../../helpers/mosquitto.js";
import { makePki, opensslInstalled, type Pki } from "../../helpers/tls-certs.js";
import { FakeCell, ROOT, Tech, mqttConfig, parse, routerPort, sendCommand, sleep } from "./helpers.js";

const P = "cellio/demo-cell";
const USERS = { "cellio-demo-cell": "cellio-secret", alice: "alice-pw" };
const ENV = { CELLIO_MQTT_PASSWORD: USERS["cellio-demo-cell"] };
const SERVER_NAMES = "IP:127.0.0.1,DNS:localhost";

let pki: Pki;
let broker: Mosquitto;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

beforeAll(async () => {
  if (!mosquittoInstalled()) throw new Error("mosquitto is not installed: apt-get install -y mosquitto");
  if (!opensslInstalled()) throw new Error("openssl is not installed: apt-get install -y openssl (these tests make their certificates)");
  pki = makePki();
  pki.ca("ca");
  pki.ca("rogue");
  pki.leaf("broker", "ca", { cn: "127.0.0.1", server: { altNames: SERVER_NAMES } });
  pki.leaf("mitm", "rogue", { cn: "127.0.0.1", server: { altNames: SERVER_NAMES } });
  pki.leaf("elsewhere", "ca", { cn: "broker.example", server: { altNames: "DNS:broker.example" } });
  pki.leaf("cellio", "ca", { cn: "cellio-demo-cell" });
  pki.leaf("alice", "ca", { cn: "alice" });
  pki.leaf("mallory", "rogue", { cn: "alice" });
  const acl = readFileSync(path.join(ROOT, "config", "mosquitto", "cellio.acl"), "utf8");
  const ca = pki.file("ca.pem");
  broker = await Mosquitto.start({
    users: USERS,
    acl,
    tls: [
      // 0: the real broker, client certificates required.
      { ca, cert: pki.file("broker.pem"), key: pki.file("broker.key"), requireCertificate: true },
      // 1: a man in the middle: a certificate for the right address from another CA.
      { ca, cert: pki.file("mitm.pem"), key: pki.file("mitm.key") },
      // 2: a certificate from the right CA for another host.
      { ca, cert: pki.file("elsewhere.pem"), key: pki.file("elsewhere.key") },
    ],
  });
}, 60_000);
afterAll(async () => {
  await broker?.stop();
  pki?.remove();
});

/** cellio's MQTT side on `url`, TLS files named relative to the PKI directory (as a config names them relative to itself). */
async function startCellio(url: string, tls: NonNullable<MqttConfigInput["tls"]>): Promise<{ service: MqttService; log: () => string }> {
  const cell = new FakeCell("demo-cell");
  cell.set(3, 10);
  const { log, text } = memoryLog();
  const config = mqttConfig({ url, username: "cellio-demo-cell", password_env: "CELLIO_MQTT_PASSWORD", keepalive_s: 5, reconnect_ms: 200, publish_interval_ms: 50, roles: { alice: "operator" }, tls });
  const service = new MqttService(config, cell, routerPort(), { log, version: "0.0.0-test", configHash: "abc123", env: ENV, baseDir: pki.dir });
  cleanups.push(async () => {
    cell.stop();
    await service.stop(500);
  });
  await service.start();
  cell.run();
  return { service, log: text };
}

async function waitConnected(service: MqttService, log: () => string): Promise<void> {
  const t0 = Date.now();
  while (!service.connected) {
    if (Date.now() - t0 > 8000) throw new Error(`cellio did not connect over TLS:\n${log()}\n${broker.log()}`);
    await sleep(20);
  }
}

/** The error a client gets when it tries `url` once (fails the test if it connects). */
async function refusal(url: string, opts: IClientOptions): Promise<string> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  try {
    return await new Promise<string>((resolve, reject) => {
      let err = "";
      c.on("connect", () => reject(new Error(`connected to ${url}, but should have been refused`)));
      c.on("error", (e) => (err ||= e.message));
      c.on("close", () => setTimeout(() => resolve(err || "closed without an error"), 50));
    });
  } finally {
    await c.endAsync(true);
  }
}

/** The `err` of every "MQTT connection error" line in a log, one per line. */
function connectionErrors(log: string): string {
  return log
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { msg?: string; err?: string })
    .filter((l) => l.msg === "MQTT connection error")
    .map((l) => l.err ?? "")
    .join("\n");
}

const read = (name: string): Buffer => readFileSync(pki.file(name));
const aliceTls = (): IClientOptions => ({ ca: read("ca.pem"), cert: read("alice.pem"), key: read("alice.key"), username: "alice", password: USERS.alice });
/** How many times mosquitto logged a successful CONNECT of cellio's user so far. */
const cellioLogins = (): number => broker.log().split("\n").filter((l) => l.includes("u'cellio-demo-cell'")).length;

describe("TLS to mosquitto", () => {
  it("verifies the broker against mqtt.tls.ca, logs in with a client certificate, publishes and takes commands", async () => {
    const { service, log } = await startCellio(broker.tlsUrl(0), { ca: "ca.pem", cert: "cellio.pem", key: "cellio.key" });
    await waitConnected(service, log);
    expect(cellioLogins()).toBeGreaterThan(0); // what the refusal tests count
    const alice = await Tech.connect(broker.tlsUrl(0), { ...aliceTls(), protocolVersion: 5 });
    cleanups.push(() => alice.end());
    const socket = alice.client.stream as TLSSocket;
    expect(socket.encrypted && socket.authorized).toBe(true);
    await alice.sub(`${P}/#`);
    const birth = await alice.wait(`${P}/status`, (j, r) => r.packet.retain && (j as { state?: string }).state === "online", 3000, "the birth over TLS");
    expect(parse(birth)).toMatchObject({ version: "0.0.0-test", config_hash: "abc123" });
    expect(parse(await alice.wait(`${P}/points/robot/speed`, () => true, 3000))).toMatchObject({ v: 10, q: "good" });
    expect(await sendCommand(alice, P, "alice", "set", { point: "robot.speed", value: 7 }, 5)).toEqual({ accepted: true });
  });

  it("the broker refuses a client without a certificate or with one from another CA; cellio without its certificate never logs in", async () => {
    const base = { ca: read("ca.pem"), username: "alice", password: USERS.alice };
    expect(await refusal(broker.tlsUrl(0), base)).not.toBe("");
    expect(await refusal(broker.tlsUrl(0), { ...base, cert: read("mallory.pem"), key: read("mallory.key") })).not.toBe("");
    const before = cellioLogins();
    const { service, log } = await startCellio(broker.tlsUrl(0), { ca: "ca.pem" });
    await sleep(2000); // several reconnect attempts (reconnect_ms 200)
    expect(service.connected).toBe(false);
    expect(service.reconnects).toBe(0);
    expect(cellioLogins()).toBe(before);
    expect(connectionErrors(log())).not.toBe("");
    // The listener itself works for a client with a certificate.
    const alice = await Tech.connect(broker.tlsUrl(0), aliceTls());
    await alice.end();
  });

  it("refuses a broker whose certificate is not signed by the configured CA (man in the middle): nothing is sent to it", async () => {
    // The listener is up and speaks MQTT: a client that does not verify gets in (and hands over its password).
    const careless = await Tech.connect(broker.tlsUrl(1), { ...aliceTls(), rejectUnauthorized: false });
    await careless.end();
    const before = cellioLogins();
    const { service, log } = await startCellio(broker.tlsUrl(1), { ca: "ca.pem", cert: "cellio.pem", key: "cellio.key" });
    await sleep(2000);
    expect(service.connected).toBe(false);
    expect(cellioLogins()).toBe(before); // the handshake failed before CONNECT: no password left cellio
    expect(connectionErrors(log())).toMatch(/unable to verify|self.signed|certificate/);
  });

  it("refuses a certificate from the right CA that names another host", async () => {
    const { service, log } = await startCellio(broker.tlsUrl(2), { ca: "ca.pem", cert: "cellio.pem", key: "cellio.key" });
    await sleep(2000);
    expect(service.connected).toBe(false);
    expect(connectionErrors(log())).toMatch(/altnames|does not match/i);
  });

  it("tls.reject_unauthorized: false connects to anyone, and says so at warn", async () => {
    const { service, log } = await startCellio(broker.tlsUrl(1), { ca: "ca.pem", cert: "cellio.pem", key: "cellio.key", reject_unauthorized: false });
    await waitConnected(service, log);
    expect(log()).toContain("NOT verified");
  });

  it("an unreadable TLS file stops MQTT from starting with an error that names the field and the file", async () => {
    const cell = new FakeCell("demo-cell");
    const config = mqttConfig({ url: broker.tlsUrl(0), username: "cellio-demo-cell", tls: { ca: "nope.pem" } });
    const { log } = memoryLog();
    const service = new MqttService(config, cell, routerPort(), { log, version: "t", configHash: "t", env: ENV, baseDir: pki.dir });
    await expect(service.start()).rejects.toThrow(`CELLIO_ERR_CONFIG_IO: mqtt.tls.ca: cannot read ${path.join(pki.dir, "nope.pem")}`);
    expect(service.connected).toBe(false);
    await service.stop(100);
  });
});
