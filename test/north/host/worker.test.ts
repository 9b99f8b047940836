/**
 * North in its worker thread, as the daemon runs it: a CellApp on a Modbus
 * simulator with the COMPILED worker entry (builtNorthWorker(): the same
 * sources built by tsc), the embedded MQTT broker and the OPC UA server in
 * that worker. Values reach an MQTT subscriber and an OPC UA client; commands
 * from both go through the worker to the command router on the loop's thread
 * and their answers come back; a killed worker is restarted while the loop
 * runs on; the control mode set over MQTT shows on both and survives the
 * restart; stop() publishes offline.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DataType, MessageSecurityMode, SecurityPolicy } from "node-opcua";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { SimDevice, Teardown, builtNorthWorker, startCell, waitFor } from "../../integration/helpers.js";
import { Tech, parse, sendCommand } from "../mqtt/helpers.js";
import { StatusCodes, call, cellNamespace, clientPki, connect, readValue, waitUntil, write } from "../opcua-server/helpers.js";

const t = new Teardown();
afterEach(() => t.run(), 30_000);

const P = "cellio/north-worker";
let entry = "";

// tsc of the whole daemon (cached by source hash): minutes on a busy machine.
beforeAll(async () => {
  entry = await builtNorthWorker();
}, 300_000);

describe("north in a worker thread (compiled entry, as in production)", () => {
  it("carries values out and commands in for MQTT and OPC UA, survives a killed worker, publishes offline on stop", async () => {
    process.env.CELLIO_TEST_NW_PW = "erin-pw";
    t.add(() => delete process.env.CELLIO_TEST_NW_PW);
    const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-north-worker-"));
    t.add(() => rm(dir, { recursive: true, force: true }));
    const sim = await SimDevice.start(t);
    sim.bank.setBit("di", 0, true);
    sim.bank.setRegister("hr", 0, 100);
    const cell = await startCell(
      `
version: 1
cell: { id: north-worker }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    timeout_ms: 200
    points:
      door:  { address: "di:0" }
      count: { address: "hr:0:int16" }
      lamp:  { address: "coil:0", direction: output, safe: false, operator_writable: true }
      motor: { address: "coil:1", direction: output, safe: false }
interlocks:
  door_closed:
    permit: "io1.door"
    latch: true
    force: { io1.motor: false }
manual_mode: {}
mqtt:
  broker: embedded
  embedded: { port: 0, users: { erin: { password_env: CELLIO_TEST_NW_PW } } }
  publish_interval_ms: 50
  roles: { erin: engineer }
opcua:
  port: 0
  host: 127.0.0.1
  hostname: 127.0.0.1
  security: { allow_none: true, allow_anonymous: true, anonymous_role: operator }
`,
      t,
      { north: { workerEntry: entry }, stateDir: path.join(dir, "state") },
    );
    const north = cell.app.north!;
    expect(north.worker).toBeDefined(); // a real worker thread
    expect(north.local).toBeUndefined(); // nothing north on this thread
    // The worker prepares the OPC UA address space (and its first certificate) before MQTT: minutes on a busy machine.
    await waitFor(() => north.status.mqtt?.connected === true, 150_000, "MQTT connected in the worker");
    await waitFor(() => north.status.opcua?.started !== undefined, 60_000, "OPC UA listening in the worker");
    await cell.waitCycle((c) => c.mode === "running", 5000, "running");

    // MQTT: a value change at the device reaches a subscriber.
    const url = north.status.mqtt!.url!;
    const watcher = await Tech.connect(url, { protocolVersion: 4 });
    t.add(() => watcher.end());
    await watcher.sub(`${P}/#`);
    await watcher.wait(`${P}/points/io1/count`, (j) => (j as { v?: number }).v === 100, 5000, "count 100");
    sim.bank.setRegister("hr", 0, 321);
    await watcher.wait(`${P}/points/io1/count`, (j) => (j as { v?: number }).v === 321, 5000, "count 321");

    // MQTT command: through the worker to the router, applied at the device, answered.
    const erin = await Tech.connect(url, { protocolVersion: 4, username: "erin", password: "erin-pw" });
    t.add(() => erin.end());
    expect(await sendCommand(erin, P, "erin", "set", { point: "io1.lamp", value: true }, 4)).toMatchObject({ accepted: true });
    await waitFor(() => sim.bank.getBit("coil", 0), 3000, "lamp on at the device");

    // OPC UA: the value and a write (operator, operator-writable) through the router; a refused one too.
    const pki = await clientPki(path.join(dir, "client-pki"), "cellio-north-worker-test");
    const opcua = north.status.opcua!.started!;
    // No opcua.state_dir: the server's certificates live in the cell's state folder (as the state file does).
    expect(opcua.pkiDir).toBe(path.join(dir, "state", "opcua-server", "pki"));
    const c = await connect(`opc.tcp://127.0.0.1:${opcua.port}`, { pki, mode: MessageSecurityMode.None, policy: SecurityPolicy.None });
    t.add(() => c.close());
    const ns = await cellNamespace(c.session, opcua.namespaceUri);
    await waitUntil(async () => (await readValue(c.session, ns.id("Cell.Devices.io1.count"))).value.value === 321, 5000, "count 321 over OPC UA");
    expect((await write(c.session, ns.id("Cell.Devices.io1.lamp"), DataType.Boolean, false)).value).toBe(StatusCodes.Good.value);
    await waitFor(() => !sim.bank.getBit("coil", 0), 3000, "lamp off at the device (OPC UA write)");
    await waitUntil(() => (north.status.opcua?.sessions ?? 0) > 0, 3000, "the session counted in the status");

    // The door opens: the latched interlock trips; a reset is refused by the router (permit false), over both.
    sim.bank.setBit("di", 0, false);
    await watcher.wait(`${P}/interlocks/door_closed`, (j) => (j as { tripped?: boolean }).tripped === true, 3000, "tripped");
    const reset = await call(c.session, ns, "ResetInterlock", ["door_closed"]);
    expect(reset.status.value).not.toBe(StatusCodes.Good.value);
    expect(reset.message).toMatch(/door_closed|permit/);
    expect(await sendCommand(erin, P, "erin", "set", { point: "io1.motor", value: true }, 4)).toMatchObject({ accepted: false, code: "interlocked" });
    sim.bank.setBit("di", 0, true);
    await waitFor(() => cell.app.loop.logic.interlocks.state("door_closed")?.permitted === true, 3000, "permit back");
    expect((await call(c.session, ns, "ResetInterlock", ["door_closed"])).status.value).toBe(StatusCodes.Good.value);
    await watcher.wait(`${P}/interlocks/door_closed`, (j) => (j as { tripped?: boolean }).tripped === false, 3000, "reset");

    // The control mode through the worker: an engineer switches to manual over MQTT; MQTT and OPC UA show it.
    await watcher.wait(`${P}/mode`, (j) => (j as { mode?: string }).mode === "auto", 5000, "mode auto (retained)");
    const toManual = watcher.messages.length;
    expect(await sendCommand(erin, P, "erin", "set_mode", { mode: "manual" }, 4)).toMatchObject({ accepted: true });
    const manual = parse(await watcher.wait(`${P}/mode`, (j) => (j as { mode?: string }).mode === "manual", 5000, "mode manual", toManual));
    expect(manual).toMatchObject({ mode: "manual", by: "engineer mqtt:erin", manual_permitted: true });
    await watcher.wait(`${P}/events`, (j) => (j as { type?: string; event?: string }).type === "mode" && (j as { event?: string }).event === "switch", 5000, "mode event", toManual);
    await waitUntil(async () => (await readValue(c.session, ns.id("Cell.ControlMode"))).value.value === "manual", 5000, "Cell.ControlMode manual over OPC UA");
    // Who and when: the same switch as MQTT's `by` and `since`, through the same worker state.
    const since = Date.parse((manual as { since: string }).since);
    await waitUntil(async () => ((await readValue(c.session, ns.id("Cell.ControlModeSince"))).value.value as Date | null)?.getTime() === since, 5000, "Cell.ControlModeSince over OPC UA");
    expect((await readValue(c.session, ns.id("Cell.ControlModeBy"))).value.value).toBe("engineer mqtt:erin");
    await c.close();

    // The worker dies: the loop runs on, the worker comes back with MQTT (a new embedded broker port).
    const cyclesBefore = cell.app.loop.stats.summary().cycles;
    const old = north.worker!;
    await old.terminate();
    await waitFor(() => north.worker !== undefined && north.worker !== old && north.status.phase === "ready" && north.status.mqtt?.connected === true, 150_000, "north worker restarted");
    expect(cell.app.loop.stats.summary().cycles).toBeGreaterThan(cyclesBefore);
    const again = await Tech.connect(north.status.mqtt!.url!, { protocolVersion: 4 });
    t.add(() => again.end());
    await again.sub(`${P}/#`);
    sim.bank.setRegister("hr", 0, 777);
    await again.wait(`${P}/points/io1/count`, (j) => (j as { v?: number }).v === 777, 5000, "count 777 after the restart");
    // The new worker (and its new broker) got the whole mode in its first delta: the same switch, its time and author.
    expect(parse(await again.wait(`${P}/mode`, (_j, r) => r.packet.retain, 5000, "retained mode after the restart"))).toEqual(manual);

    // Stop: the worker publishes the explicit offline before its broker goes away.
    const from = again.messages.length;
    await cell.app.stop(1000);
    const off = await again.wait(`${P}/status`, (j) => (j as { state?: string }).state === "offline", 3000, "offline", from);
    expect(parse(off)).toMatchObject({ reason: "shutdown" });
    expect(north.worker).toBeUndefined();
  }, 420_000);
});
