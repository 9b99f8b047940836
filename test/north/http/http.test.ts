/**
 * The operations endpoint of a real CellApp over real sockets (Modbus
 * simulators on 127.0.0.1): /metrics scraped and parsed as Prometheus text,
 * /readyz turning not-ready when a required device is lost (and not for an
 * optional one), /healthz, and a port in use that leaves the cell running.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SimDevice, Teardown, startCell, waitFor } from "../../integration/helpers.js";
import { parseProm, type PromSample } from "./prom-text.js";

const t = new Teardown();
afterEach(() => t.run());

function yaml(a: SimDevice, b: SimDevice, port = 0): string {
  return `
version: 1
cell: { id: http-test }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
http: { port: ${port} }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${a.port}
    timeout_ms: 100
    reconnect: { min_ms: 50, max_ms: 200 }
    points:
      door: { address: "di:0" }
      run:  { address: "coil:0", direction: output, safe: false }
  b:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${b.port}
    timeout_ms: 100
    required: false
    points:
      level: { address: "hr:0" }
logic:
  a.run: "true"
interlocks:
  door_closed:
    permit: "a.door"
    force: { a.run: false }
    latch: false
`;
}

async function get(port: number, route: string, method = "GET"): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`, { method });
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
}

function one(samples: PromSample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return hits[0]!.value;
}

/** Buckets of one histogram series, in `le` order: cumulative, ending at +Inf = _count. */
function expectHistogram(samples: PromSample[], name: string, labels: Record<string, string> = {}): number {
  const match = (s: PromSample): boolean => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const buckets = samples.filter((s) => s.name === `${name}_bucket` && match(s));
  expect(buckets.length).toBeGreaterThan(3);
  const les = buckets.map((b) => (b.labels.le === "+Inf" ? Infinity : Number(b.labels.le)));
  expect([...les].sort((x, y) => x - y)).toEqual(les);
  for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
  const count = one(samples, `${name}_count`, labels);
  expect(buckets.at(-1)!.labels.le).toBe("+Inf");
  expect(buckets.at(-1)!.value).toBe(count);
  expect(one(samples, `${name}_sum`, labels)).toBeGreaterThanOrEqual(0);
  return count;
}

