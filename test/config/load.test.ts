/**
 * The config loader: every problem at once with its YAML path and line:column,
 * the loaded config deeply frozen, file errors with a stable code. The exact
 * text of each kind of error is pinned by the golden cases (cases.test.ts);
 * these tests state the properties behind them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfigFile, loadConfigText, type LoadedConfig } from "../../src/config/load.js";
import { ConfigError, type ConfigIssue } from "../../src/config/issues.js";
import { CellioError } from "../../src/infra/errors.js";

const DEMO = "config/demo-cell.yaml";

const HEAD = `version: 1
cell: { id: t }
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4 }
`;

const GOOD = `${HEAD}devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    points:
      door: { address: "di:0" }
      pressure: { address: "ir:2:float32", unit: bar, scale: { gain: 0.1 } }
      lamp: { address: "coil:0", direction: output, safe: true }
logic:
  io1.lamp: "not io1.door or io1.pressure < 4"
`;

function issuesOf(text: string): readonly ConfigIssue[] {
  try {
    loadConfigText(text, "t.yaml");
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

/** The source text starting at an issue's line:col. */
function at(text: string, issue: ConfigIssue): string {
  const line = text.split("\n")[issue.line - 1] ?? "";
  return line.slice(issue.col - 1);
}

/** 1-based line:col of the first occurrence of `needle` in `text`. */
function posOf(text: string, needle: string): { line: number; col: number } {
  const i = text.indexOf(needle);
  if (i < 0) throw new Error(`${needle} not in text`);
  const before = text.slice(0, i).split("\n");
  return { line: before.length, col: before[before.length - 1]!.length + 1 };
}

