/**
 * The OPC UA server as the demo runs it, wired by CellApp from the config's
 * `opcua:` block: SecurityPolicy None and anonymous sessions allowed, which
 * it says at warn level. Anonymous is a viewer by default: it reads, it does
 * not write. CellApp starts it after the first cycle and stops it with the
 * cell. The PKI is created on first start and reused (same application
 * certificate) on the next.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AttributeIds, DataType, MessageSecurityMode, SecurityPolicy, TimestampsToReturn } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opcuaConfigSchema } from "../../../src/north/opcua-server/config.js";
import { CellOpcuaServer, cellViewOf } from "../../../src/north/opcua-server/server.js";
import { SimDevice, Teardown, startCell, type RunningCell } from "../../integration/helpers.js";
import { StatusCodes, cellNamespace, clientPki, connect, connectError, memoryLog, waitUntil, write, type ClientPki } from "./helpers.js";

const t = new Teardown();
let dir: string;
let cell: RunningCell;
let pki: ClientPki;
let stateDir: string;
const logs = memoryLog();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "cellio-opcua-demo-"));
  t.add(() => rm(dir, { recursive: true, force: true }));
  const io = await SimDevice.start(t);
  io.bank.setBit("di", 0, true);
  stateDir = path.join(dir, "state");
  cell = await startCell(
    `
version: 1
cell: { id: demo-test }
cycle: { period_ms: 50, input_budget_ms: 20, output_budget_ms: 20 }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${io.port}
    timeout_ms: 500
    stale_after_ms: 3000
    points:
      door_closed:  { address: "di:0", type: bool }
      conveyor_run: { address: "coil:0", direction: output, safe: false, operator_writable: true }
opcua:
  port: 0
  host: 127.0.0.1
  hostname: 127.0.0.1
  state_dir: ${JSON.stringify(stateDir)}
  security: { allow_none: true, allow_anonymous: true }
`,
    t,
    { start: false },
  );

  pki = await clientPki(path.join(dir, "client-pki"), "cellio-demo-test");
}, 60_000);

afterAll(() => t.run(), 20_000);

function demoServer(): CellOpcuaServer {
  const config = opcuaConfigSchema.parse({
    port: 0,
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    state_dir: stateDir,
    security: { allow_none: true, allow_anonymous: true },
  });
  return new CellOpcuaServer({ config, view: cellViewOf(cell.app), commands: cell.app.loop.logic.commands, log: logs.log });
}

describe("demo configuration", () => {
  it("CellApp starts the server after the first cycle; an anonymous None session reads, may not write; stop() stops it", async () => {
    const app = cell.app;
    expect(app.north).toBeDefined(); // in-thread here (startCell); test/north/host/worker.test.ts covers the worker thread
    await app.start();
    const started = app.north!.status.opcua!.started!;
    expect(started.namespaceUri).toBe("urn:cellio:demo-test");
    expect(cell.cycles.length).toBeGreaterThan(0);
    const url = `opc.tcp://127.0.0.1:${started.port}`;
    const c = await connect(url, { pki, mode: MessageSecurityMode.None, policy: SecurityPolicy.None });
    try {
      const ns = await cellNamespace(c.session, started.namespaceUri);
      await cell.waitCycle((x) => x.mode === "running", 10_000, "the first complete good scan");
      // The cycle reaches the server's mirror of the cell a message later: read until it is there.
      let dv = await c.session.read({ nodeId: ns.id("Cell.Devices.io1.door_closed"), attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
      await waitUntil(
        async () => {
          app.north!.local!.opcua!.flush();
          dv = await c.session.read({ nodeId: ns.id("Cell.Devices.io1.door_closed"), attributeId: AttributeIds.Value }, TimestampsToReturn.Both);
          return dv.value.value === true;
        },
        5000,
        "door_closed true over OPC UA",
      );
      expect(dv.statusCode.value).toBe(StatusCodes.Good.value);
      // Anonymous is a viewer here: the operator-writable output stays read-only for it.
      expect((await write(c.session, ns.id("Cell.Devices.io1.conveyor_run"), DataType.Boolean, true)).value).toBe(StatusCodes.BadUserAccessDenied.value);
    } finally {
      await c.close();
    }
    await app.stop(2000);
    expect(app.north!.local).toBeUndefined();
    expect(await connectError(url, { pki, mode: MessageSecurityMode.None, policy: SecurityPolicy.None })).toBeDefined();
  });

  it("warns that None and anonymous are on, and keeps its certificate across restarts", async () => {
    const certFile = path.join(stateDir, "pki", "own", "certs", "certificate.pem");
    const cert = await readFile(certFile, "utf8");
    const server = demoServer();
    t.add(() => server.stop());
    await server.start();
    const warnings = logs.lines.filter((l) => l.level === 40).map((l) => String(l.msg));
    expect(warnings.some((m) => m.includes("SecurityPolicy None is offered"))).toBe(true);
    expect(warnings.some((m) => m.includes("anonymous sessions are accepted") && m.includes("viewer"))).toBe(true);
    expect(await readFile(certFile, "utf8")).toBe(cert);
    await server.stop();
  });
});
