/**
 * MQTT outage benchmark (BENCH_ONLY=mqtt-outage): 1,000 points that change
 * every 10 ms cycle, published to a real mosquitto on this machine; then the
 * broker is killed for `seconds` (60 in a full run) while the cell keeps
 * running and changing.
 *
 * - memory held during the outage: heap and RSS growth over the level
 *   before it (sampled every second; max and at the end), and what cellio
 *   holds for the broker (Outbox: latest message per topic plus events;
 *   dropped events) — it must stay flat, about one message per topic;
 * - loop lateness during the outage against before it (same run);
 * - the broker back: time until cellio has reconnected and republished birth
 *   and all 1,000 points, and whether a fresh subscriber then gets the
 *   CURRENT state (retained status online, every point retained, with a
 *   source time from after the restart).
 *
 * Needs `mosquitto` (apt-get install mosquitto). Prints figures, asserts nothing.
 */
import mqtt from "mqtt";
import { CellApp } from "../../src/app.js";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/infra/logger.js";
import { mqttConfigSchema } from "../../src/north/mqtt/config.js";
import { cellViewOf, type CommandPort } from "../../src/north/mqtt/ports.js";
import { MqttService } from "../../src/north/mqtt/service.js";
import { ModbusTcpSimServer, RegisterBank } from "../../simulators/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";
import { sleep, type Figure } from "./util.js";

const POINTS = 1000;
const PERIOD = 10;
const CELL = "bench-outage";
const USERS = { "cellio-bench-outage": "bench", watcher: "watch" };
const ACL = `pattern read cellio/#
user cellio-bench-outage
topic readwrite cellio/${CELL}/#
`;
const MiB = 2 ** 20;

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

/** Collect garbage when the process was started with --expose-gc, so "before" is not inflated by garbage. */
function settle(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** A fresh subscriber's view of the retained points: how many arrive within `ms`, and their source times. */
async function retainedPoints(url: string, ms: number): Promise<{ points: number; status: string; oldestTs: number }> {
  const c = await mqtt.connectAsync(url, { username: "watcher", password: USERS.watcher, reconnectPeriod: 0 });
  const seen = new Map<string, number>();
  let status = "";
  c.on("message", (topic, payload, packet) => {
    if (!packet.retain) return;
    const j = JSON.parse(payload.toString()) as { ts?: string; state?: string };
    if (topic.endsWith("/status")) status = j.state ?? "";
    else if (topic.includes("/points/")) seen.set(topic, Date.parse(j.ts ?? ""));
  });
  await c.subscribeAsync([`cellio/${CELL}/points/#`, `cellio/${CELL}/status`], { qos: 0 });
  const t0 = performance.now();
  while (seen.size < POINTS && performance.now() - t0 < ms) await sleep(20);
  await c.endAsync(true);
  return { points: seen.size, status, oldestTs: Math.min(...seen.values()) };
}

export async function runMqttOutageBench(seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  const kase = `1000 points / 10 ms, broker down ${seconds} s`;
  const add = (metric: string, value: number, unit: string, baseline?: number, baselineName?: string): void => {
    figures.push({ bench: "mqtt-outage", case: kase, metric, value, unit, ...(baseline === undefined ? {} : { baseline, baselineName }) });
  };

  const bank = new RegisterBank();
  const sim = new ModbusTcpSimServer({ port: 0, units: bank });
  const { port } = await sim.start();
  let k = 0;
  const changer = setInterval(() => {
    k = (k + 1) & 0x7fff;
    const words = bank.holdingRegisters;
    for (let i = 0; i < POINTS; i++) words[i] = (k + i) & 0xffff;
  }, PERIOD);
  // As config/mosquitto/mosquitto.conf: Receive Maximum 100.
  const broker = await Mosquitto.start({ users: USERS, acl: ACL, extra: ["max_inflight_messages 100", "max_queued_messages 1000"] });
  const app = new CellApp(loadConfigText(cellYaml(port), CELL), { log: silentLogger() });
  let service: MqttService | undefined;
  try {
    await app.start();
    const config = mqttConfigSchema.parse({ url: broker.url, username: "cellio-bench-outage", password_env: "BENCH_MQTT_PW", publish_interval_ms: 100, reconnect_ms: 500 });
    service = new MqttService(config, cellViewOf(app), noCommands, {
      log: silentLogger(),
      version: "bench",
      configHash: "bench",
      env: { BENCH_MQTT_PW: USERS["cellio-bench-outage"] },
    });
    await service.start();
    // Publishing at full rate for a while: memory at its working level before the outage.
    const warm = Math.min(10, Math.max(3, seconds / 6));
    app.loop.stats.resetWindow();
    await sleep(warm * 1000);
    const before = app.loop.stats.summary();
    add("published before the outage", service.counters.published / warm, "msg/s");
    add("connected before the outage", service.connected ? 1 : 0, "bool");

    settle();
    const heap0 = process.memoryUsage().heapUsed;
    const rss0 = process.memoryUsage().rss;
    await broker.kill9();
    const downAt = performance.now();
    app.loop.stats.resetWindow();
    const cycles0 = app.loop.stats.cycles;
    let heapMax = heap0;
    let rssMax = rss0;
    let heldMax = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      heapMax = Math.max(heapMax, m.heapUsed);
      rssMax = Math.max(rssMax, m.rss);
      heldMax = Math.max(heldMax, service!.outbox.size);
    }, 1000);
    await sleep(seconds * 1000);
    clearInterval(sampler);
    const down = app.loop.stats.summary();
    settle();
    const end = process.memoryUsage();
    add("heap growth (max - before)", (heapMax - heap0) / MiB, "MiB");
    add("heap growth (end - before, after GC if exposed)", (end.heapUsed - heap0) / MiB, "MiB");
    add("RSS growth (max - before)", (rssMax - rss0) / MiB, "MiB");
    add("messages held for the broker (max)", heldMax, "msgs");
    add("messages held at the end", service.outbox.size, "msgs");
    add("events dropped (buffer full)", service.outbox.droppedEvents, "events");
    add("cycles run while down", down.cycles - cycles0, "cycles");
    add("loop lateness p99 while down", down.lateness.p99, "ms", before.lateness.p99, "broker up");
    add("loop lateness max while down", down.lateness.max, "ms", before.lateness.max, "broker up");

    const pBefore = service.counters.published;
    const back = performance.now();
    await broker.restart();
    const restartedWall = Date.now();
    while (service.counters.published - pBefore < POINTS + 1 && performance.now() - back < 30_000) await sleep(10);
    add("broker back: reconnect + birth + all 1000 points PUBACKed", performance.now() - back, "ms");
    const seen = await retainedPoints(broker.url, 5000);
    add("fresh subscriber: retained points received", seen.points, "points");
    add("fresh subscriber: status online", seen.status === "online" ? 1 : 0, "bool");
    // Positive: every retained point was read after the broker came back (current state, not pre-outage).
    add("fresh subscriber: oldest point source time after restart", seen.oldestTs - restartedWall, "ms");
    add("outage length (measured)", (back - downAt) / 1000, "s");
  } finally {
    await service?.stop(1000);
    await app.stop(1000);
    clearInterval(changer);
    await sim.stop();
    await broker.stop();
  }
  return figures;
}