describe("loadConfigText", () => {
  it("loads a valid config with the schema's defaults filled in", () => {
    const { config, model } = loadConfigText(GOOD, "t.yaml");
    const dev = config.devices["io1"]!;
    expect(dev.protocol === "modbus-tcp" ? dev.port : undefined).toBe(502);
    expect(dev.protocol !== "opcua" ? dev.unit_id : undefined).toBe(1);
    expect(dev.protocol !== "opcua" ? dev.workarounds.max_registers_per_read : undefined).toBe(125);
    expect(config.cycle.overrun).toEqual({ warn_pct: 80, fault_after: 5 });
    expect(config.log.level).toBe("info");
    expect(model.points.map((p) => [p.id, p.kind, p.direction, p.safe])).toEqual([
      ["io1.door", "bool", "input", null],
      ["io1.pressure", "float", "input", null],
      ["io1.lamp", "bool", "output", true],
    ]);
    expect(model.logic).toHaveLength(1);
  });

  it("reports five different mistakes in one file as five issues, each at its own line:col", () => {
    const text = `${HEAD}devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: "502"
    timout_ms: 50
    unit_id: 300
    points:
      door: { address: "di:0", type: boolean }
  io2:
    protocol: modbus-tcp
    points: {}
`;
    const issues = issuesOf(text);
    expect(issues.map((i) => i.path)).toEqual([
      "devices.io1.port",
      "devices.io1.timout_ms",
      "devices.io1.unit_id",
      "devices.io1.points.door.type",
      "devices.io2.host",
    ]);
    expect(at(text, issues[0]!)).toMatch(/^"502"/);
    expect(at(text, issues[1]!)).toMatch(/^timout_ms:/);
    expect(at(text, issues[2]!)).toMatch(/^300/);
    expect(at(text, issues[3]!)).toMatch(/^boolean/);
    // A missing key is reported on the key of the map that lacks it.
    expect(at(text, issues[4]!)).toMatch(/^io2:/);
    expect(issues[4]!.message).toBe('missing required key "host"');
  });

  it("reports five mistakes found after the schema in one run too", () => {
    const text = `version: 1
cell: { id: t }
cycle: { period_ms: 10, input_budget_ms: 8, output_budget_ms: 4 }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    points:
      door: { address: "di:0" }
      part: { address: "ir:1", direction: output }
      lamp: { address: "coil:0", direction: output, safe: 0 }
logic:
  io1.lamp: "io1.door and io1.prt"
  io1.door: "true"
`;
    const issues = issuesOf(text);
    expect(issues.map((i) => i.path)).toEqual([
      "cycle.input_budget_ms",
      "devices.io1.points.part.direction",
      "devices.io1.points.lamp.safe",
      "logic.io1.lamp",
      "logic.io1.door",
    ]);
  });

  it("cycle.realtime_priority: 1–49 reaches the model; 50 and above is refused at its line", () => {
    const good = loadConfigText(GOOD.replace("output_budget_ms: 4 }", "output_budget_ms: 4, realtime_priority: 20 }"));
    expect(good.model.cycle.realtimePriority).toBe(20);
    expect(loadConfigText(GOOD).model.cycle.realtimePriority).toBeUndefined();
    const text = GOOD.replace("output_budget_ms: 4 }", "output_budget_ms: 4,\n  realtime_priority: 50 }");
    const issues = issuesOf(text);
    expect(issues.map((i) => i.path)).toEqual(["cycle.realtime_priority"]);
    expect(issues[0]!.line).toBe(4);
  });

  it("puts an unknown point inside an expression at its column inside the quotes", () => {
    const text = `${HEAD}devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    points:
      door: { address: "di:0" }
      lamp: { address: "coil:0", direction: output }
logic:
  io1.lamp: "io1.door and io1.dorr"
`;
    const [issue, ...rest] = issuesOf(text);
    expect(rest).toEqual([]);
    expect(issue).toEqual({
      path: "logic.io1.lamp",
      ...posOf(text, "io1.dorr"),
      message: "unknown point 'io1.dorr' (did you mean 'io1.door'?)",
    });
  });

  it("puts an unknown logic target at its key", () => {
    const text = `${HEAD}devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    points:
      door: { address: "di:0" }
logic:
  io1.dor: "true"
`;
    const [issue] = issuesOf(text);
    expect(issue).toMatchObject({ path: "logic.io1.dor", ...posOf(text, "io1.dor:") });
    expect(issue!.message).toContain('unknown point "io1.dor"');
  });

  it("gives every issue in file order, schema issues and unknown keys mixed", () => {
    const text = `version: 3
cel: x
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4, extra: 1 }
devices: {}
`;
    const issues = issuesOf(text);
    const order = issues.map((i) => i.line * 1000 + i.col);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(issues.map((i) => i.path)).toEqual(["cell", "version", "cel", "cycle.extra"]);
  });

  it("finds the same line:col with CRLF line ends and a byte order mark", () => {
    const text = readFileSync("test/config/cases/five-semantic-mistakes-at-once/config.yaml", "utf8");
    const lf = issuesOf(text);
    expect(lf).toHaveLength(5);
    expect(issuesOf(text.replace(/\n/g, "\r\n"))).toEqual(lf);
    expect(issuesOf(`\uFEFF${text}`)).toEqual(lf);
  });

  it("names the duplicate key's path and the line of the first one", () => {
    const text = `${HEAD}devices:
  io1: { protocol: modbus-tcp, host: a, points: {} }
  io1: { protocol: modbus-tcp, host: b, points: {} }
`;
    expect(issuesOf(text)).toEqual([{ path: "devices.io1", line: 6, col: 3, message: 'duplicate key "io1" (first defined on line 5)' }]);
  });

  it("throws a ConfigError whose message carries the code and every issue", () => {
    let err: unknown;
    try {
      loadConfigText(`${HEAD}devices: { x: { protocol: modbus-tcp, host: h, tmeout_ms: 1, points: {} } }\nlog: { level: loud }\n`, "cell.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.code).toBe("CELLIO_ERR_CONFIG");
    expect(ce.file).toBe("cell.yaml");
    expect(ce.message.split("\n")).toEqual([
      "CELLIO_ERR_CONFIG: cell.yaml: 2 problem(s)",
      'cell.yaml:4:48: devices.x.tmeout_ms: unknown key "tmeout_ms" (did you mean "timeout_ms"?)',
      'cell.yaml:5:15: log.level: Invalid option: expected one of "trace"|"debug"|"info"|"warn"|"error"|"fatal"',
    ]);
  });
});

describe("the loaded config is frozen", () => {
  const loaded: LoadedConfig = loadConfigText(GOOD, "t.yaml");

  /** Every object reachable from `root` (Maps and functions aside). */
  function objects(root: unknown, seen = new Set<object>()): object[] {
    if (typeof root !== "object" || root === null || seen.has(root) || root instanceof Map) return [...seen];
    seen.add(root);
    for (const v of Object.values(root)) objects(v, seen);
    return [...seen];
  }

  it("is frozen all the way down", () => {
    const all = objects(loaded.config);
    expect(all.length).toBeGreaterThan(10);
    expect(all.filter((o) => !Object.isFrozen(o))).toEqual([]);
  });

  it("throws on mutation (ES modules run in strict mode)", () => {
    const cfg = loaded.config as unknown as {
      cycle: { period_ms: number; overrun: { fault_after: number } };
      devices: Record<string, { host: string; points: Record<string, { address: string }> }>;
      logic: Record<string, string>;
    };
    expect(() => {
      cfg.cycle.period_ms = 1;
    }).toThrow(TypeError);
    expect(() => {
      cfg.cycle.overrun.fault_after = 1000;
    }).toThrow(TypeError);
    expect(() => {
      cfg.devices["io1"]!.points["lamp"]!.address = "coil:9";
    }).toThrow(TypeError);
    expect(() => {
      cfg.devices["io2"] = cfg.devices["io1"]!;
    }).toThrow(TypeError);
    expect(() => {
      delete cfg.logic["io1.lamp"];
    }).toThrow(TypeError);
    expect(loaded.config.cycle.period_ms).toBe(10);
  });

  it("freezes the compiled point table, devices and cycle", () => {
    const m = loaded.model;
    for (const o of [m, m.cycle, m.points, ...m.points, m.devices, ...m.devices, m.logic, ...m.logic]) {
      expect(Object.isFrozen(o)).toBe(true);
    }
    expect(() => {
      (m.points[0] as { safe: unknown }).safe = true;
    }).toThrow(TypeError);
  });
});

describe("loadConfigFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "cellio-load-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads the demo cell", async () => {
    const { file, model } = await loadConfigFile(DEMO);
    expect(file).toBe(DEMO);
    expect(model.cellId).toBe("demo-cell");
    expect(model.points.length).toBeGreaterThan(0);
  });

  it("names the file in every issue", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, `${HEAD}devices: {}\nlogic: { io1.x: "true" }\n`);
    await expect(loadConfigFile(file)).rejects.toThrow(`${file}:5:10: logic.io1.x: unknown point "io1.x"`);
  });

  it.each([
    ["a missing file", "missing.yaml"],
    ["a directory", "."],
  ])("turns %s into CELLIO_ERR_CONFIG_IO", async (_what, name) => {
    const file = join(dir, name);
    const err: unknown = await loadConfigFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CellioError);
    expect((err as CellioError).code).toBe("CELLIO_ERR_CONFIG_IO");
    expect((err as CellioError).message).toContain(file);
    expect((err as CellioError).details).toEqual({ file });
  });
});

describe("frozen model maps", () => {
  it("refuses changes to the point index at run time", async () => {
    const { loadConfigFile } = await import("../../src/config/load.js");
    const { model } = await loadConfigFile("config/demo-cell.yaml");
    expect(() => (model.pointIndex as Map<string, number>).set("x", 1)).toThrow(TypeError);
    expect(() => (model.pointIndex as Map<string, number>).delete("io1.door_closed")).toThrow(TypeError);
    expect(model.pointIndex.get("io1.door_closed")).toBe(0);
  });
});
