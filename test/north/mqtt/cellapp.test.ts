/**
 * End to end on real sockets: a real CellApp scanning a Modbus TCP simulator,
 * its MQTT side on the embedded broker (through cellViewOf(app), as app.ts
 * wires it), and a technician's client. When the simulated device stops
 * answering, its points go bad on MQTT within the device's stale time.
 */
import { afterEach, describe, expect, it } from "vitest";
import { cellViewOf } from "../../../src/north/mqtt/ports.js";
import { SimDevice, Teardown, startCell, waitFor } from "../../integration/helpers.js";
import { FakePort, Tech, mqttConfig, newService, parse } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

const STALE_MS = 400;

describe("CellApp + Modbus simulator + MQTT", () => {
  it("publishes the simulator's values, then bad quality within stale_after_ms once the device stops answering, and good again after", async () => {
    const sim = await SimDevice.start(t);
    sim.bank.setRegister("hr", 0, 1234);
    sim.bank.setBit("di", 0, true);
    const cell = await startCell(
      `
version: 1
cell: { id: mqtt-e2e }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    timeout_ms: 100
    stale_after_ms: ${STALE_MS}
    reconnect: { min_ms: 50, max_ms: 200 }
    points:
      count: { address: "hr:0" }
      door:  { address: "di:0" }
`,
      t,
    );
    const service = newService(mqttConfig({ broker: "embedded", embedded: { port: 0 }, publish_interval_ms: 50, diagnostics_interval_s: 1 }), cellViewOf(cell.app), new FakePort());
    await service.start();
    t.add(() => service.stop(500));
    await waitFor(() => service.connected, 5000, "MQTT connected");

    const tech = await Tech.connect(service.url!, { protocolVersion: 4 });
    t.add(() => tech.end());
    await tech.sub(["cellio/mqtt-e2e/points/#", "cellio/mqtt-e2e/events", "cellio/mqtt-e2e/diagnostics"]);
    const good = parse(await tech.wait("cellio/mqtt-e2e/points/io1/count", (j) => (j as { v?: number }).v === 1234, 5000, "count 1234"));
    expect(good).toMatchObject({ q: "good", s: "good" });
    const door = await tech.wait("cellio/mqtt-e2e/points/io1/door", (j) => (j as { q?: string }).q === "good", 2000);
    expect(parse(door)["v"]).toBe(true);

    const from = tech.messages.length;
    const lostAt = Date.now();
    sim.server.faults.set({ kind: "noAnswer" });
    const bad = parse(
      await tech.wait("cellio/mqtt-e2e/points/io1/count", (j) => (j as { q?: string }).q !== "good", STALE_MS + 1000, "count not good", from),
    );
    const ms = Date.now() - lostAt;
    expect(bad).toMatchObject({ v: 1234, q: "bad" });
    // The source time stays that of the last good read: not refreshed by the failed ones.
    expect(Date.parse(bad["ts"] as string)).toBeGreaterThanOrEqual(Date.parse(good["ts"] as string));
    expect(Date.parse(bad["ts"] as string)).toBeLessThanOrEqual(lostAt + 50);
    expect(ms).toBeLessThanOrEqual(STALE_MS + 1000);
    await tech.wait("cellio/mqtt-e2e/events", (j) => (j as { event?: string }).event === "lost", 2000, "device lost event", from);

    sim.server.faults.clear();
    await tech.wait("cellio/mqtt-e2e/points/io1/count", (j) => (j as { q?: string }).q === "good", 5000, "count good again", from);
    await tech.wait("cellio/mqtt-e2e/events", (j) => (j as { event?: string }).event === "recovered", 2000, "device recovered event", from);
    const recovered = tech.messages.length;
    const diag = parse(await tech.wait("cellio/mqtt-e2e/diagnostics", () => true, 3000, "diagnostics", recovered));
    expect(diag).toMatchObject({ mode: "running", period_ms: 20, devices: { io1: { state: "good" } } });
    expect((diag["loop"] as { cycles: number }).cycles).toBeGreaterThan(0);
  });
});
