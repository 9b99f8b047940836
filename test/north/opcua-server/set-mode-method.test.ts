/**
 * Cell.SetMode(Mode) over a real OPC UA session, into the cell's one command
 * path: an operator is refused (manual_mode.roles defaults to engineer), an
 * engineer switches the cell to manual and back, a bad argument is refused,
 * and in manual an engineer's write of a logic-driven output reaches the
 * device while a tripped interlock still forces it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DataType } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opcuaConfigSchema } from "../../../src/north/opcua-server/config.js";
import { hashPassword } from "../../../src/north/opcua-server/password.js";
import { CellOpcuaServer, cellViewOf } from "../../../src/north/opcua-server/server.js";
import { SimDevice, Teardown, startCell, type RunningCell } from "../../integration/helpers.js";
import { StatusCodes, call, cellNamespace, clientPki, connect, memoryLog, readValue, trust, waitUntil, write, type Connected, type Ns } from "./helpers.js";

const t = new Teardown();
let io1: SimDevice;
let cell: RunningCell;
let ns: Ns;
const PW = { operator: "operator-secret", engineer: "engineer-secret" } as const;
const sessions: Partial<Record<keyof typeof PW, Connected>> = {};

const yaml = (port: number): string => `
version: 1
cell: { id: setmode }
cycle: { period_ms: 50, input_budget_ms: 20, output_budget_ms: 20, overrun: { fault_after: 1000 } }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 500
    stale_after_ms: 3000
    fail_after: 3
    points:
      door_closed:  { address: "di:0", type: bool }
      conveyor_run: { address: "coil:0", direction: output, safe: false }
logic:
  io1.conveyor_run: "false"
interlocks:
  door:
    permit: "io1.door_closed"
    force: [io1.conveyor_run]
manual_mode: {}
`;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-setmode-"));
  t.add(() => rm(dir, { recursive: true, force: true }));
  io1 = await SimDevice.start(t);
  io1.bank.setBit("di", 0, true);
  cell = await startCell(yaml(io1.port), t, { start: false });
  const users = {
    operator: { password_hash: await hashPassword(PW.operator, { N: 1024 }), role: "operator" },
    engineer: { password_hash: await hashPassword(PW.engineer, { N: 1024 }), role: "engineer" },
  };
  const config = opcuaConfigSchema.parse({ port: 0, host: "127.0.0.1", hostname: "127.0.0.1", state_dir: path.join(dir, "state"), users });
  const server = new CellOpcuaServer({ config, view: cellViewOf(cell.app), commands: cell.app.loop.logic.commands, log: memoryLog().log });
  t.add(() => server.stop());
  await server.prepare();
  await cell.app.start();
  await cell.waitCycle((c) => c.mode === "running", 10_000, "the first complete good scan");
  const started = await server.start();
  const url = `opc.tcp://127.0.0.1:${started.port}`;
  const pki = await clientPki(path.join(dir, "client-pki"), "cellio-test");
  await trust(server, pki);
  for (const role of ["operator", "engineer"] as const) {
    sessions[role] = await connect(url, { pki, user: role, password: PW[role] });
    t.add(() => sessions[role]?.close());
  }
  ns = await cellNamespace(sessions.engineer!.session, started.namespaceUri);
}, 90_000);

afterAll(() => t.run(), 20_000);

describe("OPC UA Cell.SetMode", () => {
  it("refuses an operator and a bad argument; an engineer switches to manual, writes an output, and switches back", async () => {
    const op = sessions.operator!.session;
    const eng = sessions.engineer!.session;
    expect((await call(op, ns, "SetMode", ["manual"])).status).toBe(StatusCodes.BadUserAccessDenied);
    expect((await call(eng, ns, "SetMode", ["hand"])).status).toBe(StatusCodes.BadInvalidArgument);
    // auto: the logic drives the conveyor, a write is refused as driven
    expect(await write(eng, ns.id("Cell.Devices.io1.conveyor_run"), DataType.Boolean, true)).toBe(StatusCodes.BadInvalidState);

    // Watch from before the call: the cycle that applies the command can be published before the method's answer arrives.
    const switching = cell.waitCycle((c) => c.modeEvents.some((e) => e.kind === "switch" && e.to === "manual"), 5_000, "the switch to manual");
    switching.catch(() => undefined); // awaited below; no unhandled rejection if the call's expectation fails first
    const r = await call(eng, ns, "SetMode", ["manual"]);
    expect(r).toEqual({ status: StatusCodes.Good, message: "accepted" });
    const switched = await switching;
    expect(switched.control).toBe("manual");
    expect(switched.modeEvents[0]).toMatchObject({ kind: "switch", to: "manual" });
    expect(switched.modeEvents[0]!.by).toMatch(/^engineer opcua:engineer@/);
    // cellViewOf(app) carries the control mode too (folded from the cycles, as the north bridge does).
    await waitUntil(async () => (await readValue(eng, ns.id("Cell.ControlMode"))).value.value === "manual", 5_000, "Cell.ControlMode manual");

    expect(await write(eng, ns.id("Cell.Devices.io1.conveyor_run"), DataType.Boolean, true)).toBe(StatusCodes.Good);
    await waitUntil(() => io1.bank.getBit("coil", 0), 5_000, "coil 0 on at the device");
    io1.bank.setBit("di", 0, false); // the door opens: the interlock forces the conveyor off, manual or not
    await waitUntil(() => !io1.bank.getBit("coil", 0), 5_000, "coil 0 forced off");
    io1.bank.setBit("di", 0, true);

    expect((await call(eng, ns, "SetMode", ["auto"])).status).toBe(StatusCodes.Good);
    await cell.waitCycle((c) => c.control === "auto", 5_000, "control auto");
    await waitUntil(async () => (await readValue(eng, ns.id("Cell.ControlMode"))).value.value === "auto", 5_000, "Cell.ControlMode auto");
  }, 60_000);
});
