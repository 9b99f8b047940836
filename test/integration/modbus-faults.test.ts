/**
 * Device faults over real sockets: a device that stops answering, drops its
 * connection, refuses connections or restarts; and a storm of mixed faults.
 * The faulty device goes bad and comes back by itself; the other device is
 * not slowed down; outputs that depend on lost inputs go safe.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Fault } from "../../simulators/modbus/index.js";
import { MALFORMATIONS } from "../../simulators/modbus/index.js";
import { lastValueFrom } from "rxjs";
import { loadConfigText } from "../../src/config/load.js";
import { ModbusTcpDriver } from "../../src/drivers/modbus/driver.js";
import { systemClock } from "../../src/infra/clock.js";
import { silentLogger } from "../../src/infra/logger.js";
import { SimDevice, TcpProxy, Teardown, intervals, median, recordRequestTimes, sleep, startCell, trapUnhandled, waitFor, type RunningCell } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

const PERIOD = 20;
const TIMEOUT = 100;

/**
 * `lost` and `other`, one request per read each (their points are
 * contiguous). `other.run` is driven from `lost`'s inputs, so it goes safe
 * when `lost` is lost.
 */
function cellYaml(lost: SimDevice, other: SimDevice): string {
  return `
version: 1
cell: { id: itest-faults }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  lost:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${lost.port}
    timeout_ms: ${TIMEOUT}
    reconnect: { min_ms: 50, max_ms: 400 }
    points:
      temp:  { address: "hr:0:float32" }
      count: { address: "hr:2" }
  other:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${other.port}
    timeout_ms: ${TIMEOUT}
    reconnect: { min_ms: 50, max_ms: 400 }
    points:
      level: { address: "ir:0" }
      run:   { address: "coil:0", direction: output, safe: false }
      own:   { address: "coil:1", direction: output, safe: false }
logic:
  other.run: "lost.temp > 20"
  other.own: "other.level > 5"
`;
}

async function runningCell(lost: SimDevice, other: SimDevice): Promise<RunningCell> {
  lost.bank.setFloat32("hr", 0, 42.5);
  lost.bank.setRegister("hr", 2, 7);
  other.bank.setRegister("ir", 0, 9);
  const cell = await startCell(cellYaml(lost, other), t);
  await cell.waitCycle((c) => c.mode === "running", 3000, "the first complete good scan");
  await waitFor(() => other.bank.getBit("coil", 0) && other.bank.getBit("coil", 1), 1000, "logic outputs on");
  return cell;
}

const lostIsGood = (cell: RunningCell) => (c: Parameters<Parameters<RunningCell["waitCycle"]>[0]>[0]) =>
  c.image[cell.idx("lost.temp")]!.quality === "good" && c.image[cell.idx("lost.count")]!.quality === "good";

