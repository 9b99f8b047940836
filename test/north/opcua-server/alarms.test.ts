/**
 * OPC UA alarms mirror the core's alarms (core/alarms.ts): an interlock trip
 * raises the condition, an acknowledge through the command path from
 * elsewhere (as MQTT's acknowledge sends it) shows as AckedState true to an
 * OPC UA client, and an OPC UA acknowledge lands in the core.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AttributeIds, ClientMonitoredItem, ClientSubscription, DataType, Variant, coerceNodeId, constructEventFilter, type ClientSession } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opcuaConfigSchema } from "../../../src/north/opcua-server/config.js";
import { hashPassword } from "../../../src/north/opcua-server/password.js";
import { CellOpcuaServer, cellViewOf } from "../../../src/north/opcua-server/server.js";
import { SimDevice, Teardown, startCell, type RunningCell } from "../../integration/helpers.js";
import { StatusCodes, cellNamespace, clientPki, connect, memoryLog, waitUntil, type Connected, type Ns } from "./helpers.js";

const t = new Teardown();
let io: SimDevice;
let cell: RunningCell;
let server: CellOpcuaServer;
let op: Connected;
let ns: Ns;

const yaml = (port: number): string => `
version: 1
cell: { id: alarms }
cycle: { period_ms: 50, input_budget_ms: 20, output_budget_ms: 20 }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 500
    stale_after_ms: 5000
    points:
      door_closed: { address: "di:0" }
      motor: { address: "coil:0", direction: output, safe: false, operator_writable: true }
interlocks:
  door:
    permit: "io.door_closed"
    force: [io.motor]
`;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-opcua-alarms-"));
  t.add(() => rm(dir, { recursive: true, force: true }));
  io = await SimDevice.start(t);
  io.bank.setBit("di", 0, true);
  cell = await startCell(yaml(io.port), t, { start: false });
  const config = opcuaConfigSchema.parse({
    port: 0,
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    state_dir: path.join(dir, "state"),
    users: { op: { password_hash: await hashPassword("operator-pw", { N: 1024 }), role: "operator" } },
  });
  server = new CellOpcuaServer({ config, view: cellViewOf(cell.app), commands: cell.app.loop.logic.commands, log: memoryLog().log });
  t.add(() => server.stop());
  await server.prepare();
  await cell.app.start();
  await cell.waitCycle((c) => c.mode === "running", 10_000, "the first complete good scan");
  const started = await server.start();
  const pki = await clientPki(path.join(dir, "client-pki"), "cellio-alarms-test");
  const cm = server.raw!.serverCertificateManager as unknown as { trustCertificate(der: Buffer): Promise<void> };
  await cm.trustCertificate(await pki.der());
  op = await connect(`opc.tcp://127.0.0.1:${started.port}`, { pki, user: "op", password: "operator-pw" });
  t.add(() => op.close());
  ns = await cellNamespace(op.session, started.namespaceUri);
}, 60_000);

afterAll(() => t.run(), 20_000);

const S = (): ClientSession => op.session;
const FIELDS = ["EventId", "ConditionName", "ActiveState.Id", "AckedState.Id", "Message"];

describe("alarms through the one command path", () => {
  it("an acknowledge from elsewhere (MQTT's path) shows acked in OPC UA; an OPC UA acknowledge lands in the core", async () => {
    const sub = ClientSubscription.create(S(), { requestedPublishingInterval: 50, publishingEnabled: true, requestedMaxKeepAliveCount: 20, requestedLifetimeCount: 100 });
    const events: Array<Record<string, unknown>> = [];
    const mon = ClientMonitoredItem.create(sub, { nodeId: coerceNodeId("i=2253"), attributeId: AttributeIds.EventNotifier }, { queueSize: 100, filter: constructEventFilter(FIELDS), discardOldest: true });
    mon.on("changed", (values: unknown) => events.push(Object.fromEntries(FIELDS.map((f, i) => [f, (values as Variant[])[i]?.value]))));
    await new Promise((r) => setTimeout(r, 300));
    const door = (e: Record<string, unknown>): boolean => e.ConditionName === "interlock.door";
    const alarms = cell.app.loop.logic.alarms;

    // 1. Raised by the trip; acknowledged through the router by "MQTT".
    io.bank.setBit("di", 0, false);
    await waitUntil(() => events.some((e) => door(e) && e["ActiveState.Id"] === true && e["AckedState.Id"] === false), 5000, "the raise event");
    const r = cell.app.loop.logic.commands.submit({ kind: "acknowledge", id: "interlock.door" }, { role: "operator", caller: "mqtt:tech", nowMs: performance.now() });
    expect(r.accepted).toBe(true);
    await waitUntil(() => events.some((e) => door(e) && e["ActiveState.Id"] === true && e["AckedState.Id"] === true), 5000, "the acked event in OPC UA");
    const raise = events.find((e) => door(e) && e["AckedState.Id"] === false)!;
    const ack = await S().call({
      objectId: ns.id("Cell.Interlocks.door.Alarm"),
      methodId: coerceNodeId("i=9111"),
      inputArguments: [new Variant({ dataType: DataType.ByteString, value: raise.EventId }), new Variant({ dataType: DataType.LocalizedText, value: { text: "again" } })],
    });
    // Already acknowledged: the raise's EventId is no longer current (or the branch is acked).
    expect([StatusCodes.BadEventIdUnknown.value, StatusCodes.BadConditionBranchAlreadyAcked.value]).toContain(ack.statusCode.value);

    // 2. Cleared, raised again; acknowledged over OPC UA (Cell.Acknowledge): the core has it acked.
    io.bank.setBit("di", 0, true);
    await waitUntil(() => alarms.state("interlock.door")?.active === false, 5000, "the core alarm to clear");
    await waitUntil(() => door(events.filter(door).at(-1)!) && events.filter(door).at(-1)!["ActiveState.Id"] === false, 5000, "the clear event");
    const before = events.length;
    io.bank.setBit("di", 0, false);
    await waitUntil(() => events.slice(before).some((e) => door(e) && e["ActiveState.Id"] === true && e["AckedState.Id"] === false), 5000, "the second raise");
    expect(alarms.state("interlock.door")?.acked).toBe(false);
    const call = await S().call({
      objectId: ns.id("Cell"),
      methodId: ns.id("Cell.Acknowledge"),
      inputArguments: [new Variant({ dataType: DataType.String, value: "interlock.door" })],
    });
    expect(call.statusCode.value).toBe(StatusCodes.Good.value);
    // The router applies it at the start of the next cycle.
    await waitUntil(() => alarms.state("interlock.door")?.acked === true, 5000, "the core alarm acknowledged");
    await waitUntil(() => events.slice(before).some((e) => door(e) && e["AckedState.Id"] === true), 5000, "the OPC UA acked event");
    io.bank.setBit("di", 0, true);
    await sub.terminate();
  });
});
