/**
 * OPC UA server benchmark: does serving the PLC/HMI cost the control loop?
 *
 * A cell of 999 int16 points plus one probe on one Modbus TCP simulator,
 * scanned every 10 ms; the OPC UA server where the daemon runs it, in the
 * north worker thread (src/north/host), from the cell's `opcua:` block;
 * SignAndEncrypt with a user name.
 *  - loop lateness (cycle start vs its due time) with 0 OPC UA clients, then
 *    with 10 clients × 1,000 monitored items (one subscription each, sampling
 *    0, publishing 100 ms as an HMI would) while 1,000 register changes per
 *    second flow;
 *  - change-to-client latency: the simulator writes a sequence number into the
 *    probe register every 100 ms; each client notes when the notification with
 *    that number arrives (read → cycle → delta to the worker → publish timer →
 *    subscription → client);
 *  - the main thread's cost of the bridge to the worker (time per cycle
 *    building and posting deltas, mean and max).
 *
 * The windows with clients and without run again with the loop's thread under
 * SCHED_FIFO (what cycle.realtime_priority does; root or RLIMIT_RTPRIO), and
 * every window says how long that thread waited for a CPU (util.ts).
 *
 * The simulator and the clients run in worker threads (their own event loops),
 * so the loop's thread only carries what cellio's main thread carries; on a
 * small machine they still compete for the same cores ("cpu" counts every
 * thread, "main event loop utilization" only the loop's thread).
 *
 * Those windows run cellio (CellApp) inside this bench process: their "loop
 * thread: GC pause" and lateness figures also carry this process's heap and
 * work (the clients' and simulator's messages arrive on this thread, the
 * bench's bookkeeping; REPORT.md has a 92 ms pause of the bench process's heap).
 * They keep the run-queue and event-loop-utilization figures, which need the
 * loop's own thread. The cases named "cellio run (own process)" then run the
 * same cell as the daemon, `cellio run` in its own process (daemon.ts), at
 * normal priority and with cycle.realtime_priority 10: one summary window with
 * 0 clients, then one with the same 10 clients and changes, and report the
 * daemon's own figures: loop lateness p99 and max from its `cycle summary` log
 * line (exact, where /metrics' lateness buckets would only bound them), its
 * loop thread's GC pauses from its /metrics (cellio_gc_pause_seconds: count
 * and total exact, the max within one bucket), CPU (all its threads) and RSS from
 * /proc, and the change-to-client latency as above.
 * Prints figures; never asserts.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { X509Certificate } from "node:crypto";

import {
  AttributeIds,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  UserTokenType,
  type ClientMonitoredItemBase,
  type ClientSession,
  type ClientSubscription,
  type DataValue,
} from "node-opcua";
import { loadConfigText } from "../../src/config/load.js";
import { CellApp } from "../../src/app.js";
import { silentLogger } from "../../src/infra/logger.js";
import { Histogram } from "../../src/loop/histogram.js";
import type { BridgeCounters } from "../../src/north/host/bridge.js";
import type { NorthHost } from "../../src/north/host/host.js";
import { hashPassword } from "../../src/north/opcua-server/password.js";
import { NOT_REQUESTED, applyRealtime, dropRealtime, type RealtimeState } from "../../src/infra/realtime.js";
import { addRunQueueFigures, loopWindow, sleep, type Figure, type LoopWindow } from "./util.js";
import { Daemon, daemonFigures, freePort } from "./daemon.js";

const PERIOD = 10;
const POINTS = 999; // + the probe: 1,000 monitored items per client
const CLIENTS = 10;
const CHANGES_PER_TICK = 100; // every 100 ms: 1,000 changes/s
const PROBE_EVERY_MS = 100;
const PASSWORD = "bench-password";

type SimMsg = { kind: "ready"; port: number } | { kind: "probe"; seq: number; wallMs: number };
type ClientMsg = { kind: "subscribed"; items: number } | { kind: "seen"; seq: number; wallMs: number } | { kind: "error"; error: string } | { kind: "done"; notifications: number };

const wall = (): number => performance.timeOrigin + performance.now();

function cellYaml(port: number, opcua: object, realtimePriority?: number): string {
  const points = Array.from({ length: POINTS }, (_, i) => `      r${i}: { address: "hr:${i}:int16" }`).join("\n");
  return `
version: 1
cell: { id: bench-opcua }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 4, output_budget_ms: 4${realtimePriority === undefined ? "" : `, realtime_priority: ${realtimePriority}`} }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 100
    stale_after_ms: 2000
    points:
${points}
      probe: { address: "hr:${POINTS}:int16" }
opcua: ${JSON.stringify(opcua)}
`;
}

// ---- worker: the Modbus simulator, changing registers on its own timer ----------------

async function simWorker(): Promise<void> {
  const { ModbusTcpSimServer, RegisterBank } = await import("../../simulators/modbus/index.js");
  const bank = new RegisterBank();
  const server = new ModbusTcpSimServer({ port: 0, units: bank });
  const { port } = await server.start();
  parentPort!.postMessage({ kind: "ready", port } satisfies SimMsg);
  let next = 0;
  let seq = 0;
  let value = 0;
  const timer = setInterval(() => {
    value = (value + 1) & 0x7fff;
    for (let k = 0; k < CHANGES_PER_TICK; k++) {
      bank.setInt16("hr", next, value);
      next = (next + 1) % POINTS;
    }
    seq = (seq + 1) & 0x7fff;
    bank.setInt16("hr", POINTS, seq);
    parentPort!.postMessage({ kind: "probe", seq, wallMs: wall() } satisfies SimMsg);
  }, PROBE_EVERY_MS);
  parentPort!.once("message", () => {
    clearInterval(timer);
    void server.stop().then(() => process.exit(0));
  });
}

// ---- worker: the OPC UA clients -------------------------------------------------------

async function clientsWorker(data: { url: string; ns: string; pkiDir: string; clients: number }): Promise<void> {
  // The clients stand in for HMIs on other machines: below the loop's priority (Linux: this thread only),
  // so on this 2-core box they do not take the loop's core first.
  try {
    os.setPriority(os.constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {
    // not allowed: same priority as the loop
  }
  const post = (m: ClientMsg): void => parentPort!.postMessage(m);
  const cm = new OPCUACertificateManager({ rootFolder: data.pkiDir, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true });
  await cm.initialize();
  let notifications = 0;
  const open: Array<{ client: OPCUAClient; session: ClientSession; sub: ClientSubscription }> = [];
  try {
    for (let c = 0; c < data.clients; c++) {
      const client = OPCUAClient.create({
        applicationName: "cellio-bench",
        securityMode: MessageSecurityMode.SignAndEncrypt,
        securityPolicy: SecurityPolicy.Basic256Sha256,
        clientCertificateManager: cm,
        endpointMustExist: false,
        connectionStrategy: { maxRetry: 1 },
      });
      await client.connect(data.url);
      const session = await client.createSession({ type: UserTokenType.UserName, userName: "bench", password: PASSWORD });
      const nsArray = await session.readNamespaceArray();
      const ns = nsArray.indexOf(data.ns);
      const sub = await session.createSubscription2({
        requestedPublishingInterval: 100,
        requestedMaxKeepAliveCount: 20,
        requestedLifetimeCount: 200,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
      });
      const ids = [...Array.from({ length: POINTS }, (_, i) => `r${i}`), "probe"];
      const group = await sub.monitorItems(
        ids.map((id) => ({ nodeId: `ns=${ns};s=Cell.Devices.io.${id}`, attributeId: AttributeIds.Value })),
        { samplingInterval: 0, queueSize: 1, discardOldest: true },
        TimestampsToReturn.Both,
      );
      const probeIndex = ids.length - 1;
      group.on("changed", (item: ClientMonitoredItemBase, dv: DataValue) => {
        notifications++;
        if (item === group.monitoredItems[probeIndex] && typeof dv.value.value === "number") post({ kind: "seen", seq: dv.value.value, wallMs: wall() });
      });
      open.push({ client, session, sub });
      post({ kind: "subscribed", items: ids.length });
    }
  } catch (e) {
    post({ kind: "error", error: e instanceof Error ? e.message : String(e) });
  }
  parentPort!.once("message", () => {
    void (async () => {
      for (const o of open) {
        await o.sub.terminate().catch(() => undefined);
        await o.session.close().catch(() => undefined);
        await o.client.disconnect().catch(() => undefined);
      }
      post({ kind: "done", notifications });
      process.exit(0);
    })();
  });
}

// ---- the benchmark --------------------------------------------------------------------

function startWorker<T>(data: Record<string, unknown>, onMessage: (m: T) => void): Worker {
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: data });
  w.on("message", onMessage);
  return w;
}

/** The clients worker, connected and subscribed; it notes the probe's change-to-client latency while `measuring`. */
interface Clients {
  readonly latency: Histogram;
  measuring: boolean;
  /** Close every session; the notifications received. */
  stop(): Promise<number>;
  terminate(): Promise<void>;
}