describe("one device stops answering", () => {
  it("turns its points bad_timeout within timeout + a cycle or two, freezes their source times, leaves the other device's cadence alone, and recovers by itself", async () => {
    const lost = await SimDevice.start(t);
    const other = await SimDevice.start(t);
    const cell = await runningCell(lost, other);

    // Cadence, seen from the simulator: when each request to `other` arrives. The
    // median gap between requests must stay one period, before and during; the
    // median, because on a loaded 2-core machine the loop may skip a few ticks.
    const WINDOW = 1500;
    const measure = async (): Promise<{ requests: number; cycles: number; medianGapMs: number }> => {
      let cycles = 0;
      const sub = cell.app.loop.cycles$.subscribe(() => cycles++);
      const rec = recordRequestTimes(other.server);
      await sleep(WINDOW);
      rec.stop();
      sub.unsubscribe();
      return { requests: rec.times.length, cycles, medianGapMs: median(intervals(rec.times)) };
    };
    const baseline = await measure();
    const good = cell.cycles.at(-1)!;
    const lastGoodTs = cell.sample(good, "lost.temp").sourceTs;

    const tFault = performance.now();
    lost.server.faults.set({ kind: "noAnswer" });
    const firstBad = await cell.waitCycle((c) => c.image[cell.idx("lost.temp")]!.quality === "bad", TIMEOUT + 1000, "lost.temp bad");
    const elapsed = performance.now() - tFault;
    // The request in flight when the fault was set was answered; the next one times out after TIMEOUT.
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 2);
    expect(elapsed).toBeLessThanOrEqual(TIMEOUT + 2 * PERIOD + 150); // + scheduling slack on a loaded 2-core machine
    expect(cell.sample(firstBad, "lost.temp").status).toBe("bad_timeout");
    expect(cell.sample(firstBad, "lost.count").status).toBe("bad_timeout");
    // The value stays what was last read, the source time stays frozen.
    expect(cell.sample(firstBad, "lost.temp").value).toBe(42.5);
    const frozenTs = cell.sample(firstBad, "lost.temp").sourceTs;
    expect(frozenTs).toBeGreaterThanOrEqual(lastGoodTs);
    expect(frozenTs).toBeLessThan(Date.now() - TIMEOUT + 5);
    // The output computed from the lost inputs goes safe; the one from the healthy device does not.
    expect(firstBad.commanded[cell.idx("other.run")]).toBe(false);
    await waitFor(() => !other.bank.getBit("coil", 0), 1000, "other.run written safe (false)");
    expect(other.bank.getBit("coil", 1)).toBe(true);

    // While lost stays dead, other is read at the same rate as before.
    const during = await measure();
    const c = cell.cycles.at(-1)!;
    expect(c.image[cell.idx("other.level")]!.quality).toBe("good");
    expect(c.image[cell.idx("lost.temp")]!.quality).toBe("bad");
    expect(c.image[cell.idx("lost.temp")]!.sourceTs).toBe(frozenTs);
    expect(c.image[cell.idx("lost.count")]!.sourceTs).toBe(cell.sample(firstBad, "lost.count").sourceTs);
    // Every cycle since the fault saw other good and lost never good again.
    const since = cell.cycles.filter((x) => x.cycle >= firstBad.cycle);
    expect(since.every((x) => x.image[cell.idx("other.level")]!.quality === "good")).toBe(true);
    expect(since.every((x) => x.image[cell.idx("lost.temp")]!.quality === "bad")).toBe(true);
    const figures =
      `other: ${baseline.requests} requests in ${baseline.cycles} cycles before, median gap ${baseline.medianGapMs.toFixed(2)} ms; ` +
      `${during.requests} in ${during.cycles} cycles during, median gap ${during.medianGapMs.toFixed(2)} ms (${WINDOW} ms windows)`;
    expect(baseline.requests, figures).toBeGreaterThan((0.5 * WINDOW) / PERIOD); // sanity: enough samples
    expect(during.requests, figures).toBeGreaterThan((0.5 * WINDOW) / PERIOD);
    expect(Math.abs(baseline.medianGapMs - PERIOD), figures).toBeLessThan(0.1 * PERIOD);
    expect(Math.abs(during.medianGapMs / baseline.medianGapMs - 1), figures).toBeLessThan(0.1);
    // Read in (nearly) every cycle the loop ran, during as before.
    expect(during.requests / during.cycles, figures).toBeGreaterThan(0.9 * Math.min(1, baseline.requests / baseline.cycles));

    // The fault clears: lost comes back by itself, values fresh, output back on.
    lost.bank.setFloat32("hr", 0, 30.25);
    lost.server.faults.clear();
    const tClear = Date.now();
    const back = await cell.waitCycle(lostIsGood(cell), 3000, "lost good again");
    expect(cell.sample(back, "lost.temp").value).toBe(30.25);
    expect(cell.sample(back, "lost.temp").sourceTs).toBeGreaterThanOrEqual(tClear);
    await waitFor(() => other.bank.getBit("coil", 0), 1000, "other.run back on");
  });
});

