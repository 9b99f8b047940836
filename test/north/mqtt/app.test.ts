/**
 * MQTT as app.ts wires it: a cell config with an `mqtt:` block, a real
 * CellApp on a Modbus TCP simulator, the embedded broker, and commands
 * through the real command path (router, manual values, interlocks) down to
 * the simulated device.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SimDevice, Teardown, startCell, waitFor } from "../../integration/helpers.js";
import { ROOT, Tech, parse, sendCommand } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

const P = "cellio/mqtt-app";

describe("CellApp with an mqtt: block", () => {
  it("starts MQTT after the loop, takes commands through the real command path, and publishes offline on stop", async () => {
    process.env.CELLIO_TEST_ERIN_PW = "erin-pw";
    t.add(() => delete process.env.CELLIO_TEST_ERIN_PW);
    const sim = await SimDevice.start(t);
    sim.bank.setBit("di", 0, true);
    const cell = await startCell(
      `
version: 1
cell: { id: mqtt-app }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8, overrun: { fault_after: 1000 } } # overruns of a loaded test machine must not fault the cell here
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    timeout_ms: 100
    points:
      door:  { address: "di:0" }
      lamp:  { address: "coil:0", direction: output, safe: false, operator_writable: true }
      motor: { address: "coil:1", direction: output, safe: false }
interlocks:
  door_closed:
    permit: "io1.door"
    force: { io1.motor: false }
mqtt:
  broker: embedded
  embedded: { port: 0, users: { erin: { password_env: CELLIO_TEST_ERIN_PW } } }
  publish_interval_ms: 50
  roles: { erin: engineer }
`,
      t,
    );
    // North runs in-thread here (startCell); test/north/host/worker.test.ts covers the worker thread.
    const north = cell.app.north!;
    expect(north).toBeDefined();
    await waitFor(() => north.status.mqtt?.connected === true, 5000, "MQTT connected");
    const mqtt = { url: north.status.mqtt!.url };
    await cell.waitCycle((c) => c.mode === "running", 3000, "running");

    const watcher = await Tech.connect(mqtt.url!, { protocolVersion: 4 });
    t.add(() => watcher.end());
    await watcher.sub(`${P}/#`);
    const birth = parse(await watcher.wait(`${P}/status`, (j) => (j as { state?: string }).state === "online", 3000));
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(birth).toMatchObject({ version: pkg.version, config_hash: expect.stringMatching(/^[0-9a-f]{12}$/) as unknown });
    await watcher.wait(`${P}/interlocks/door_closed`, (j) => (j as { tripped?: boolean }).tripped === false, 3000);

    const erin = await Tech.connect(mqtt.url!, { protocolVersion: 4, username: "erin", password: "erin-pw" });
    t.add(() => erin.end());
    // Accepted, applied at the next cycle, written to the device, and back on MQTT.
    expect(await sendCommand(erin, P, "erin", "set", { point: "io1.lamp", value: true }, 4)).toEqual({ accepted: true, correlation_id: expect.any(String) as unknown });
    await waitFor(() => sim.bank.getBit("coil", 0), 3000, "the lamp coil on at the device");
    await watcher.wait(`${P}/points/io1/lamp`, (j) => (j as { v?: boolean }).v === true, 3000, "lamp true on MQTT");
    await watcher.wait(`${P}/events`, (j) => (j as { type?: string; event?: string }).type === "command" && (j as { event?: string }).event === "applied", 3000);

    // The door opens: the interlock trips, and setting the motor is refused as interlocked.
    sim.bank.setBit("di", 0, false);
    await watcher.wait(`${P}/interlocks/door_closed`, (j) => (j as { tripped?: boolean }).tripped === true, 3000, "interlock tripped");
    await watcher.wait(`${P}/events`, (j) => (j as { type?: string; event?: string }).type === "interlock" && (j as { event?: string }).event === "trip", 3000);
    expect(await sendCommand(erin, P, "erin", "set", { point: "io1.motor", value: true }, 4)).toMatchObject({ accepted: false, code: "interlocked" });
    expect(sim.bank.getBit("coil", 1)).toBe(false);

    // Stop: offline (shutdown) is published before the embedded broker goes away.
    const from = watcher.messages.length;
    await cell.app.stop(1000);
    const off = await watcher.wait(`${P}/status`, (j) => (j as { state?: string }).state === "offline", 2000, "offline", from);
    expect(parse(off)).toMatchObject({ reason: "shutdown" });
  });
});
