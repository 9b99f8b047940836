/**
 * MQTT benchmark: 1,000 points that change every 10 ms cycle, published to a
 * real mosquitto on this machine (QoS 1, retained, 100 ms pacing).
 *
 * - messages/s cellio gets acknowledged by the broker (and a subscriber's
 *   receive rate, same run);
 * - loop lateness with MQTT against the same cell without MQTT (baseline,
 *   same run);
 * - memory held while the broker is down for `seconds` (the Outbox keeps the
 *   latest per topic: it must stay flat), and the time to publish the whole
 *   state again once the broker is back.
 *
 * Needs `mosquitto` (apt-get install mosquitto). Prints figures, asserts nothing.
 */
import { CellApp } from "../../src/app.js";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/infra/logger.js";
import { mqttConfigSchema } from "../../src/north/mqtt/config.js";
import { cellViewOf, type CommandPort } from "../../src/north/mqtt/ports.js";
import { MqttService } from "../../src/north/mqtt/service.js";
import { ModbusTcpSimServer, RegisterBank } from "../../simulators/modbus/index.js";
import mqtt from "mqtt";
import { Mosquitto } from "../helpers/mosquitto.js";
import { cpuMeter, sleep, type Figure } from "./util.js";

const POINTS = 1000;
const PERIOD = 10;
const CELL = "bench-mqtt";
const USERS = { "cellio-bench-mqtt": "bench", watcher: "watch" };
const ACL = `pattern read cellio/#
user cellio-bench-mqtt
topic readwrite cellio/${CELL}/#
`;

function cellYaml(port: number): string {
  const points = Array.from({ length: POINTS }, (_, i) => `      p${i}: { address: "hr:${i}" }`).join("\n");
  return `
version: 1
cell: { id: ${CELL} }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 5, output_budget_ms: 3 }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 50
    stale_after_ms: 1000
    points:
${points}
`;
}

const noCommands: CommandPort = { submit: () => ({ accepted: false, code: "not_ready", reason: "benchmark" }) };

interface Window {
  latenessP99: number;
  latenessMax: number;
  cycles: number;
  skipped: number;
  cpuPct: number;
}

/** Run the cell for `seconds` and return the loop figures of that window. */
async function window(app: CellApp, seconds: number, during?: () => void): Promise<Window> {
  app.loop.stats.resetWindow();
  const s0 = app.loop.stats.summary();
  const cpu = cpuMeter();
  const timer = during ? setInterval(during, 1000) : undefined;
  await sleep(seconds * 1000);
  clearInterval(timer);
  const s = app.loop.stats.summary();
  return { latenessP99: s.lateness.p99, latenessMax: s.lateness.max, cycles: s.cycles - s0.cycles, skipped: s.skipped - s0.skipped, cpuPct: cpu() };
}