async function startClients(url: string, ns: string, pkiDir: string, probes: ReadonlyMap<number, number>): Promise<Clients> {
  let subscribed = 0;
  let notifications = 0;
  let clientError = "";
  const latency = new Histogram();
  const c: Clients = {
    latency,
    measuring: false,
    stop: async () => {
      const done = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
      worker.postMessage("stop");
      await Promise.race([done, sleep(10_000)]);
      return notifications;
    },
    terminate: async () => void (await worker.terminate()),
  };
  const worker = startWorker<ClientMsg>({ role: "opcua-bench-clients", url, ns, pkiDir, clients: CLIENTS }, (m) => {
    if (m.kind === "subscribed") subscribed++;
    else if (m.kind === "error") clientError = m.error;
    else if (m.kind === "done") notifications = m.notifications;
    else if (m.kind === "seen" && c.measuring) {
      const t0 = probes.get(m.seq);
      if (t0 !== undefined) latency.recordMs(m.wallMs - t0);
    }
  });
  const t0 = performance.now();
  while (subscribed < CLIENTS && clientError === "" && performance.now() - t0 < 120_000) await sleep(50);
  if (clientError !== "" || subscribed < CLIENTS) {
    await worker.terminate();
    throw new Error(`OPC UA bench clients: ${clientError || `${subscribed} of ${CLIENTS} subscribed after 120 s`}`);
  }
  return c;
}

