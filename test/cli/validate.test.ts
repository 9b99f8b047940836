/**
 * `cellio validate` and `cellio schema` as a user runs them: the BUILT CLI in
 * a child process, checked by exit code, stdout and stderr.
 *
 * The CLI is compiled with the project's tsconfig.build.json (what `npm run
 * build` does, restricted to src/main.ts and what it imports) into a private
 * folder keyed by a hash of the sources, node_modules/.cache/cellio-cli-test/
 * <hash>/. So the test never races a developer's `npm run build` or another
 * test run over dist/, never runs a stale dist/, and compiles only when a
 * source changed; otherwise it reuses the last build.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CACHE = join(ROOT, "node_modules", ".cache", "cellio-cli-test");
/** Where main.ts and its imports live, plus the configs that change the output. */
const SOURCE_DIRS = ["src", "simulators"];
const BUILD_CONFIGS = ["tsconfig.json", "tsconfig.build.json", "package.json"];

function sourceHash(): string {
  const h = createHash("sha256");
  for (const dir of SOURCE_DIRS) {
    if (!existsSync(join(ROOT, dir))) continue;
    const files = readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
      .filter((f) => /\.(ts|mts|cts|json)$/.test(f))
      .sort();
    for (const f of files) h.update(`${dir}/${f}\0`).update(readFileSync(join(ROOT, dir, f))).update("\0");
  }
  for (const f of BUILD_CONFIGS) h.update(readFileSync(join(ROOT, f)));
  return h.digest("hex").slice(0, 16);
}

