/**
 * Shared setup of the tests against a real mosquitto 2: one broker per test
 * file (its own process, a password file, and the ACL shipped in
 * config/mosquitto/cellio.acl), cellio's MQTT side on a fake cell, and
 * technicians' clients. Everything a test starts is cleaned up after it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { MqttConfigInput } from "../../../src/north/mqtt/config.js";
import { MqttService } from "../../../src/north/mqtt/service.js";
import { memoryLog } from "../../helpers/memory-log.js";
import { Mosquitto, mosquittoInstalled, type MosquittoOptions } from "../../helpers/mosquitto.js";
import { FakeCell, ROOT, Tech, mqttConfig, routerPort, sleep, type FakePort } from "./helpers.js";

export const CELL = "demo-cell"; // the shipped ACL names cellio-demo-cell
export const P = `cellio/${CELL}`;
export const USERS = { "cellio-demo-cell": "cellio-secret", alice: "alice-pw", bob: "bob-pw", erin: "erin-pw" } as Readonly<Record<string, string>>;
export type User = "cellio-demo-cell" | "alice" | "bob" | "erin";
const ENV = { CELLIO_MQTT_PASSWORD: USERS["cellio-demo-cell"]! };
const ROLES = { alice: "operator", erin: "engineer" } as const;

export interface Cellio {
  readonly cell: FakeCell;
  readonly service: MqttService;
  readonly port: FakePort;
  /** cellio's log lines so far (JSON objects). */
  log(): Record<string, unknown>[];
}

export interface MosquittoSuite {
  broker(): Mosquitto;
  /** Run after the current test (last in, first out). */
  cleanup(f: () => Promise<void> | void): void;
  startCellio(extra?: Partial<MqttConfigInput>, port?: FakePort, url?: string): Promise<Cellio>;
  tech(user: string, protocolVersion?: 4 | 5): Promise<Tech>;
  auth(user: string): { username: string; password: string };
}

/** Call at the top of a test file: registers the hooks and returns the helpers. */
export function mosquittoSuite(o: { users?: Readonly<Record<string, string>>; broker?: Partial<MosquittoOptions> } = {}): MosquittoSuite {
  const users = { ...USERS, ...o.users };
  let broker: Mosquitto | undefined;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });
  beforeAll(async () => {
    if (!mosquittoInstalled()) throw new Error("mosquitto is not installed: apt-get install -y mosquitto (these tests need a real broker)");
    const acl = readFileSync(path.join(ROOT, "config", "mosquitto", "cellio.acl"), "utf8");
    broker = await Mosquitto.start({ users, acl, ...o.broker });
  });
  afterAll(async () => {
    await broker?.stop();
  });
  const b = (): Mosquitto => {
    if (!broker) throw new Error("mosquitto not started");
    return broker;
  };
  const suite: MosquittoSuite = {
    broker: b,
    cleanup: (f) => cleanups.push(f),
    async startCellio(extra = {}, port = routerPort(), url = b().url) {
      const cell = new FakeCell(CELL);
      cell.set(0, true, Date.UTC(2026, 0, 2, 3, 4, 5, 678));
      cell.set(1, 5.5);
      cell.set(3, 10);
      const config = mqttConfig({
        url,
        username: "cellio-demo-cell",
        password_env: "CELLIO_MQTT_PASSWORD",
        keepalive_s: 2,
        reconnect_ms: 200,
        publish_interval_ms: 50,
        diagnostics_interval_s: 1,
        roles: ROLES,
        ...extra,
      });
      const { log, lines } = memoryLog();
      const service = new MqttService(config, cell, port, { log, version: "0.0.0-test", configHash: "abc123", env: ENV });
      cleanups.push(async () => {
        cell.stop();
        await service.stop(500);
      });
      await service.start();
      cell.run();
      const t0 = Date.now();
      while (!service.connected) {
        if (Date.now() - t0 > 5000) throw new Error(`cellio did not connect to ${url}:\n${b().log()}`);
        await sleep(20);
      }
      return { cell, service, port, log: () => lines };
    },
    async tech(user, protocolVersion = 5) {
      const t = await Tech.connect(b().url, { username: user, password: users[user], protocolVersion });
      cleanups.push(() => t.end());
      return t;
    },
    auth: (user) => ({ username: user, password: users[user] ?? "" }),
  };
  return suite;
}