function latencyFigures(kase: string, latency: Histogram, add: (kase: string, metric: string, value: number, unit: string) => void): void {
  const l = latency.summary();
  add(kase, "change-to-client latency p50", l.p50, "ms");
  add(kase, "change-to-client latency p99", l.p99, "ms");
  add(kase, "change-to-client latency max", l.max, "ms");
  add(kase, "latency samples", l.count, "probes");
}

function bridgeFigures(kase: string, b0: BridgeCounters, north: NorthHost, add: (kase: string, metric: string, value: number, unit: string) => void): void {
  const b = north.bridgeCounters;
  const t = north.bridgeTime.summary();
  const cycles = b.cycles - b0.cycles;
  add(kase, "bridge: main-thread time per cycle (mean)", cycles > 0 ? ((b.busyMs - b0.busyMs) / cycles) * 1000 : 0, "µs");
  add(kase, "bridge: main-thread time per cycle p50", t.p50 * 1000, "µs");
  add(kase, "bridge: main-thread time per cycle p99", t.p99 * 1000, "µs");
  add(kase, "bridge: main-thread time per cycle max", t.max * 1000, "µs");
  add(kase, "bridge: deltas posted", b.posts - b0.posts, "deltas");
  add(kase, "bridge: cycles not sent (worker lagging)", b.lagged - b0.lagged, "cycles");
}

