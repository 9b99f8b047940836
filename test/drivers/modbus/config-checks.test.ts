/**
 * Load-time checks of the Modbus keys added for gateways, busy retries,
 * read-back and the watchdog: each bad value fails the load at its YAML path
 * and line.
 */
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";

function cell(deviceExtra: string, pointExtra = ""): string {
  return `version: 1
cell: { id: checks }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
${deviceExtra}
    points:
      in0: { address: "di:0"${pointExtra} }
      out0: { address: "coil:0", direction: output, safe: false, verify: true }
`;
}

function loadError(yaml: string): string {
  try {
    loadConfigText(yaml, "checks.yaml");
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error("the config loaded");
}

describe("Modbus config checks", () => {
  it("accepts the new keys with good values", () => {
    const loaded = loadConfigText(
      cell(`    framing: mbap
    max_in_flight: 4
    busy_retry: { retries: 3, pause_ms: 5 }
    watchdog: { address: "hr:4096", value: 10, read_back: true }`),
      "checks.yaml",
    );
    const d = loaded.model.devices[0]!.config;
    expect(d.protocol === "modbus-tcp" && d.max_in_flight).toBe(4);
    expect(d.protocol === "modbus-tcp" && d.watchdog?.value).toBe(10);
  });

  it("verify on an input names the point", () => {
    expect(loadError(cell("    unit_id: 1", ", verify: true"))).toMatch(/checks\.yaml:10:\d+: devices\.io\.points\.in0\.verify: verify \(read back after writing\) is for outputs/s);
  });

  it("a watchdog on a coil, or with a value its type cannot hold, names the block", () => {
    expect(loadError(cell(`    watchdog: { address: "coil:5", value: 1 }`))).toMatch(/devices\.io\.watchdog.*must be a holding register/s);
    expect(loadError(cell(`    watchdog: { address: "hr:10", value: 70000 }`))).toMatch(/devices\.io\.watchdog.*watchdog value: 70000 is out of range for uint16/s);
  });

  it("RTU framing over TCP: unit ids 1..247 and one request in flight", () => {
    expect(loadError(cell(`    framing: rtu\n    unit_id: 0`))).toMatch(/devices\.io\.unit_id.*RTU framing addresses units 1\.\.247/s);
    expect(loadError(cell(`    framing: rtu\n    max_in_flight: 2`))).toMatch(/devices\.io\.max_in_flight.*one request in flight/s);
  });

  it("busy_retry and max_in_flight are bounded", () => {
    expect(loadError(cell(`    busy_retry: { retries: 11 }`))).toMatch(/devices\.io\.busy_retry\.retries/);
    expect(loadError(cell(`    max_in_flight: 17`))).toMatch(/devices\.io\.max_in_flight/);
  });
});
