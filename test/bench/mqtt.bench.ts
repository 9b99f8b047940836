/**
 * MQTT benchmark: 1,000 points that change every 10 ms cycle, published to a
 * real mosquitto on this machine (QoS 1, retained, 100 ms pacing), with MQTT
 * where the daemon runs it: in the north worker thread (src/north/host).
 *
 * - loop lateness of the cell WITHOUT an `mqtt:` block (baseline), then of
 *   the same cell WITH it, on the same simulator, same run;
 * - messages/s cellio gets acknowledged by the broker, and a subscriber's
 *   receive rate;
 * - the main thread's cost of the bridge to the worker: time per cycle
 *   spent building and posting the deltas (mean and max), deltas posted,
 *   cycles a lagging worker was not sent anything.
 *
 * The subscriber stands in for a dashboard on another machine: it runs in its
 * own worker thread at a lower priority, so it neither runs on the loop's
 * thread nor takes the loop's core first (an mqtt.js client receiving
 * 10,000 msg/s on the loop's thread was what an earlier version measured).
 *
 * The broker outage (memory held, republish time) is mqtt-outage.bench.ts.
 * Needs `mosquitto` (apt-get install mosquitto). Prints figures, asserts nothing.
 */
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import mqtt from "mqtt";
import { CellApp } from "../../src/app.js";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/infra/logger.js";
import { WATCHER, benchCellYaml, startBenchBroker, startChangingSim } from "./mqtt-fixture.js";
import { cpuMeter, sleep, type Figure } from "./util.js";

const CELL = "bench-mqtt";

interface Window {
  latenessP99: number;
  latenessMax: number;
  cycles: number;
  skipped: number;
  cpuPct: number;
}

/** Run the cell for `seconds` and return the loop figures of that window. */
async function window(app: CellApp, seconds: number): Promise<Window> {
  app.loop.stats.resetWindow();
  const s0 = app.loop.stats.summary();
  const cpu = cpuMeter();
  await sleep(seconds * 1000);
  const s = app.loop.stats.summary();
  return { latenessP99: s.lateness.p99, latenessMax: s.lateness.max, cycles: s.cycles - s0.cycles, skipped: s.skipped - s0.skipped, cpuPct: cpu() };
}

export async function runMqttBench(seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  const add = (kase: string, metric: string, value: number, unit: string, baseline?: number, baselineName?: string): void => {
    figures.push({ bench: "mqtt", case: kase, metric, value, unit, ...(baseline === undefined ? {} : { baseline, baselineName }) });
  };

  const sim = await startChangingSim();
  const { broker, block: brokerBlock } = await startBenchBroker(CELL, "cellio-bench-mqtt");
  let app: CellApp | undefined;
  let watcher: Worker | undefined;
  try {
    app = new CellApp(loadConfigText(benchCellYaml(CELL, sim.port), CELL), { log: silentLogger() });
    await app.start();
    await sleep(1000); // connect, first good scan
    const without = await window(app, seconds);
    await app.stop(1000);
    app = undefined;
    add("1000 points / 10 ms, no MQTT", "lateness p99", without.latenessP99, "ms");
    add("1000 points / 10 ms, no MQTT", "lateness max", without.latenessMax, "ms");
    add("1000 points / 10 ms, no MQTT", "cpu", without.cpuPct, "% core");

    const block = { ...brokerBlock, ...(process.env.BENCH_MQTT_EXTRA ? (JSON.parse(process.env.BENCH_MQTT_EXTRA) as object) : {}) };
    app = new CellApp(loadConfigText(benchCellYaml(CELL, sim.port, block), CELL), { log: silentLogger() });
    await app.start();
    const north = app.north!;
    const t0 = performance.now();
    while (north.status.mqtt?.connected !== true && performance.now() - t0 < 10_000) await sleep(50);
    let received = 0;
    watcher = new Worker(fileURLToPath(import.meta.url), { workerData: { role: "mqtt-bench-watcher", url: broker.url, topic: `cellio/${CELL}/points/#` } });
    const subscribed = new Promise<void>((resolve, reject) => {
      watcher!.on("message", (m: { received: number } | { subscribed: true } | { error: string }) => {
        if ("received" in m) received = m.received;
        else if ("subscribed" in m) resolve();
        else reject(new Error(`watcher: ${m.error}`));
      });
    });
    await subscribed;
    await sleep(2000);
    const p0 = north.status.mqtt?.published ?? 0;
    const r0 = received;
    const b0 = { ...north.bridgeCounters };
    north.bridgeTime.reset();
    const withMqtt = await window(app, seconds);
    await sleep(600); // the watcher reports its count every 250 ms
    const bt = north.bridgeTime.summary();
    await sleep(1100); // the worker's status comes every second
    const b = north.bridgeCounters;
    const kase = "1000 points / 10 ms, MQTT QoS 1 (worker)";
    add(kase, "published (PUBACKed)", ((north.status.mqtt?.published ?? 0) - p0) / (seconds + 1.1), "msg/s");
    add(kase, "received by a subscriber", (received - r0) / (seconds + 1.1), "msg/s");
    add(kase, "lateness p99", withMqtt.latenessP99, "ms", without.latenessP99, "no MQTT");
    add(kase, "lateness max", withMqtt.latenessMax, "ms", without.latenessMax, "no MQTT");
    add(kase, "cpu (process, all threads)", withMqtt.cpuPct, "% core", without.cpuPct, "no MQTT");
    add(kase, "skipped cycles", withMqtt.skipped, "cycles", without.skipped, "no MQTT");
    const cycles = b.cycles - b0.cycles;
    add(kase, "bridge: main-thread time per cycle (mean)", cycles > 0 ? ((b.busyMs - b0.busyMs) / cycles) * 1000 : 0, "µs");
    add(kase, "bridge: main-thread time per cycle p50", bt.p50 * 1000, "µs");
    add(kase, "bridge: main-thread time per cycle p99", bt.p99 * 1000, "µs");
    add(kase, "bridge: main-thread time per cycle max", bt.max * 1000, "µs");
    add(kase, "bridge: deltas posted", (b.posts - b0.posts) / (seconds + 1.1), "1/s");
    add(kase, "bridge: samples sent", (b.samples - b0.samples) / (seconds + 1.1), "1/s");
    add(kase, "bridge: cycles not sent (worker lagging)", b.lagged - b0.lagged, "cycles");
  } finally {
    await watcher?.terminate();
    await app?.stop(1000);
    await sim.stop();
    await broker.stop();
  }
  return figures;
}

/** Worker thread: the dashboard stand-in. Counts what it receives and reports it every 250 ms. */
async function watcherWorker(data: { url: string; topic: string }): Promise<void> {
  try {
    os.setPriority(os.constants.priority.PRIORITY_BELOW_NORMAL); // Linux: this thread only
  } catch {
    // not allowed: same priority as the loop
  }
  let received = 0;
  try {
    const client = await mqtt.connectAsync(data.url, WATCHER);
    client.on("message", () => received++);
    await client.subscribeAsync(data.topic, { qos: 0 });
    parentPort!.postMessage({ subscribed: true });
    setInterval(() => parentPort!.postMessage({ received }), 250);
  } catch (e) {
    parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === "mqtt-bench-watcher") void watcherWorker(workerData as { url: string; topic: string });