function windowFigures(figures: Figure[], kase: string, w: LoopWindow, add: (kase: string, metric: string, value: number, unit: string) => void): void {
  for (const [m, v] of [["p50", w.lateness.p50], ["p99", w.lateness.p99], ["max", w.lateness.max]] as const) add(kase, `loop lateness ${m}`, v, "ms");
  add(kase, "cpu (process, all threads)", w.cpuPct, "% core");
  add(kase, "main event loop utilization", w.elu, "%");
  add(kase, "skipped cycles", w.skipped, "cycles");
  add(kase, "input deadline misses", w.inputMisses, "reads");
  addRunQueueFigures(figures, "opcua-server", kase, w.runQueue);
  add(kase, "loop thread: GC pauses", w.gc.count, "count");
  add(kase, "loop thread: GC pause max", w.gc.maxMs, "ms");
}

/** SCHED_FIFO priority of the loop's thread in the last two windows (what cycle.realtime_priority applies at start). */
const RT = 10;

const KASE = `${CLIENTS} clients x ${POINTS + 1} items`;

/**
 * The cell run by the daemon (`cellio run`, its own process) with the same OPC UA block, a fixed
 * free port and the same trusted client certificate: one summary window with 0 clients, then one
 * with the clients; the daemon's own figures.
 */
async function runDaemonCase(
  figures: Figure[],
  seconds: number,
  env: { simPort: number; opcua: Record<string, unknown>; dir: string; pkiDir: string; probes: ReadonlyMap<number, number> },
  rt: number | undefined,
): Promise<void> {
  if (process.platform !== "linux") return; // /proc
  const add = (kase: string, metric: string, value: number, unit: string): void => void figures.push({ bench: "opcua-server", case: kase, metric, value, unit });
  const sched = rt === undefined ? "" : `, loop SCHED_FIFO ${rt}`;
  const port = await freePort();
  const dir = await mkdtemp(path.join(env.dir, "daemon-"));
  const daemon = await Daemon.start({ yaml: cellYaml(env.simPort, { ...env.opcua, port }, rt), dir, windowSeconds: seconds });
  let clients: Clients | undefined;
  try {
    const listening = daemon.waitLog((r) => typeof r.msg === "string" && r.msg.includes("OPC UA server listening"), 300_000, "OPC UA server listening");
    listening.catch(() => undefined); // awaited below; not unhandled if the daemon fails first
    await daemon.requireRealtime(rt);
    const ns = (await listening).namespace;
    if (typeof ns !== "string") throw new Error("the daemon's OPC UA listening line has no namespace");
    await sleep(2000);
    const idle = await daemon.window();
    const idleCase = `0 clients, cellio run (own process)${sched}`;
    daemonFigures(figures, "opcua-server", idleCase, idle);
    clients = await startClients(`opc.tcp://127.0.0.1:${port}`, ns, env.pkiDir, env.probes);
    await sleep(2000);
    const cl = clients;
    const busy = await daemon.window({
      onOpen: () => {
        cl.latency.reset();
        cl.measuring = true;
      },
      onClose: () => (cl.measuring = false),
    });
    const kase = `${KASE}, cellio run (own process)${sched}`;
    daemonFigures(figures, "opcua-server", kase, busy, { w: idle, name: "0 clients, own process" });
    latencyFigures(kase, cl.latency, add);
    add(kase, "notifications received (connect to stop)", await cl.stop(), "values");
    clients = undefined;
  } finally {
    await clients?.terminate();
    await daemon.stop();
  }
}

