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
 * Both windows run twice: with the loop's thread at normal priority, then
 * under SCHED_FIFO (cycle.realtime_priority: 10; needs root or
 * RLIMIT_RTPRIO). Each window also reports how long the loop's thread waited
 * for a CPU (runQueueMeter in util.ts): lateness that comes from the other
 * busy threads and processes on the two cores, not from cellio's own work.
 *
 * Those windows run cellio (CellApp) inside this bench process, so their
 * "loop thread: GC pause" and lateness figures also carry this process's own
 * heap and work (the watcher's messages arrive over a worker port, the bench's
 * bookkeeping, every bench before it under `npm run bench`; REPORT.md has
 * 55.7 ms and 78 ms pauses of that heap). They keep the
 * run-queue figures, which need the loop's own thread. The cases named
 * "cellio run (own process)" run the same two cells as the daemon,
 * `cellio run` in its own process (daemon.ts), under the same MQTT load
 * (broker, subscriber), and report the daemon's own figures over one summary
 * window: loop lateness p99 and max from its `cycle summary` log line (exact,
 * where /metrics' lateness buckets would only bound them), its loop thread's
 * GC pauses from its /metrics (cellio_gc_pause_seconds: count and total
 * exact, the max within one bucket), CPU (all its threads) and RSS from /proc.
 * The broker's acknowledgements are not counted there (the daemon does not
 * export them); the subscriber's rate is (±250 ms of messages per window).
 *
 * The broker outage (memory held, republish time) is mqtt-outage.bench.ts.
 * Needs `mosquitto` (apt-get install mosquitto). Prints figures, asserts nothing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import mqtt from "mqtt";
import { CellApp } from "../../src/app.js";
import { loadConfigText } from "../../src/config/load.js";
import { silentLogger } from "../../src/infra/logger.js";
import { WATCHER, benchCellYaml, startBenchBroker, startChangingSim } from "./mqtt-fixture.js";
import { addRunQueueFigures, loopWindow, sleep, type Figure } from "./util.js";
import { Daemon, daemonFigures } from "./daemon.js";

const CELL = "bench-mqtt";

/** SCHED_FIFO priority of the loop's thread in the second pair of windows (cycle.realtime_priority). */
const RT = 10;

export async function runMqttBench(seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  const sim = await startChangingSim();
  const { broker, block: brokerBlock } = await startBenchBroker(CELL, "cellio-bench-mqtt");
  try {
    // The same pair of windows with the loop's thread at normal priority, then real-time.
    for (const rt of [undefined, RT]) {
      await runPair(figures, seconds, sim.port, broker.url, brokerBlock, rt);
      // A daemon case that fails is said on stderr and leaves its rows out; the in-process rows stay.
      await runDaemonPair(figures, seconds, sim.port, broker.url, brokerBlock, rt).catch((e: unknown) => {
        process.stderr.write(`mqtt bench: the daemon case${rt === undefined ? "" : ` (SCHED_FIFO ${rt})`} failed, its rows are left out: ${e instanceof Error ? e.message : String(e)}\n`);
      });
    }
  } finally {
    await sim.stop();
    await broker.stop();
  }
  return figures;
}

