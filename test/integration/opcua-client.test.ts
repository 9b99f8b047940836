/**
 * The OPC UA client driver through a real CellApp against an in-process
 * node-opcua server over TCP: subscription and polled modes, StatusCodes and
 * source timestamps carried into the process image, writes with their
 * StatusCode checked, and start-time node resolution errors that name the
 * point while the rest of the cell keeps running.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { StatusCodes } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpcuaDriver } from "../../src/drivers/opcua/driver.js";
import { TEST_NS, TestOpcuaServer } from "../drivers/opcua/server.js";
import { Teardown, startCell, trapUnhandled, type RunningCell } from "./helpers.js";

const t = new Teardown();
const pki = mkdtempSync(path.join(os.tmpdir(), "cellio-opcua-pki-"));
let server: TestOpcuaServer;
let ns = 0;
const unhandled = trapUnhandled(t);

function device(name: string, mode: "subscription" | "polled", extra = ""): string {
  return `
  ${name}:
    protocol: opcua
    endpoint: "${server.endpoint}"
    security: { mode: None, pki_dir: "${pki}" }
    mode: ${mode}
    timeout_ms: 500
    reconnect: { min_ms: 50, max_ms: 500 }
    points:
      bool:    { address: "ns=${ns};s=Test.Bool", type: bool }
      int16:   { address: "nsu=${TEST_NS};s=Test.Int16", type: int }
      uint16:  { address: "/${ns}:Test/${ns}:UInt16", type: int }
      int32:   { address: "ns=${ns};s=Test.Int32", type: int }
      double:  { address: "ns=${ns};s=Test.Double", type: float, scale: { gain: 10 } }
      float:   { address: "ns=${ns};s=Test.Float", type: float }
      text:    { address: "ns=${ns};s=Test.Text", type: string }
      out_bool:    { address: "ns=${ns};s=Test.OutBool", type: bool, direction: output }
      out_u16:     { address: "ns=${ns};s=Test.OutUInt16", type: int, direction: output }
      out_limited: { address: "ns=${ns};s=Test.OutLimited", type: int, direction: output }${extra}`;
}

function cellYaml(mode: "subscription" | "polled", extraDevices = ""): string {
  return `
version: 1
cell: { id: itest-opcua-${mode} }
cycle: { period_ms: 50, input_budget_ms: 25, output_budget_ms: 20, overrun: { fault_after: 1000 } }  # roomy: a loaded CI box must not fault the cell
devices:${device("srv", mode)}${extraDevices}
logic:
  srv.out_bool: "srv.bool"
  srv.out_u16: "srv.uint16"
  srv.out_limited: "srv.uint16 * 20"
`;
}

beforeAll(async () => {
  server = await new TestOpcuaServer().start();
  t.add(() => server.stop());
  ns = server.raw!.engine.addressSpace!.getNamespaceIndex(TEST_NS);
}, 30_000);

afterAll(async () => {
  await t.run();
  expect(unhandled).toEqual([]);
});

async function runModeChecks(cell: RunningCell): Promise<void> {
  server.reset();
  const first = await cell.waitCycle((c) => cell.sample(c, "srv.text").quality === "good" && cell.sample(c, "srv.bool").quality === "good", 10_000, "first values");
  expect(cell.sample(first, "srv.int16").value).toBe(-5);
  expect(cell.sample(first, "srv.int32").value).toBe(100000);
  expect(cell.sample(first, "srv.double").value).toBe(15); // 1.5 × gain 10
  expect(cell.sample(first, "srv.float").value).toBe(2.5);
  expect(cell.sample(first, "srv.text").value).toBe("hello");

  // A change on the server, with the server's source timestamp carried unchanged.
  const at = new Date(Date.now() - 60_000);
  server.set("UInt16", 4, StatusCodes.Good, at);
  server.set("Bool", true);
  const changed = await cell.waitCycle((c) => cell.sample(c, "srv.uint16").value === 4 && cell.sample(c, "srv.bool").value === true, 5000, "uint16=4");
  expect(cell.sample(changed, "srv.uint16").sourceTs).toBe(at.getTime());

  // StatusCodes: Uncertain keeps the value (uncertain), Bad ignores it and maps by meaning.
  server.set("Double", 2, StatusCodes.UncertainLastUsableValue);
  server.set("Int32", 5, StatusCodes.BadSensorFailure);
  server.set("Float", 1, StatusCodes.BadNoCommunication);
  const marked = await cell.waitCycle(
    (c) => cell.sample(c, "srv.double").status === "uncertain_last_usable" && cell.sample(c, "srv.int32").status === "bad_device_failure" && cell.sample(c, "srv.float").status === "bad_no_communication",
    5000,
    "statuses carried through",
  );
  expect(cell.sample(marked, "srv.double").value).toBe(20);
  expect(cell.sample(marked, "srv.int32").value).toBe(100000); // the Bad value was ignored
  server.set("Int32", 6);
  server.set("Float", 3.5);
  server.set("Double", 1.5);
  await cell.waitCycle((c) => cell.sample(c, "srv.int32").value === 6 && cell.sample(c, "srv.int32").quality === "good", 5000, "int32 good again");

  // Writes: logic drives the outputs; the server holds what cellio wrote.
  await cell.waitCycle(() => server.value("OutBool") === true && server.value("OutUInt16") === 4, 5000, "outputs written");
  // OutLimited refuses 80 < 100? No: 4 × 20 = 80 is accepted; 6 × 20 = 120 is refused with BadOutOfRange.
  await cell.waitCycle(() => server.limited === 80, 5000, "out_limited = 80");
  server.set("UInt16", 6);
  const refused = await cell.waitCycle((c) => cell.sample(c, "srv.out_limited").quality === "bad", 5000, "out_limited refused");
  expect(server.limited).toBe(80);
  expect(cell.app.runners.find((r) => r.name === "srv")!.counters.writeFailures).toBeGreaterThan(0);
  expect(cell.sample(refused, "srv.out_u16").value).toBe(6); // the others were written
  server.set("UInt16", 4);
  await cell.waitCycle((c) => cell.sample(c, "srv.out_limited").quality === "good" && server.limited === 80, 5000, "out_limited good again");
}

describe("OPC UA client, subscription mode", () => {
  it("reads by NodeId, namespace URI and browse path; carries StatusCodes and source timestamps; writes with checked StatusCodes", async () => {
    const t2 = new Teardown();
    try {
      const cell = await startCell(cellYaml("subscription"), t2);
      await runModeChecks(cell);
    } finally {
      await t2.run();
    }
  });
});

describe("OPC UA client, polled mode", () => {
  it("reads every point in one Read per poll, with the same statuses, timestamps and writes", async () => {
    const t2 = new Teardown();
    try {
      const cell = await startCell(cellYaml("polled"), t2);
      await runModeChecks(cell);
    } finally {
      await t2.run();
    }
  });
});

describe("node resolution at start", () => {
  it("an unknown node or a type mismatch makes the device bad (Bad_ConfigurationError) naming the point; the cell runs on", async () => {
    const t2 = new Teardown();
    try {
      const broken = device("broken", "subscription", `
      missing: { address: "ns=${ns};s=Test.NoSuchNode", type: bool }
      wrong:   { address: "ns=${ns};s=Test.Text", type: bool }
      ro_out:  { address: "ns=${ns};s=Test.ReadOnly", type: int, direction: output }`);
      const cell = await startCell(cellYaml("subscription", broken), t2);
      const runner = cell.app.runners.find((r) => r.name === "broken")!;
      const c = await cell.waitCycle(() => runner.state === "bad" && runner.lastError.includes("broken.missing"), 10_000, "broken device bad");
      expect(runner.counters.failuresByStatus.get("bad_config_error")).toBeGreaterThan(0);
      expect(cell.sample(c, "broken.missing").quality).toBe("bad"); // never read: Bad_WaitingForInitialData, unknown is not unavailable
      await cell.waitCycle((x) => cell.sample(x, "srv.bool").quality === "good", 10_000, "the healthy device reads");
      const drv = cell.app.drivers.find((d) => d.name === "broken") as OpcuaDriver;
      const err = drv.current!.lastFailure.error;
      expect(err).toMatch(/broken\.missing: node ns=\d+;s=Test\.NoSuchNode does not exist/);
      expect(err).toMatch(/broken\.wrong: .* is String, which does not fit the point's type bool/);
      expect(err).toMatch(/broken\.ro_out: .* is not writable/);
      expect(runner.lastError).toContain("broken.missing");
    } finally {
      await t2.run();
    }
  });
});