export async function runMqttBench(seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  const add = (kase: string, metric: string, value: number, unit: string, baseline?: number, baselineName?: string): void => {
    figures.push({ bench: "mqtt", case: kase, metric, value, unit, ...(baseline === undefined ? {} : { baseline, baselineName }) });
  };

  const bank = new RegisterBank();
  const sim = new ModbusTcpSimServer({ port: 0, units: bank });
  const { port } = await sim.start();
  // Every register changes every cycle.
  let k = 0;
  const changer = setInterval(() => {
    k = (k + 1) & 0x7fff;
    const words = bank.holdingRegisters;
    for (let i = 0; i < POINTS; i++) words[i] = (k + i) & 0xffff;
  }, PERIOD);
  // As config/mosquitto/mosquitto.conf: Receive Maximum 100 (QoS 1 publishes in flight from cellio).
  const broker = await Mosquitto.start({ users: USERS, acl: ACL, extra: ["max_inflight_messages 100", "max_queued_messages 1000"] });
  const app = new CellApp(loadConfigText(cellYaml(port), "bench-mqtt"), { log: silentLogger() });
  let service: MqttService | undefined;
  let watcher: mqtt.MqttClient | undefined;
  try {
    await app.start();
    await sleep(1000); // connect, first good scan

    const without = await window(app, seconds);
    add("1000 points / 10 ms, no MQTT", "lateness p99", without.latenessP99, "ms");
    add("1000 points / 10 ms, no MQTT", "lateness max", without.latenessMax, "ms");
    add("1000 points / 10 ms, no MQTT", "cpu", without.cpuPct, "% core");

    const config = mqttConfigSchema.parse({
      url: broker.url,
      username: "cellio-bench-mqtt",
      password_env: "BENCH_MQTT_PW",
      publish_interval_ms: 100,
      reconnect_ms: 500,
      ...(process.env.BENCH_MQTT_EXTRA ? (JSON.parse(process.env.BENCH_MQTT_EXTRA) as object) : {}),
    });
    service = new MqttService(config, cellViewOf(app), noCommands, {
      log: silentLogger(),
      version: "bench",
      configHash: "bench",
      env: { BENCH_MQTT_PW: USERS["cellio-bench-mqtt"] },
    });
    await service.start();
    let received = 0;
    watcher = await mqtt.connectAsync(broker.url, { username: "watcher", password: USERS.watcher });
    watcher.on("message", () => received++);
    await watcher.subscribeAsync(`cellio/${CELL}/points/#`, { qos: 0 });
    await sleep(1000);
    const p0 = service.counters.published;
    const r0 = received;
    const withMqtt = await window(app, seconds);
    const rate = (service.counters.published - p0) / seconds;
    add("1000 points / 10 ms, MQTT QoS 1", "published (PUBACKed)", rate, "msg/s");
    add("1000 points / 10 ms, MQTT QoS 1", "received by a subscriber", (received - r0) / seconds, "msg/s");
    add("1000 points / 10 ms, MQTT QoS 1", "lateness p99", withMqtt.latenessP99, "ms", without.latenessP99, "no MQTT");
    add("1000 points / 10 ms, MQTT QoS 1", "lateness max", withMqtt.latenessMax, "ms", without.latenessMax, "no MQTT");
    add("1000 points / 10 ms, MQTT QoS 1", "cpu", withMqtt.cpuPct, "% core", without.cpuPct, "no MQTT");
    add("1000 points / 10 ms, MQTT QoS 1", "skipped cycles", withMqtt.skipped, "cycles", without.skipped, "no MQTT");

    // The broker goes away for `seconds`: memory must stay flat.
    await watcher.endAsync(true);
    watcher = undefined;
    const heap0 = process.memoryUsage().heapUsed;
    await broker.kill9();
    let heapMax = heap0;
    let queuedMax = 0;
    const down = await window(app, seconds, () => {
      heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
      queuedMax = Math.max(queuedMax, service!.outbox.size);
    });
    const heapEnd = process.memoryUsage().heapUsed;
    add(`broker down ${seconds} s`, "heap growth (max - before)", (heapMax - heap0) / 2 ** 20, "MiB");
    add(`broker down ${seconds} s`, "heap growth (end - before)", (heapEnd - heap0) / 2 ** 20, "MiB");
    add(`broker down ${seconds} s`, "messages held (max)", queuedMax, "msgs");
    add(`broker down ${seconds} s`, "lateness p99", down.latenessP99, "ms", without.latenessP99, "no MQTT");

    const pBefore = service.counters.published;
    const tBack = performance.now();
    await broker.restart();
    while (service.counters.published - pBefore < POINTS + 1 && performance.now() - tBack < 30_000) await sleep(10);
    add("broker back", "reconnect + birth + all 1000 points republished", performance.now() - tBack, "ms");
  } finally {
    await watcher?.endAsync(true);
    await service?.stop(1000);
    await app.stop(1000);
    clearInterval(changer);
    await sim.stop();
    await broker.stop();
  }
  return figures;
}
