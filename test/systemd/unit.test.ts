/**
 * systemd/cellio.service: what the unit must say (Type=notify with a
 * watchdog, restart policy, least privilege, no MemoryDenyWriteExecute), and
 * the CI check (systemd/check-unit.sh: `systemd-analyze verify` clean,
 * `security --offline=yes` under the threshold), which must also fail a unit
 * stripped of its hardening.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../integration/helpers.js";

const UNIT = path.join(ROOT, "systemd", "cellio.service");
const text = readFileSync(UNIT, "utf8");

/** Active (uncommented) settings of the [Service] section, as key → values. */
function settings(section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      current = sec[1]!;
      continue;
    }
    if (current !== section) continue;
    const i = line.indexOf("=");
    const k = line.slice(0, i);
    out.set(k, [...(out.get(k) ?? []), line.slice(i + 1)]);
  }
  return out;
}

function hasAnalyze(): boolean {
  try {
    execFileSync("systemd-analyze", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

describe("systemd/cellio.service", () => {
  it("is a notify service with a watchdog, a restart policy and a start limit", () => {
    const s = settings("Service");
    const u = settings("Unit");
    expect(s.get("Type")).toEqual(["notify"]);
    expect(s.get("NotifyAccess")).toEqual(["all"]); // the socat helper sends the datagrams
    expect(Number(s.get("WatchdogSec")?.[0])).toBeGreaterThan(0);
    expect(s.get("Restart")).toEqual(["on-failure"]);
    expect(s.get("KillMode")).toEqual(["mixed"]); // SIGTERM to cellio only: the helper carries STOPPING=1
    expect(u.get("StartLimitIntervalSec")).toBeDefined();
    expect(u.get("StartLimitBurst")).toBeDefined();
  });

  it("runs with least privilege and keeps V8's JIT working", () => {
    const s = settings("Service");
    expect(s.get("DynamicUser")).toEqual(["yes"]);
    expect(s.get("ProtectSystem")).toEqual(["strict"]);
    expect(s.get("StateDirectory")).toEqual(["cellio"]);
    expect(s.get("SupplementaryGroups")).toEqual(["dialout"]);
    expect(s.get("NoNewPrivileges")).toEqual(["yes"]);
    expect(s.get("CapabilityBoundingSet")).toEqual([""]);
    expect(s.get("DevicePolicy")).toEqual(["closed"]);
    expect(s.get("DeviceAllow")?.length).toBeGreaterThan(0);
    expect(s.has("MemoryDenyWriteExecute")).toBe(false);
  });

  it.skipIf(!hasAnalyze())("passes systemd/check-unit.sh (verify clean, exposure under the threshold)", async () => {
    const r = await run("bash", [path.join(ROOT, "systemd", "check-unit.sh")]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("verify: clean");
    expect(r.out).toMatch(/Overall exposure level for cellio\.service: \d\.\d/);
  });

  it.skipIf(!hasAnalyze())("the threshold catches a unit stripped of its hardening", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cellio-unit-"));
    try {
      const weak = text
        .split("\n")
        .filter((l) => !/^(DynamicUser|ProtectSystem|CapabilityBoundingSet|NoNewPrivileges|SystemCallFilter|RestrictAddressFamilies)=/.test(l))
        .join("\n");
      writeFileSync(path.join(dir, "cellio.service"), weak);
      const r = await run("systemd-analyze", ["security", "--offline=yes", "--threshold=20", "./cellio.service"], { cwd: dir });
      expect(r.code, r.out).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
