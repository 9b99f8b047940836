/**
 * Cell/ControlMode, ControlModeBy, ControlModeSince and ManualModeAllowed over
 * a real OPC UA session, on a
 * CellApp whose `opcua:` block runs the server through the north bridge and
 * mirror (in-thread: the same messages as the worker): the mode reads "auto",
 * Good, dated; browsing shows both variables with their DataType; an engineer's
 * SetMode("manual") shows as "manual" with the switch's cycle as source
 * timestamp, ControlModeBy names the engineer's session and ControlModeSince
 * is that cycle's time (before any switch: "" and the first cycle's time, the
 * startup mode); the key-switch permit dropping shows in ManualModeAllowed (and
 * SetMode("manual") is then refused); back to auto.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AttributeIds, BrowseDirection, DataType, type NodeId } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../../../src/north/opcua-server/password.js";
import { SimDevice, Teardown, startCell, waitFor, type RunningCell } from "../../integration/helpers.js";
import { manualModeCellYaml, setKeySwitch } from "../manual-mode-cell.js";
import { StatusCodes, call, cellNamespace, clientPki, connect, readValue, trust, waitUntil, type Connected, type Ns } from "./helpers.js";

const t = new Teardown();
let io1: SimDevice;
let cell: RunningCell;
let ns: Ns;
let eng: Connected;
const PW = "engineer-secret";

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-control-mode-"));
  t.add(() => rm(dir, { recursive: true, force: true }));
  io1 = await SimDevice.start(t);
  setKeySwitch(io1, true);
  const hash = await hashPassword(PW, { N: 1024 });
  cell = await startCell(
    manualModeCellYaml({
      cellId: "control-mode",
      port: io1.port,
      periodMs: 50,
      north: `
opcua:
  port: 0
  host: 127.0.0.1
  hostname: 127.0.0.1
  state_dir: ${JSON.stringify(path.join(dir, "state"))}
  users:
    engineer: { password_hash: ${JSON.stringify(hash)}, role: engineer }
`,
    }),
    t,
  );
  const north = cell.app.north!;
  await waitFor(() => north.status.opcua?.started !== undefined, 90_000, "OPC UA listening");
  await cell.waitCycle((c) => c.mode === "running", 10_000, "the first complete good scan");
  const started = north.status.opcua!.started!;
  const pki = await clientPki(path.join(dir, "client-pki"), "cellio-test");
  await trust(north.local!.opcua!, pki);
  eng = await connect(`opc.tcp://127.0.0.1:${started.port}`, { pki, user: "engineer", password: PW });
  t.add(() => eng.close());
  ns = await cellNamespace(eng.session, started.namespaceUri);
}, 120_000);

afterAll(() => t.run(), 20_000);

const text = async (id: string): Promise<unknown> => (await readValue(eng.session, ns.id(id))).value.value;

/** ControlModeBy reads `by` and ControlModeSince reads `sinceMs`, both Good and dated `sinceMs` (waits for the publish timer). */
async function expectBySince(by: string, sinceMs: number): Promise<void> {
  const read = async () => ({ by: await readValue(eng.session, ns.id("Cell.ControlModeBy")), since: await readValue(eng.session, ns.id("Cell.ControlModeSince")) });
  await waitUntil(async () => {
    const r = await read();
    return r.by.value.value === by && (r.since.value.value as Date | null)?.getTime() === sinceMs;
  }, 5_000, `ControlModeBy "${by}", ControlModeSince ${new Date(sinceMs).toISOString()}`);
  const r = await read();
  for (const dv of [r.by, r.since]) {
    expect(dv.statusCode).toBe(StatusCodes.Good);
    expect(dv.sourceTimestamp!.getTime()).toBe(sinceMs);
  }
  expect(r.since.value.dataType).toBe(DataType.DateTime);
}