export async function runOpcuaServerBench(seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  const add = (kase: string, metric: string, value: number, unit: string): void => void figures.push({ bench: "opcua-server", case: kase, metric, value, unit });
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-opcua-bench-"));
  const probes = new Map<number, number>();
  let simPort = 0;
  const sim = startWorker<SimMsg>({ role: "opcua-bench-sim" }, (m) => {
    if (m.kind === "ready") simPort = m.port;
    else {
      probes.set(m.seq, m.wallMs);
      probes.delete((m.seq - 200) & 0x7fff);
    }
  });
  let app: CellApp | undefined;
  let clients: Clients | undefined;
  let realtime: RealtimeState = NOT_REQUESTED;
  try {
    while (simPort === 0) await sleep(10);
    // The clients' certificate, made first and put in the server's trusted folder (the server is in another thread).
    const stateDir = path.join(dir, "state");
    const pkiDir = path.join(dir, "clients-pki");
    const cm = new OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true });
    await cm.initialize();
    const maker = OPCUAClient.create({ applicationName: "cellio-bench", clientCertificateManager: cm, endpointMustExist: false });
    await maker.createDefaultCertificate();
    const trusted = path.join(stateDir, "pki", "trusted", "certs");
    await mkdir(trusted, { recursive: true });
    await writeFile(path.join(trusted, "cellio-bench.der"), new X509Certificate(await readFile(maker.certificateFile)).raw);
    const opcua = {
      port: 0,
      host: "127.0.0.1",
      hostname: "127.0.0.1",
      state_dir: stateDir,
      users: { bench: { password_hash: await hashPassword(PASSWORD), role: "viewer" } },
    };
    app = new CellApp(loadConfigText(cellYaml(simPort, opcua), "bench-opcua"), { log: silentLogger() });
    await app.start();
    const north = app.north!;
    // start() waits 60 s for the worker; the first start makes the server's certificate (longer on a busy machine).
    const t00 = performance.now();
    while (north.status.opcua?.started === undefined && performance.now() - t00 < 300_000) await sleep(100);
    const started = north.status.opcua?.started;
    if (started === undefined) throw new Error("the OPC UA server did not start in the north worker");
    await sleep(2000);

    const b0 = { ...north.bridgeCounters };
    north.bridgeTime.reset();
    const idle = await loopWindow(app, seconds);
    windowFigures(figures, "0 clients", idle, add);
    bridgeFigures("0 clients", b0, north, add);

    const cl = await startClients(`opc.tcp://127.0.0.1:${started.port}`, started.namespaceUri, pkiDir, probes);
    clients = cl;
    await sleep(2000);
    const busyWindow = async (k: string): Promise<void> => {
      cl.latency.reset();
      cl.measuring = true;
      const b1 = { ...north.bridgeCounters };
      north.bridgeTime.reset();
      const busy = await loopWindow(app!, seconds);
      cl.measuring = false;
      windowFigures(figures, k, busy, add);
      latencyFigures(k, cl.latency, add);
      bridgeFigures(k, b1, north, add);
    };
    await busyWindow(KASE);
    // The same with the loop's thread under SCHED_FIFO, as cycle.realtime_priority sets it at start.
    realtime = applyRealtime(RT);
    if (!realtime.applied) throw new Error(`real-time priority refused: ${realtime.reason ?? "?"}`);
    await busyWindow(`${KASE}, loop SCHED_FIFO ${RT}`);
    add(KASE, "notifications received (both windows)", await cl.stop(), "values");
    clients = undefined;
    await sleep(2000);
    const b2 = { ...north.bridgeCounters };
    north.bridgeTime.reset();
    const idleRt = await loopWindow(app, seconds);
    windowFigures(figures, `0 clients, loop SCHED_FIFO ${RT}`, idleRt, add);
    bridgeFigures(`0 clients, loop SCHED_FIFO ${RT}`, b2, north, add);
    // The same cell as the daemon, in its own process: the bench process's heap and threads out of its figures.
    await app.stop(2000);
    app = undefined;
    dropRealtime(realtime);
    realtime = NOT_REQUESTED;
    for (const rt of [undefined, RT]) {
      // A daemon case that fails is said on stderr and leaves its rows out; the in-process rows stay.
      await runDaemonCase(figures, seconds, { simPort, opcua, dir, pkiDir, probes }, rt).catch((e: unknown) => {
        process.stderr.write(`opcua-server bench: the daemon case${rt === undefined ? "" : ` (SCHED_FIFO ${rt})`} failed, its rows are left out: ${e instanceof Error ? e.message : String(e)}\n`);
      });
    }
  } finally {
    dropRealtime(realtime);
    await clients?.terminate();
    await app?.stop(2000);
    sim.postMessage("stop");
    await Promise.race([new Promise((r) => sim.once("exit", r)), sleep(3000)]);
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

if (!isMainThread) {
  const data = workerData as { role?: string; url: string; ns: string; pkiDir: string; clients: number };
  if (data.role === "opcua-bench-sim") void simWorker();
  else if (data.role === "opcua-bench-clients") void clientsWorker(data);
}