/** Path of the built main.js, building it first when the sources changed. */
function builtCli(): string {
  const hash = sourceHash();
  const out = join(CACHE, hash);
  const main = join(out, "src", "main.js");
  if (existsSync(main)) return main;
  mkdirSync(CACHE, { recursive: true });
  const tmp = mkdtempSync(join(CACHE, `${hash}.tmp-`));
  const tsconfig = {
    extends: join(ROOT, "tsconfig.build.json"),
    files: [join(ROOT, "src", "main.ts")],
    include: [],
    compilerOptions: { outDir: "." },
  };
  writeFileSync(join(tmp, "tsconfig.json"), JSON.stringify(tsconfig));
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(tmp, "tsconfig.json")], { cwd: ROOT, encoding: "utf8" });
  if (!existsSync(join(tmp, "src", "main.js"))) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`tsc (tsconfig.build.json, src/main.ts) did not emit src/main.js (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  }
  // tsc emits despite type errors; those are the typecheck's business, but say so.
  if (r.status !== 0) console.warn(`tsc reported errors (the CLI was emitted anyway):\n${r.stdout.split("\n").slice(0, 10).join("\n")}`);
  try {
    renameSync(tmp, out);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // a parallel run got there first: use its build
  }
  // Drop builds of older sources (left alone for an hour, in case another run still uses one).
  for (const e of readdirSync(CACHE)) {
    const p = join(CACHE, e);
    if (e !== hash && Date.now() - statSync(p).mtimeMs > 3_600_000) rmSync(p, { recursive: true, force: true });
  }
  return main;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cli = "";
/** A child node process takes about a second of CPU; allow for a loaded machine. */
const SPAWN_TIMEOUT = 60_000;

function run(...args: string[]): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolveRun({ code, stdout, stderr }));
  });
}

beforeAll(() => {
  cli = builtCli();
}, 180_000);

describe.concurrent("cellio validate", { timeout: SPAWN_TIMEOUT }, () => {
  it("passes the demo cell: exit 0 and ok", async () => {
    const r = await run("validate", "config/demo-cell.yaml");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "config/demo-cell.yaml: ok — cell demo-cell, 3 device(s), 52 point(s), 4 logic rule(s), period 10 ms\n",
    );
  });

  it("fails a misspelled key: exit 1, path and exact file:line:col", async () => {
    const file = "test/config/cases/misspelled-key/config.yaml";
    const r = await run("validate", file);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")).toEqual([
      `CELLIO_ERR_CONFIG: ${file}: 3 problem(s)`,
      `${file}:8:5: devices.io1.timout_ms: unknown key "timout_ms" (did you mean "timeout_ms"?)`,
      `${file}:10:7: devices.io1.workarounds.single_write: unknown key "single_write" (did you mean "single_writes"?)`,
      `${file}:12:32: devices.io1.points.door.descripton: unknown key "descripton" (did you mean "description"?)`,
      "",
    ]);
  });

  it("fails an unknown point in logic: exit 1, the column inside the expression", async () => {
    const file = "test/config/cases/logic-unknown-point-in-expression/config.yaml";
    const r = await run("validate", file);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const lines = r.stderr.split("\n");
    expect(lines[0]).toBe(`CELLIO_ERR_CONFIG: ${file}: 3 problem(s)`);
    expect(lines).toContain(`${file}:16:27: logic.io1.lamp: unknown point 'io1.presure' (did you mean 'io1.pressure'?)`);
    expect(lines).toContain(`${file}:19:27: logic.io1.beacon: unknown point 'io9.x'`);
  });

  it("--explain shows every point and the read plan", async () => {
    const r = await run("validate", "config/demo-cell.yaml", "--explain");
    expect(r.code).toBe(0);
    const out = r.stdout.split("\n").map((l) => l.replace(/\s+/g, " ").trim());
    expect(out[0]).toMatch(/^config\/demo-cell\.yaml: ok/);
    expect(out).toContain("device io1 (modbus-tcp, stale after 150 ms)");
    expect(out).toContain("io1.door_closed input bool di:0");
    expect(out).toContain("io1.pressure input float ir:2:float32:abcd [bar]");
    expect(out).toContain("io1.light_red output bool coil:3 safe=true");
    expect(out).toContain("read plan: 2 request(s) per poll");
    expect(out).toContain("robot.ext_hold output bool hr:0.2 safe=true");
    expect(out).toContain("FC3 read holding registers start 16 count 26: servo_on, operating, hold, alarm, error, remote, play, teach, estop_ok, in_zone, cycle_complete, job_received, energy_saving, start_permit, watchdog_tripped, major_alarm, minor_alarm, estop_external_ok, estop_pendant_ok, estop_controller_ok, continuous_cycle, alarm_code, error_code, job_echo, current_job, job_phase, speed_override, watchdog_ms_readback, cycle_count, job_elapsed_ms, joint_1, joint_2, joint_3, joint_4, joint_5, joint_6");
    expect(out).toContain("FC2 read discrete inputs start 0 count 2: door_closed, part_present");
    expect(out).toContain("FC4 read input registers start 2 count 2: pressure");
    expect(out).toContain("io1.light_amber := io1.part_present and not robot.operating");
  });

  it("--explain shows a one-based device's wire addresses", async () => {
    const r = await run("validate", "config/examples/palletizer-cell.yaml", "--explain");
    expect(r.code).toBe(0);
    const out = r.stdout.split("\n").map((l) => l.trim());
    // "hr:10.0" in a device documented one-based is wire register 9.
    expect(out).toContain("FC3 read holding registers start 9 count 1: faulted, at_speed");
  });

  it("--explain says which Modbus TCP devices share one connection, and shows an OPC UA device's plan", async () => {
    const modbus = await run("validate", "src/drivers/modbus/sample.yaml", "--explain");
    expect(modbus.code).toBe(0);
    const out = modbus.stdout.split("\n").map((l) => l.trim());
    expect(out).toContain("unit 1 on 10.0.0.40:502 (mbap framing), one connection shared with meter_b");
    expect(out).toContain("unit 2 on 10.0.0.40:502 (mbap framing), one connection shared with meter_a");
    expect(out).toContain("unit 1 on 10.0.0.21:502 (mbap framing)");
    const opcua = await run("validate", "src/drivers/opcua/sample.yaml", "--explain");
    expect(opcua.code).toBe(0);
    expect(opcua.stdout).toMatch(/endpoint opc\.tcp:\/\/\S+, security \w+/);
    expect(opcua.stdout).toMatch(/read plan: (one subscription, publishing every \d+ ms, \d+ monitored item\(s\)|one Read of \d+ node\(s\) per poll)/);
  });

  it("exits 1 with CELLIO_ERR_CONFIG_IO for a file that does not exist", async () => {
    const r = await run("validate", "config/no-such-cell.yaml");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^CELLIO_ERR_CONFIG_IO: cannot read config\/no-such-cell\.yaml: ENOENT/);
  });

  it("exits 1 with CELLIO_ERR_CONFIG_IO for a path that cannot be read as a file", async () => {
    const r = await run("validate", "config");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^CELLIO_ERR_CONFIG_IO: cannot read config: EISDIR/);
  });

  it("exits non-zero with usage when the file is missing", async () => {
    const r = await run("validate");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("missing required argument 'file'");
  });
});

describe("cellio schema", { timeout: SPAWN_TIMEOUT }, () => {
  it("prints valid JSON, the same as config/cellio.schema.json", async () => {
    const r = await run("schema");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const schema = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(schema["$id"]).toBe("https://cellio.dev/schema/cellio.schema.json");
    expect(schema["type"]).toBe("object");
    expect(r.stdout, "config/cellio.schema.json is stale: node dist/src/main.js schema > config/cellio.schema.json").toBe(
      readFileSync(join(ROOT, "config", "cellio.schema.json"), "utf8"),
    );
  });
});