describe("/metrics", () => {
  it("is Prometheus text with the loop, device, interlock and Node figures, and only bounded labels", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.bank.setBit("di", 0, true);
    const cell = await startCell(yaml(a, b), t);
    const port = cell.app.http!.address!.port;
    await cell.waitCycle((c) => c.mode === "running", 5000, "the first complete good scan");
    a.bank.setBit("di", 0, false); // the door opens: one trip
    await cell.waitCycle((c) => c.interlockEvents.some((e) => e.kind === "trip"), 5000, "the interlock trip");
    await waitFor(() => cell.app.loop.stats.cycles > 20, 5000, "a few cycles");

    const cycles0 = cell.app.loop.stats.cycles;
    const res = await get(port, "/metrics");
    // families are read one turn of the event loop apart (a scrape never holds up the tick): cycles may run meanwhile
    const cyclesDuring = cell.app.loop.stats.cycles - cycles0;
    expect(res.status).toBe(200);
    expect(res.type).toContain("text/plain");
    const { samples, types } = parseProm(res.body);

    expect(one(samples, "cellio_cycles_total")).toBeGreaterThan(20);
    expect(types.get("cellio_cycles_total")).toBe("counter");
    expect(expectHistogram(samples, "cellio_cycle_duration_seconds")).toBeGreaterThan(20);
    expectHistogram(samples, "cellio_cycle_lateness_seconds");
    for (const phase of ["input", "logic", "output"]) expectHistogram(samples, "cellio_cycle_phase_duration_seconds", { phase });
    const reads = expectHistogram(samples, "cellio_device_read_duration_seconds", { device: "a" });
    expect(reads).toBeGreaterThan(0);
    expect(types.get("cellio_device_read_duration_seconds")).toBe("histogram");
    // every read is counted; the histogram, read later in the scrape, may hold the reads of the cycles run meanwhile (one a cycle)
    expect(one(samples, "cellio_device_reads_total", { device: "a" })).toBeGreaterThanOrEqual(reads - cyclesDuring);
    // One state at a time (which one may vary on a loaded machine: stale for a moment).
    const states = samples.filter((s) => s.name === "cellio_device_state" && s.labels.device === "a");
    expect(states.map((s) => s.labels.state).sort()).toEqual(["bad", "good", "stale", "waiting"]);
    expect(states.filter((s) => s.value === 1)).toHaveLength(1);
    expect(one(samples, "cellio_device_reconnects_total", { device: "a" })).toBe(0);
    expect(one(samples, "cellio_interlock_trips_total", { interlock: "door_closed" })).toBe(1);
    // One mode at a time; faulted (an overrun fault is possible on a loaded machine) agrees with cellio_loop_faulted.
    const modes = samples.filter((s) => s.name === "cellio_loop_mode");
    expect(modes.map((s) => s.labels.mode).sort()).toEqual(["faulted", "running", "starting"]);
    expect(modes.filter((s) => s.value === 1)).toHaveLength(1);
    expect(one(samples, "cellio_loop_faulted")).toBe(one(samples, "cellio_loop_mode", { mode: "faulted" }));
    expect(one(samples, "cellio_deadline_misses_total", { phase: "input" })).toBeGreaterThanOrEqual(0);
    expect(one(samples, "cellio_cycle_overruns_total")).toBeGreaterThanOrEqual(0);
    expect(one(samples, "cellio_loop_last_cycle_age_seconds")).toBeLessThan(5);
    expect(one(samples, "cellio_loop_realtime_priority")).toBe(0); // no cycle.realtime_priority: normal scheduling
    expect(one(samples, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThan(0);
    // No MQTT or OPC UA configured: their metrics are absent, not a fake 0.
    expect(samples.some((s) => s.name === "cellio_mqtt_connected" || s.name === "cellio_opcua_sessions")).toBe(false);
    // Bounded labels: never a point name.
    const allowed = new Set(["device", "phase", "mode", "state", "kind", "interlock", "result", "le"]);
    for (const s of samples.filter((x) => x.name.startsWith("cellio_"))) {
      for (const k of Object.keys(s.labels)) expect(allowed.has(k), `${s.name} label ${k}`).toBe(true);
    }
    expect(res.body).not.toMatch(/door"|"run"|level"/);
  });

  it("renders between cycles (a scrape never holds up the tick), the same text prom-client renders; a stopped loop does not hold it", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.bank.setBit("di", 0, true);
    const cell = await startCell(yaml(a, b), t);
    await cell.waitCycle((c) => c.mode === "running", 5000, "the first complete good scan");
    const metrics = cell.app.http!.metrics;
    let turns = 0;
    let stop = false;
    const turn = (): void => {
      turns++;
      if (!stop) setImmediate(turn);
    };
    setImmediate(turn);
    const cycles0 = cell.app.loop.stats.cycles;
    const { body } = await metrics.scrape();
    stop = true;
    // it began after a cycle had published, and the event loop kept turning meanwhile
    expect(cell.app.loop.stats.cycles).toBeGreaterThan(cycles0);
    expect(turns).toBeGreaterThan(1);
    const ours = parseProm(body);
    // prom-client's event-loop lag resets at each render and reads "Nan" until its next sample (10 ms)
    await new Promise((r) => setTimeout(r, 100));
    const theirs = parseProm(await metrics.registry.metrics());
    expect([...ours.types]).toEqual([...theirs.types]);
    const series = (samples: PromSample[]): string[] => samples.filter((x) => x.name.startsWith("cellio_")).map((x) => `${x.name}${JSON.stringify(x.labels)}`);
    expect(series(ours.samples)).toEqual(series(theirs.samples));

    cell.app.loop.stop(); // no cycle comes: the scrape still completes
    expect(parseProm((await metrics.scrape()).body).types).toEqual(ours.types);
  });

  it("counts read errors by kind and the reconnects of a device that comes back", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.bank.setBit("di", 0, true);
    const cell = await startCell(yaml(a, b), t);
    const port = cell.app.http!.address!.port;
    await cell.waitCycle((c) => c.mode === "running", 5000, "the first complete good scan");
    await a.stop(); // the device goes away: reads fail
    await waitFor(() => cell.app.runners[0]!.state === "bad", 5000, "a bad");
    const failures = cell.app.runners[0]!.counters.readFailures;
    expect(failures).toBeGreaterThan(0);
    await a.restart(); // and comes back: the driver reconnects
    const driver = cell.app.drivers[0] as unknown as { reconnects: number };
    await waitFor(() => driver.reconnects > 0 && cell.app.runners[0]!.state === "good", 10_000, "the reconnect");
    const { samples } = parseProm((await get(port, "/metrics")).body);
    expect(one(samples, "cellio_device_reconnects_total", { device: "a" })).toBe(driver.reconnects);
    const byKind = samples.filter((s) => s.name === "cellio_device_read_errors_total" && s.labels.device === "a");
    expect(byKind.reduce((n, s) => n + s.value, 0)).toBeGreaterThanOrEqual(failures);
    for (const s of byKind) expect(s.labels.kind).toMatch(/^bad_[a-z_]+$/);
    expect(one(samples, "cellio_device_state", { device: "a", state: "bad" })).toBe(0);
  });
});

