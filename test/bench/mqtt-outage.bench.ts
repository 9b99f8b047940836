/**
 * MQTT outage benchmark (BENCH_ONLY=mqtt-outage): 1,000 points that change
 * every 10 ms cycle, published to a real mosquitto on this machine by a cell
 * with an `mqtt:` block, so MQTT runs where the daemon runs it (the north
 * worker thread, from dist/); then the broker is killed for `seconds` (60 in
 * a full run) while the cell keeps running and changing.
 *
 * - memory held during the outage: RSS growth of the process (all threads,
 *   so the worker's heap too) and the main thread's heap, over the level
 *   before it (sampled every second; max and at the end), and the messages
 *   MQTT holds for the broker (the Outbox: latest message per topic plus
 *   events, from the worker's status) - it must stay flat, about one
 *   message per topic;
 * - loop lateness during the outage against before it (same run);
 * - the broker back: time until a subscriber (connected right after the
 *   restart) has every point with a source time from after the restart,
 *   live or retained, and the status `online`; then whether a fresh
 *   subscriber gets all of them retained.
 *
 * Needs `mosquitto` (apt-get install mosquitto). Prints figures, asserts nothing.
 */
import mqtt from "mqtt";
import { CellApp } from "../../src/app.js";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/infra/logger.js";
import { POINTS, WATCHER, benchCellYaml, startBenchBroker, startChangingSim } from "./mqtt-fixture.js";
import { sleep, type Figure } from "./util.js";

const CELL = "bench-outage";
const MiB = 2 ** 20;

/** Collect garbage when the process was started with --expose-gc, so "before" is not inflated by garbage. */
function settle(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** A subscriber to every point and the status: which points it has seen with a source time at or after `sinceWall`. */
async function watch(url: string, sinceWall: number): Promise<{ current: () => number; retained: () => number; status: () => string; end: () => Promise<void> }> {
  const c = await mqtt.connectAsync(url, { ...WATCHER, reconnectPeriod: 200 });
  const current = new Set<string>();
  const retained = new Set<string>();
  let status = "";
  c.on("message", (topic, payload, packet) => {
    const j = JSON.parse(payload.toString()) as { ts?: string | null; state?: string };
    if (topic.endsWith("/status")) status = j.state ?? "";
    else if (Date.parse(j.ts ?? "") >= sinceWall) {
      current.add(topic);
      if (packet.retain) retained.add(topic);
    }
  });
  await c.subscribeAsync([`cellio/${CELL}/points/#`, `cellio/${CELL}/status`], { qos: 0 });
  return { current: () => current.size, retained: () => retained.size, status: () => status, end: () => c.endAsync(true) };
}

export async function runMqttOutageBench(seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  const kase = `1000 points / 10 ms, broker down ${seconds} s`;
  const add = (metric: string, value: number, unit: string, baseline?: number, baselineName?: string): void => {
    figures.push({ bench: "mqtt-outage", case: kase, metric, value, unit, ...(baseline === undefined ? {} : { baseline, baselineName }) });
  };

  const sim = await startChangingSim();
  const { broker, block } = await startBenchBroker(CELL, "cellio-bench-outage");
  const app = new CellApp(loadConfigText(benchCellYaml(CELL, sim.port, block), CELL), { log: silentLogger() });
  try {
    await app.start();
    const north = app.north!;
    const mqttStatus = () => north.status.mqtt;
    // Publishing at full rate for a while: memory at its working level before the outage.
    const warm = Math.min(10, Math.max(3, seconds / 6));
    const t0 = performance.now();
    while (mqttStatus()?.connected !== true && performance.now() - t0 < 10_000) await sleep(50);
    const p0 = mqttStatus()?.published ?? 0;
    app.loop.stats.resetWindow();
    await sleep(warm * 1000);
    const before = app.loop.stats.summary();
    add("published before the outage (worker status, ~1 s old)", ((mqttStatus()?.published ?? 0) - p0) / warm, "msg/s");
    add("connected before the outage", mqttStatus()?.connected ? 1 : 0, "bool");

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
      heldMax = Math.max(heldMax, mqttStatus()?.queued ?? 0);
    }, 1000);
    await sleep(seconds * 1000);
    clearInterval(sampler);
    const down = app.loop.stats.summary();
    settle();
    const end = process.memoryUsage();
    add("RSS growth, all threads (max - before)", (rssMax - rss0) / MiB, "MiB");
    add("RSS growth, all threads (end - before)", (end.rss - rss0) / MiB, "MiB");
    add("main-thread heap growth (max - before)", (heapMax - heap0) / MiB, "MiB");
    add("main-thread heap growth (end - before, after GC if exposed)", (end.heapUsed - heap0) / MiB, "MiB");
    add("messages held for the broker (max)", heldMax, "msgs");
    add("messages held at the end", mqttStatus()?.queued ?? 0, "msgs");
    add("connected at the end of the outage", mqttStatus()?.connected ? 1 : 0, "bool");
    add("cycles run while down", down.cycles - cycles0, "cycles");
    add("loop lateness p99 while down", down.lateness.p99, "ms", before.lateness.p99, "broker up");
    add("loop lateness max while down", down.lateness.max, "ms", before.lateness.max, "broker up");
    add("outage length (measured)", (performance.now() - downAt) / 1000, "s");

    const back = performance.now();
    await broker.restart();
    const restartedWall = Date.now();
    const w = await watch(broker.url, restartedWall);
    while ((w.current() < POINTS || w.status() !== "online") && performance.now() - back < 30_000) await sleep(10);
    add("broker back: every point current at a subscriber, status online", performance.now() - back, "ms");
    await w.end();
    const fresh = await watch(broker.url, restartedWall);
    const f0 = performance.now();
    while (fresh.retained() < POINTS && performance.now() - f0 < 5000) await sleep(20);
    add("fresh subscriber: points retained with a source time after the restart", fresh.retained(), "points");
    add("fresh subscriber: status", fresh.status() === "online" ? 1 : 0, "1 = online");
    await fresh.end();
  } finally {
    await app.stop(1000);
    await sim.stop();
    await broker.stop();
  }
  return figures;
}
