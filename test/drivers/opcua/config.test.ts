/**
 * The opcua device in the cell config: schema and load-time checks, each
 * error naming the YAML path and line; the motoman profile on an opcua device.
 */
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";
import { ConfigError } from "../../../src/config/issues.js";

function cfg(device: string): string {
  return `version: 1
cell: { id: t }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  robot:
    protocol: opcua
    endpoint: "opc.tcp://10.0.0.5:4840"
${device}`;
}

function issues(text: string): string {
  try {
    loadConfigText(text, "cell.yaml");
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("expected a config error");
}

describe("opcua device config", () => {
  it("loads a device with defaults: subscription mode, None only as written", () => {
    const { config, model } = loadConfigText(cfg(`    security: { mode: None }
    points:
      servo: { address: "ns=2;s=Robot.ServoOn", type: bool }
      hold:  { address: "/2:Robot/2:Hold", type: bool, direction: output, safe: true }`));
    const d = config.devices["robot"]!;
    expect(d.protocol === "opcua" && d.mode).toBe("subscription");
    expect(model.points.map((p) => `${p.id}:${p.kind}:${p.direction}:${p.address}`)).toEqual([
      "robot.servo:bool:input:ns=2;s=Robot.ServoOn",
      "robot.hold:bool:output:/2:Robot/2:Hold",
    ]);
  });

  it("requires the security block (mode None is never a default)", () => {
    expect(issues(cfg(`    points: {}`))).toMatch(/cell\.yaml:5:\d+: devices\.robot.*security/s);
  });

  it("names path and line of a bad address, a missing type, a lone user, a mode/policy mismatch", () => {
    const msg = issues(cfg(`    security: { mode: Sign, policy: None, user: op }
    points:
      a: { address: "Robot.ServoOn", type: bool }
      b: { address: "ns=2;s=B" }`));
    expect(msg).toMatch(/cell\.yaml:10:\d+: devices\.robot\.points\.a\.address: "Robot\.ServoOn" is neither a NodeId/);
    expect(msg).toMatch(/devices\.robot\.points\.b: point "b" needs a type/);
    expect(msg).toMatch(/devices\.robot\.security: user and password_env go together/);
    expect(msg).toMatch(/devices\.robot\.security\.policy: mode Sign needs a security policy other than None/);
  });

  it("refuses a liveness timeout shorter than the keep-alive period", () => {
    expect(issues(cfg(`    security: { mode: None }
    liveness_ms: 400
    subscription: { publishing_interval_ms: 100, keepalive_count: 5 }`))).toMatch(/devices\.robot\.liveness_ms: liveness_ms \(400\) must be longer than the keep-alive period .*500 ms/);
  });

  it("refuses a liveness timeout equal to a keep-alive period of a decimal publishing interval (8.2 ms × 15 is 123 ms, not 122.99999999999999)", () => {
    expect(issues(cfg(`    security: { mode: None }
    liveness_ms: 123
    subscription: { publishing_interval_ms: 8.2, keepalive_count: 15 }`))).toMatch(/liveness_ms \(123\) must be longer than the keep-alive period \(publishing_interval_ms × keepalive_count = 123 ms\)/);
  });

  it("expands the motoman-yrc1000 profile into OPC UA points by namespace URI", () => {
    const { model } = loadConfigText(cfg(`    security: { mode: None }
    profile: motoman-yrc1000
    profile_options: { axes: 6 }
    points:
      servo_on: { description: "overridden" }`));
    const p = (n: string) => model.points.find((x) => x.id === `robot.${n}`)!;
    expect(p("servo_on")).toMatchObject({ address: "nsu=urn:cellio:simulator:motoman;s=Motoman.ServoOn", kind: "bool", direction: "input", description: "overridden" });
    expect(p("ext_hold")).toMatchObject({ address: "nsu=urn:cellio:simulator:motoman;s=Motoman.ExtHold", direction: "output", safe: true });
    expect(p("speed_override")).toMatchObject({ kind: "float", unit: "%", scale: undefined });
    expect(p("joint_6").address).toBe("nsu=urn:cellio:simulator:motoman;s=Motoman.Joint6");
    expect(model.points.some((x) => x.id === "robot.joint_7")).toBe(false);
  });
});

describe("sample.yaml", () => {
  it("validates", async () => {
    const { readFileSync } = await import("node:fs");
    const text = readFileSync(new URL("../../../src/drivers/opcua/sample.yaml", import.meta.url), "utf8");
    const { model } = loadConfigText(text, "src/drivers/opcua/sample.yaml");
    expect(model.devices.map((d) => d.name)).toEqual(["robot", "press"]);
    expect(model.points.find((p) => p.id === "robot.watchdog_ms")!.safe).toBe(500);
  });
});