describe("OPC UA Cell/ControlMode", () => {
  it("browses as String and Boolean variables under Cell with stable NodeIds", async () => {
    const r = await eng.session.browse({ nodeId: ns.id("Cell"), browseDirection: BrowseDirection.Forward, resultMask: 63 });
    const ref = (name: string) => r.references?.find((x) => x.browseName.name === name);
    expect(ref("ControlMode")?.nodeId.toString()).toBe(ns.id("Cell.ControlMode"));
    expect(ref("ManualModeAllowed")?.nodeId.toString()).toBe(ns.id("Cell.ManualModeAllowed"));
    expect(ref("ControlModeBy")?.nodeId.toString()).toBe(ns.id("Cell.ControlModeBy"));
    expect(ref("ControlModeSince")?.nodeId.toString()).toBe(ns.id("Cell.ControlModeSince"));
    expect(ref("ControlMode")?.typeDefinition.value).toBe(63); // BaseDataVariableType
    const dataType = async (id: string) => ((await eng.session.read({ nodeId: ns.id(id), attributeId: AttributeIds.DataType })).value.value as NodeId).value;
    expect(await dataType("Cell.ControlMode")).toBe(DataType.String);
    expect(await dataType("Cell.ManualModeAllowed")).toBe(DataType.Boolean);
    expect(await dataType("Cell.ControlModeBy")).toBe(DataType.String);
    expect(await dataType("Cell.ControlModeSince")).toBe(DataType.DateTime);
  });

  it("reads auto; an engineer's SetMode(manual) reads manual, dated by the cycle that applied it; the permit shows; back to auto", async () => {
    await waitUntil(async () => (await text("Cell.ControlMode")) === "auto", 5_000, "ControlMode auto");
    const auto = await readValue(eng.session, ns.id("Cell.ControlMode"));
    expect(auto.statusCode).toBe(StatusCodes.Good);
    expect(auto.sourceTimestamp).toBeInstanceOf(Date);
    expect(auto.sourceTimestamp!.getTime()).toBeLessThanOrEqual(Date.now());
    await waitUntil(async () => (await text("Cell.ManualModeAllowed")) === true, 5_000, "ManualModeAllowed true");
    // Never switched: the startup mode (auto), by nobody, since the first cycle.
    expect(cell.cycles.length).toBeLessThanOrEqual(4000); // never trimmed (at 5,001 to 4,001): [0] is the first cycle, as for the bridge
    const firstMs = Math.floor(cell.cycles[0]!.wallMs);
    expect(auto.sourceTimestamp!.getTime()).toBe(firstMs);
    await expectBySince("", firstMs);

    // Watch from before the call: the applying cycle can be published before the method's answer arrives.
    const switching = cell.waitCycle((c) => c.modeEvents.some((e) => e.kind === "switch" && e.to === "manual"), 5_000, "the switch to manual");
    switching.catch(() => undefined);
    expect(await call(eng.session, ns, "SetMode", ["manual"])).toEqual({ status: StatusCodes.Good, message: "accepted" });
    const applied = await switching;
    await waitUntil(async () => (await text("Cell.ControlMode")) === "manual", 5_000, "ControlMode manual");
    const manual = await readValue(eng.session, ns.id("Cell.ControlMode"));
    expect(manual.statusCode).toBe(StatusCodes.Good);
    expect(manual.sourceTimestamp!.getTime()).toBe(Math.floor(applied.wallMs)); // a JS Date holds whole ms
    const engineer = `engineer opcua:engineer@${eng.session.sessionId.toString()}`;
    await expectBySince(engineer, Math.floor(applied.wallMs));

    // The key switch drops: ManualModeAllowed false (the cell stays in manual), dated by its cycle.
    const dropped = cell.waitCycle((c) => c.modeEvents.some((e) => e.kind === "permit_lost"), 5_000, "permit_lost");
    dropped.catch(() => undefined);
    setKeySwitch(io1, false);
    const lost = await dropped;
    await waitUntil(async () => (await text("Cell.ManualModeAllowed")) === false, 5_000, "ManualModeAllowed false");
    const allowed = await readValue(eng.session, ns.id("Cell.ManualModeAllowed"));
    expect(allowed.statusCode).toBe(StatusCodes.Good);
    expect(allowed.sourceTimestamp!.getTime()).toBe(Math.floor(lost.wallMs));
    expect(await text("Cell.ControlMode")).toBe("manual");
    await expectBySince(engineer, Math.floor(applied.wallMs)); // a lost permit is not a switch

    const back = cell.waitCycle((c) => c.modeEvents.some((e) => e.kind === "switch" && e.to === "auto"), 5_000, "the switch to auto");
    back.catch(() => undefined);
    expect((await call(eng.session, ns, "SetMode", ["auto"])).status).toBe(StatusCodes.Good);
    const backAt = Math.floor((await back).wallMs);
    await waitUntil(async () => (await text("Cell.ControlMode")) === "auto", 5_000, "ControlMode auto again");
    await waitUntil(async () => (await readValue(eng.session, ns.id("Cell.ControlModeSince"))).sourceTimestamp?.getTime() === backAt, 5_000, "ControlModeSince of the switch to auto");
    await expectBySince(engineer, backAt);
    // Manual is refused while the permit is false, and the mode stays auto.
    const refused = await call(eng.session, ns, "SetMode", ["manual"]);
    expect(refused.status).toBe(StatusCodes.BadInvalidState);
    expect(refused.message).toMatch(/permit/);
    setKeySwitch(io1, true);
    await waitUntil(async () => (await text("Cell.ManualModeAllowed")) === true, 5_000, "ManualModeAllowed true again");
    expect(await text("Cell.ControlMode")).toBe("auto");
  }, 60_000);
});