async function runPair(figures: Figure[], seconds: number, simPort: number, brokerUrl: string, brokerBlock: object, rt: number | undefined): Promise<void> {
  const sched = rt === undefined ? "" : `, loop SCHED_FIFO ${rt}`;
  const add = (kase: string, metric: string, value: number, unit: string, baseline?: number, baselineName?: string): void => {
    figures.push({ bench: "mqtt", case: kase + sched, metric, value, unit, ...(baseline === undefined ? {} : { baseline, baselineName }) });
  };
  let app: CellApp | undefined;
  let watcher: Worker | undefined;
  try {
    app = new CellApp(loadConfigText(benchCellYaml(CELL, simPort, undefined, rt), CELL), { log: silentLogger() });
    await app.start();
    if (rt !== undefined && !app.realtime.applied) throw new Error(`real-time priority refused: ${app.realtime.reason ?? "?"}`);
    await sleep(1000); // connect, first good scan
    const without = await loopWindow(app, seconds);
    await app.stop(1000);
    app = undefined;
    const base = "1000 points / 10 ms, no MQTT";
    add(base, "lateness p99", without.lateness.p99, "ms");
    add(base, "lateness max", without.lateness.max, "ms");
    add(base, "cpu", without.cpuPct, "% core");
    addRunQueueFigures(figures, "mqtt", base + sched, without.runQueue);
    add(base, "loop thread: GC pause max", without.gc.maxMs, "ms");

    const block = { ...brokerBlock, ...(process.env.BENCH_MQTT_EXTRA ? (JSON.parse(process.env.BENCH_MQTT_EXTRA) as object) : {}) };
    app = new CellApp(loadConfigText(benchCellYaml(CELL, simPort, block, rt), CELL), { log: silentLogger() });
    await app.start();
    const north = app.north!;
    const t0 = performance.now();
    while (north.status.mqtt?.connected !== true && performance.now() - t0 < 10_000) await sleep(50);
    const w = await startWatcher(brokerUrl);
    watcher = w.worker;
    await sleep(2000);
    const p0 = north.status.mqtt?.published ?? 0;
    const r0 = w.received();
    const b0 = { ...north.bridgeCounters };
    north.bridgeTime.reset();
    const withMqtt = await loopWindow(app, seconds);
    await sleep(600); // the watcher reports its count every 250 ms
    const bt = north.bridgeTime.summary();
    await sleep(1100); // the worker's status comes every second
    const b = north.bridgeCounters;
    const kase = "1000 points / 10 ms, MQTT QoS 1 (worker)";
    add(kase, "published (PUBACKed)", ((north.status.mqtt?.published ?? 0) - p0) / (seconds + 1.1), "msg/s");
    add(kase, "received by a subscriber", (w.received() - r0) / (seconds + 1.1), "msg/s");
    add(kase, "lateness p99", withMqtt.lateness.p99, "ms", without.lateness.p99, "no MQTT");
    add(kase, "lateness max", withMqtt.lateness.max, "ms", without.lateness.max, "no MQTT");
    add(kase, "cpu (process, all threads)", withMqtt.cpuPct, "% core", without.cpuPct, "no MQTT");
    add(kase, "skipped cycles", withMqtt.skipped, "cycles", without.skipped, "no MQTT");
    addRunQueueFigures(figures, "mqtt", kase + sched, withMqtt.runQueue);
    add(kase, "loop thread: GC pause max", withMqtt.gc.maxMs, "ms", without.gc.maxMs, "no MQTT");
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
  }
}

/** The dashboard stand-in (watcherWorker) in a worker thread of this process, once it has subscribed to the cell's points. */
async function startWatcher(brokerUrl: string): Promise<{ worker: Worker; received(): number }> {
  let received = 0;
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { role: "mqtt-bench-watcher", url: brokerUrl, topic: `cellio/${CELL}/points/#` } });
  await new Promise<void>((resolve, reject) => {
    worker.on("message", (m: { received: number } | { subscribed: true } | { error: string }) => {
      if ("received" in m) received = m.received;
      else if ("subscribed" in m) resolve();
      else reject(new Error(`watcher: ${m.error}`));
    });
  });
  return { worker, received: () => received };
}

/**
 * The same two cells run by the daemon (`cellio run`, its own process) under the same load: one
 * summary window without MQTT, then one with it and the subscriber. The daemon's own figures.
 */
async function runDaemonPair(figures: Figure[], seconds: number, simPort: number, brokerUrl: string, brokerBlock: object, rt: number | undefined): Promise<void> {
  if (process.platform !== "linux") return; // /proc
  const sched = rt === undefined ? "" : `, loop SCHED_FIFO ${rt}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-mqtt-daemon-"));
  let daemon: Daemon | undefined;
  let watcher: Worker | undefined;
  try {
    daemon = await Daemon.start({ yaml: benchCellYaml(CELL, simPort, undefined, rt), dir, windowSeconds: seconds });
    await daemon.requireRealtime(rt);
    const without = await daemon.window();
    await daemon.stop();
    daemon = undefined;
    const base = `1000 points / 10 ms, no MQTT, cellio run (own process)${sched}`;
    daemonFigures(figures, "mqtt", base, without);

    const block = { ...brokerBlock, ...(process.env.BENCH_MQTT_EXTRA ? (JSON.parse(process.env.BENCH_MQTT_EXTRA) as object) : {}) };
    daemon = await Daemon.start({ yaml: benchCellYaml(CELL, simPort, block, rt), dir, windowSeconds: seconds });
    await daemon.requireRealtime(rt);
    await daemon.waitMetric("cellio_mqtt_connected", (v) => v === 1, 10_000);
    const w = await startWatcher(brokerUrl);
    watcher = w.worker;
    await sleep(2000); // as in-process: the publishing settles before a window opens
    let r0 = 0;
    let r1 = 0;
    const withMqtt = await daemon.window({ onOpen: () => (r0 = w.received()), onClose: () => (r1 = w.received()) });
    const kase = `1000 points / 10 ms, MQTT QoS 1 (worker), cellio run (own process)${sched}`;
    figures.push({ bench: "mqtt", case: kase, metric: "received by a subscriber", value: (r1 - r0) / withMqtt.seconds, unit: "msg/s" });
    daemonFigures(figures, "mqtt", kase, withMqtt, { w: without, name: "no MQTT, own process" });
  } finally {
    await watcher?.terminate();
    await daemon?.stop();
    await rm(dir, { recursive: true, force: true });
  }
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
