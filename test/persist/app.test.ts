/**
 * The state file in the cell: where it lives (flag, config, systemd,
 * default), the `state:` block and `retain:` in the config, and a CellApp on
 * a real simulator whose latched trip is restored before cycle 0 and saved
 * again at stop.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { firstValueFrom } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { CellApp } from "../../src/app.js";
import { loadConfigText } from "../../src/config/load.js";
import { ConfigError } from "../../src/config/issues.js";
import { encodeState, readStateFile, writeFileAtomic } from "../../src/persist/store.js";
import { STATE_VERSION } from "../../src/persist/state.js";
import { resolveStateDir } from "../../src/persist/config.js";
import { SimDevice, Teardown, testLogger, waitFor } from "../integration/helpers.js";

const t = new Teardown();
afterEach(() => t.run());

function tmpDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "cellio-persist-app-"));
  t.add(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const yaml = (port: number, extra = ""): string => `
version: 1
cell: { id: c1 }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    points:
      guard_ok: { address: "di:0" }
      motor:    { address: "coil:0", direction: output, safe: false }
      clamp:    { address: "coil:1", direction: output, safe: false }
logic:
  a.motor: "true"
interlocks:
  guard: { permit: "a.guard_ok", force: [a.motor], latch: true }
sequences:
  load:
    retain: true
    initial: idle
    steps: { idle: {}, clamped: { actions: { a.clamp: true } } }
    transitions: [ { from: idle, to: clamped, when: "a.guard_ok" } ]
${extra}`;

describe("where the state file lives", () => {
  it("--state-dir, else state.dir (relative to the config), else $STATE_DIRECTORY, else ./state next to the config", () => {
    const configFile = "/etc/cellio/cell.yaml";
    const env = { STATE_DIRECTORY: "/var/lib/cellio:/var/lib/other" };
    expect(resolveStateDir({ flag: "/srv/s", configured: "x", configFile, env })).toBe("/srv/s");
    expect(resolveStateDir({ configured: "retained", configFile, env })).toBe("/etc/cellio/retained");
    expect(resolveStateDir({ configured: "/data/s", configFile, env })).toBe("/data/s");
    expect(resolveStateDir({ configFile, env })).toBe("/var/lib/cellio");
    expect(resolveStateDir({ configFile, env: {} })).toBe("/etc/cellio/state");
  });

  it("CellApp: AppOptions.stateDir, else the config's state.dir; neither: no state file", () => {
    const dir = tmpDir();
    const file = path.join(dir, "cell.yaml");
    const log = testLogger();
    expect(new CellApp(loadConfigText(yaml(1502), file), { log }).state).toBeUndefined();
    expect(new CellApp(loadConfigText(yaml(1502), file), { log, stateDir: "/x" }).state?.file).toBe("/x/c1.state");
    const app = new CellApp(loadConfigText(yaml(1502, "state: { dir: kept }"), file), { log });
    expect(app.state?.file).toBe(path.join(dir, "kept", "c1.state"));
  });
});

describe("the state: block and retain:", () => {
  it("parses durations and compiles retain into the sequence", () => {
    const loaded = loadConfigText(yaml(1502, 'state: { dir: s, min_write_interval: "2s" }'));
    expect(loaded.config.state).toEqual({ dir: "s", min_write_interval: 2000 });
    expect(loaded.model.sequences[0]!.retain).toBe(true);
    expect(loadConfigText(yaml(1502).replace("    retain: true\n", "")).model.sequences[0]!.retain).toBe(false);
  });

  it("names the YAML path and line of a bad value", () => {
    try {
      loadConfigText(yaml(1502, "state:\n  min_write_interval: soon"));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as Error).message).toMatch(/state\.min_write_interval.*:\d+:\d+|:\d+:\d+.*state\.min_write_interval/s);
    }
  });
});

describe("CellApp with a state folder", () => {
  it("a saved latched trip is tripped before cycle 0, the output stays safe, the retained step resumes; stop saves the final state", async () => {
    const dev = await SimDevice.start(t);
    dev.bank.setBit("di", 0, true);
    const stateDir = path.join(tmpDir(), "state");
    mkdirSync(stateDir);
    const file = path.join(stateDir, "c1.state");
    const body = {
      cell: "c1",
      savedAtWallMs: 1_700_000_000_000,
      interlocks: [{ id: "guard", tripped: true, latched: true, tripCount: 4, cause: "permit false: a.guard_ok", trippedAtWallMs: 1_699_999_999_000 }],
      sequences: [{ id: "load", step: "clamped", lastFault: "" }],
    };
    await writeFileAtomic(file, encodeState(STATE_VERSION, JSON.stringify(body)));

    const app = new CellApp(loadConfigText(yaml(dev.port)), { log: testLogger(), stateDir });
    t.add(() => app.stop(1000));
    const first = firstValueFrom(app.loop.cycles$);
    await app.start();
    const c0 = await first;
    expect(c0.cycle).toBe(0);
    const ixMotor = app.loaded.model.pointIndex.get("a.motor")!;
    expect(c0.commanded[ixMotor]).toBe(false);
    expect(app.loop.logic.interlocks.state("guard")).toMatchObject({ tripped: true, tripCount: 4 });
    expect(app.loop.logic.interlocks.state("guard")!.lastCause).toMatch(/^restored from state file \(tripped at 2023-11-14T22:13:19\.000Z, cause permit false: a\.guard_ok\)$/);
    await waitFor(() => app.loop.mode === "running", 5000, "the first good scan");
    await waitFor(() => dev.bank.getBit("coil", 1), 2000, "the retained step's action");
    expect(app.loop.logic.sequences.state("load")!.step).toBe("clamped");
    expect(dev.bank.getBit("coil", 0)).toBe(false);

    expect(app.loop.logic.interlocks.reset("guard", "engineer")).toEqual({ accepted: true });
    await waitFor(() => dev.bank.getBit("coil", 0), 2000, "the motor after the reset");
    await app.stop(1000);
    const r = await readStateFile(file, [STATE_VERSION]);
    expect(r.kind).toBe("ok");
    const saved = JSON.parse((r as { body: string }).body) as typeof body;
    expect(saved.interlocks[0]).toMatchObject({ tripped: false, tripCount: 4, cause: "permit false: a.guard_ok" });
    expect(saved.sequences[0]!.step).toBe("clamped");
  });
});