describe("/metrics with MQTT", () => {
  it("serves the MQTT connection state from the cell's northStats()", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    const cell = await startCell(`${yaml(a, b)}mqtt:\n  broker: embedded\n  embedded: { port: 0 }\n`, t);
    const port = cell.app.http!.address!.port;
    await waitFor(() => cell.app.northStats().mqttConnected === true, 10_000, "MQTT connected");
    const { samples } = parseProm((await get(port, "/metrics")).body);
    expect(one(samples, "cellio_mqtt_connected")).toBe(1);
    expect(samples.some((s) => s.name === "cellio_opcua_sessions")).toBe(false); // no opcua: block
  });
});

describe("/readyz and /healthz", () => {
  it("/readyz turns not-ready when a required device is lost, not for an optional one, and ready again when it is back", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.bank.setBit("di", 0, true);
    const cell = await startCell(yaml(a, b), t);
    const port = cell.app.http!.address!.port;
    await waitFor(() => cell.app.runners.every((r) => r.state === "good"), 5000, "both devices good");
    expect((await get(port, "/readyz")).status).toBe(200);

    await b.stop(); // optional device lost
    await waitFor(() => cell.app.runners[1]!.state === "bad", 5000, "b bad");
    const r1 = await get(port, "/readyz");
    expect(r1.status, r1.body).toBe(200);
    expect((JSON.parse(r1.body) as { devices: Record<string, unknown> }).devices.b).toEqual({ state: "bad", required: false });

    await a.stop(); // the required device is lost
    await waitFor(() => cell.app.runners[0]!.state === "bad", 5000, "a bad");
    const r2 = await get(port, "/readyz");
    expect(r2.status).toBe(503);
    const body = JSON.parse(r2.body) as { status: string; reasons: string[] };
    expect(body.status).toBe("not ready");
    expect(body.reasons.some((r) => r.startsWith("required device a is bad"))).toBe(true);
    expect(r2.type).toContain("application/json");
    // The loop still runs: alive.
    expect((await get(port, "/healthz")).status).toBe(200);

    await a.restart();
    await waitFor(() => cell.app.runners[0]!.state === "good", 10_000, "a back");
    expect((await get(port, "/readyz")).status).toBe(200);
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    const cell = await startCell(yaml(a, b), t);
    const port = cell.app.http!.address!.port;
    expect((await get(port, "/")).status).toBe(404);
    expect((await get(port, "/metrics", "POST")).status).toBe(405);
    expect((await get(port, "/healthz", "HEAD")).status).toBeOneOf([200, 503]);
  });

  it("a port in use leaves the cell running without the endpoint", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    t.add(() => new Promise<void>((r) => blocker.close(() => r())));
    const used = (blocker.address() as net.AddressInfo).port;
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    const cell = await startCell(yaml(a, b, used), t);
    expect(cell.app.http!.address).toBeUndefined();
    await cell.waitCycle(() => true, 5000, "a cycle");
  });
});