describe("connection loss", () => {
  it("reconnects by itself after a disconnect", async () => {
    const lost = await SimDevice.start(t);
    const other = await SimDevice.start(t);
    const cell = await runningCell(lost, other);
    const connections = lost.server.stats.connections;
    lost.server.faults.disconnect();
    await waitFor(() => lost.server.stats.connections > connections, 2000, "a new connection");
    lost.bank.setRegister("hr", 2, 8);
    const c = await cell.waitCycle((x) => lostIsGood(cell)(x) && x.image[cell.idx("lost.count")]!.value === 8, 2000, "fresh values");
    expect(cell.sample(c, "other.level").quality).toBe("good");
    await waitFor(() => other.bank.getBit("coil", 0), 1000, "other.run on");
  });

  it("is bad while connections are refused, backs off, and is good again when they are accepted", async () => {
    const lost = await SimDevice.start(t);
    const other = await SimDevice.start(t);
    const cell = await runningCell(lost, other);
    lost.server.faults.set({ kind: "refuseConnections" });
    lost.server.faults.disconnect();
    const bad = await cell.waitCycle((x) => x.image[cell.idx("lost.temp")]!.quality === "bad", 1000, "lost bad");
    expect(cell.sample(bad, "lost.temp").status).toBe("bad_no_communication");
    await waitFor(() => !other.bank.getBit("coil", 0), 1000, "other.run safe");
    // Backoff: 50 ms doubling to 400 ms with jitter. In 1.5 s that is at most ~10
    // attempts; without backoff (a retry per cycle or per 50 ms) it would be 30 or more.
    const refused0 = lost.server.stats.refused;
    await sleep(1500);
    const attempts = lost.server.stats.refused - refused0;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts, `${attempts} connection attempts in 1.5 s`).toBeLessThanOrEqual(14);
    expect(cell.latest("lost.temp")!.quality).toBe("bad");
    expect(cell.latest("other.level")!.quality).toBe("good");

    lost.server.faults.clear();
    await cell.waitCycle(lostIsGood(cell), 2000, "lost good again");
    await waitFor(() => other.bank.getBit("coil", 0), 1000, "other.run on");
  });

  it("comes back after the device restarts (port closed, then listening again)", async () => {
    const lost = await SimDevice.start(t);
    const other = await SimDevice.start(t);
    const cell = await runningCell(lost, other);
    await lost.stop();
    const bad = await cell.waitCycle((x) => x.image[cell.idx("lost.temp")]!.quality === "bad", 1000, "lost bad");
    expect(cell.sample(bad, "lost.temp").status).toBe("bad_no_communication");
    await sleep(800);
    expect(cell.latest("lost.temp")!.quality).toBe("bad");
    expect(cell.latest("other.level")!.quality).toBe("good");
    lost.bank.setRegister("hr", 2, 99);
    await lost.restart();
    const c = await cell.waitCycle((x) => lostIsGood(cell)(x) && x.image[cell.idx("lost.count")]!.value === 99, 2000, "lost good after restart");
    expect(cell.sample(c, "lost.count").value).toBe(99);
    expect(lost.server.stats.connections).toBe(1);
  });
});

describe("connection reset (RST) and requests cut off by a close", () => {
  it("reconnects after the connection is reset (ECONNRESET), although no orderly close was seen", async () => {
    const lost = await SimDevice.start(t);
    const other = await SimDevice.start(t);
    const proxy = await TcpProxy.start(() => lost.port, t);
    lost.bank.setRegister("hr", 2, 1);
    const yaml = cellYaml(lost, other).replace(`port: ${lost.port}`, `port: ${proxy.port}`);
    const cell = await startCell(yaml, t);
    await cell.waitCycle((c) => c.mode === "running", 3000, "the first complete good scan");
    for (let round = 2; round <= 4; round++) {
      const connections = proxy.connections;
      proxy.reset();
      await cell.waitCycle((c) => c.image[cell.idx("lost.count")]!.quality === "bad", 1000, `lost bad after reset ${round - 1}`);
      lost.bank.setRegister("hr", 2, round);
      await cell.waitCycle(
        (c) => lostIsGood(cell)(c) && c.image[cell.idx("lost.count")]!.value === round,
        2000,
        `lost good again after reset ${round - 1}`,
      );
      expect(proxy.connections).toBeGreaterThan(connections);
    }
  });

  it("settles a read in flight when the driver closes the connection, instead of waiting forever", async () => {
    const dev = await SimDevice.start(t);
    const { model } = loadConfigText(`
version: 1
cell: { id: itest-inflight }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  d:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${dev.port}
    timeout_ms: 10000
    points:
      count: { address: "hr:0" }
`);
    const d = model.devices[0]!;
    if (d.config.protocol !== "modbus-tcp") throw new Error("modbus-tcp expected");
    const driver = new ModbusTcpDriver("d", d.config, [...model.points], systemClock, silentLogger());
    t.add(() => driver.stop());
    await driver.start();
    const sink = { put: () => undefined };
    await waitFor(() => dev.server.stats.connections === 1, 2000, "connected");
    const ok = await lastValueFrom(driver.read(sink));
    expect(ok.ok).toBe(true);

    dev.server.faults.set({ kind: "noAnswer" });
    const pending = lastValueFrom(driver.read(sink));
    await waitFor(() => dev.server.stats.dropped === 1, 1000, "the read to reach the device");
    const t0 = performance.now();
    await driver.stop();
    const outcome = await Promise.race([pending, sleep(2000).then(() => "still pending after 2 s" as const)]);
    expect(outcome).toMatchObject({ ok: false, status: "bad_no_communication" });
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe("no wedged connection after many faults", () => {
  /** One fault for the next request (or connection), chosen by `rnd`. */
  function pickFault(rnd: (n: number) => number): { fault: Fault; count: number } | "disconnect" | "refuse" {
    switch (rnd(9)) {
      case 0:
        return { fault: { kind: "noAnswer" }, count: 1 };
      case 1:
        return "disconnect";
      case 2:
        return { fault: { kind: "garbage" }, count: 1 };
      case 3:
        return { fault: { kind: "latency", ms: 5 + rnd(3 * STORM_TIMEOUT), jitterMs: 5 }, count: 1 };
      case 4:
        return { fault: { kind: "exception", code: 1 + rnd(11) }, count: 1 };
      case 5:
        return { fault: { kind: "busy" }, count: 1 };
      case 6:
        return { fault: { kind: "malform", malformation: MALFORMATIONS[rnd(MALFORMATIONS.length)]! }, count: 1 };
      case 7:
        return "refuse";
      default:
        return { fault: { kind: "dropEvery", n: 2 }, count: 2 };
    }
  }

  const STORM_DEVICES = 5;
  const STORM_FAULTS = 1000;
  const STORM_TIMEOUT = 30;

  it("survives 1,000 mixed faults (each one consumed by a real request or connection) and reads good values when they stop", async () => {
    const unhandled = trapUnhandled(t);
    const other = await SimDevice.start(t);
    const storm: SimDevice[] = [];
    for (let i = 0; i < STORM_DEVICES; i++) storm.push(await SimDevice.start(t));
    other.bank.setRegister("ir", 0, 9);
    // Storm devices: inputs, a coil and a register bit driven from other.level, which
    // the test toggles, so writes (FC15 and read-modify-write) run into faults too.
    const yaml = `
version: 1
cell: { id: itest-storm }
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4, overrun: { fault_after: 1000 } }
devices:
  other:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${other.port}
    timeout_ms: 500
    points:
      level: { address: "ir:0" }
${storm
  .map(
    (d, i) => `  s${i}:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${d.port}
    timeout_ms: ${STORM_TIMEOUT}
    reconnect: { min_ms: 10, max_ms: 100 }
    points:
      count: { address: "hr:0" }
      temp:  { address: "hr:1:float32" }
      out:   { address: "coil:0", direction: output, safe: false }
      bit:   { address: "hr:10.1", direction: output, safe: false }`,
  )
  .join("\n")}
logic:
${storm.map((_, i) => `  s${i}.out: "other.level > 5"\n  s${i}.bit: "other.level > 5"`).join("\n")}
`;
    const cell = await startCell(yaml, t);
    const allGood = (c: { image: readonly { quality: string }[] }) => c.image.every((s) => s.quality === "good");
    const running = await cell.waitCycle((c) => c.mode === "running", 3000, "the first complete good scan");
    const resourcesBefore = activeResources();

    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const kinds = new Map<string, number>();
    let consumed = 0;
    let toggling = true;
    const toggler = (async () => {
      while (toggling) {
        other.bank.setRegister("ir", 0, other.bank.getRegister("ir", 0) === 9 ? 1 : 9);
        await sleep(50);
      }
    })();
    const worker = async (d: SimDevice, n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const f = pickFault(rnd);
        const kind = typeof f === "string" ? f : f.fault.kind;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);

        const s = d.server.stats;
        if (f === "disconnect") {
          const connections = s.connections;
          d.server.faults.disconnect();
          if (await settles(() => s.connections > connections)) consumed++;
          continue;
        }
        if (f === "refuse") {
          const refused = s.refused;
          d.server.faults.set({ kind: "refuseConnections" }, { count: 1 });
          d.server.faults.disconnect();
          if (await settles(() => s.refused > refused)) consumed++;
          continue;
        }
        d.server.faults.set(f.fault, { count: f.count });
        if (await settles(() => d.server.faults.active().length === 0)) consumed++;
        d.server.faults.clear();
      }
    };
    await Promise.all(storm.map((d) => worker(d, STORM_FAULTS / STORM_DEVICES)));
    toggling = false;
    await toggler;

    const total = [...kinds.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(STORM_FAULTS);
    expect(kinds.size).toBe(9);
    // Nearly every fault met a request or a connection attempt (a few may find the driver backing off).
    expect(consumed, `consumed ${consumed} of ${total}: ${JSON.stringify([...kinds])}`).toBeGreaterThanOrEqual(0.95 * total);
    // The driver saw them.
    const failures = cell.app.runners.filter((r) => r.name.startsWith("s")).reduce((a, r) => a + r.counters.readFailures + r.counters.writeFailures, 0);
    expect(failures).toBeGreaterThan(STORM_FAULTS / 4);
    // The healthy device never noticed.
    const during = cell.cycles.filter((c) => c.cycle > running.cycle);
    expect(during.length).toBeGreaterThan(100);
    expect(during.every((c) => c.image[cell.idx("other.level")]!.quality === "good")).toBe(true);

    // Faults stop: every device good again, fresh values flow, outputs follow.
    other.bank.setRegister("ir", 0, 9);
    storm.forEach((d, i) => {
      d.server.faults.clear();
      d.bank.setRegister("hr", 0, 4000 + i);
      d.bank.setFloat32("hr", 1, 0.5 + i);
    });
    const c = await cell.waitCycle(
      (x) => allGood(x) && storm.every((_, i) => x.image[cell.idx(`s${i}.count`)]!.value === 4000 + i),
      3000,
      "every storm device good with fresh values",
    );
    storm.forEach((_, i) => expect(cell.sample(c, `s${i}.temp`).value).toBe(0.5 + i));
    storm.forEach((d) => d.bank.setRegister("hr", 0, 17));
    await cell.waitCycle((x) => storm.every((_, i) => x.image[cell.idx(`s${i}.count`)]!.value === 17), 1000, "a later change too");
    await waitFor(() => storm.every((d) => d.bank.getBit("coil", 0) && (d.bank.getRegister("hr", 10) & 2) === 2), 1000, "outputs on");
    // No leaked connections, and nothing went unhandled.
    for (const d of storm) expect(d.server.stats.activeConnections).toBeLessThanOrEqual(1);
    expect(unhandled).toEqual([]);
    // Nor leaked sockets or timers in this process (cellio's and the simulators' both): 1,000 faults
    // and the reconnects they caused left as many as a healthy cell has.
    const after = activeResources();
    expect(after.TCPSocketWrap, JSON.stringify({ resourcesBefore, after })).toBe(resourcesBefore.TCPSocketWrap);
    expect(after.TCPServerWrap).toBe(resourcesBefore.TCPServerWrap);
    // timers: the tick's, at most one request deadline per device in flight, the test's own wait
    expect(after.Timeout ?? 0).toBeLessThanOrEqual((resourcesBefore.Timeout ?? 0) + STORM_DEVICES);
  });
});

/** This process's live handles by kind (sockets, servers, timers). */
function activeResources(): Record<string, number> {
  const n: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) n[kind] = (n[kind] ?? 0) + 1;
  return n;
}

/** Wait until `cond` holds, at most 500 ms; whether it did. */
async function settles(cond: () => boolean): Promise<boolean> {
  try {
    await waitFor(cond, 500, "");
    return true;
  } catch {
    return false;
  }
}
