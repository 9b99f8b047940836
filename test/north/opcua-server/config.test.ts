/**
 * The pure parts of the OPC UA server: the `opcua:` schema (and sample.yaml),
 * the checks against the point table, password hashes, the DataValue of a
 * sample and the change rule, and `cellio hash-password`. No server, no socket.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { DataType, StatusCodes } from "node-opcua";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { hashPasswordCommand } from "../../../src/cli/hash-password.js";
import { sample } from "../../../src/core/sample.js";
import { opcuaConfigIssues, opcuaConfigSchema } from "../../../src/north/opcua-server/config.js";
import { hashPassword, isPasswordHash, parsePasswordHash, verifyPassword } from "../../../src/north/opcua-server/password.js";
import { endpointSecurity, resolvePkiDir, UserDirectory } from "../../../src/north/opcua-server/security.js";
import { changed, sampleDataValue, SOURCE_TS_REFRESH_MS } from "../../../src/north/opcua-server/values.js";
import { pointType, type PointType } from "../../../src/north/opcua-server/data-types.js";

const T = (kind: PointType["kind"]): PointType => pointType({ kind, scale: undefined, wireType: undefined });
import { ROOT } from "../../integration/helpers.js";

const FAST = { N: 1024 };
const map = { issue: (p: readonly (string | number)[], message: string) => ({ path: p.join("."), line: 0, col: 0, message }) };

describe("opcua config", () => {
  it("is secure by default: three policies, Sign and SignAndEncrypt, no None, no anonymous, 4840", () => {
    const c = opcuaConfigSchema.parse({});
    expect(c.port).toBe(4840);
    expect(c.security).toEqual({
      policies: ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"],
      modes: ["Sign", "SignAndEncrypt"],
      allow_none: false,
      allow_anonymous: false,
      anonymous_role: "viewer",
    });
    expect(c.state_dir).toBeUndefined();
    expect(c.pki_dir).toBeUndefined();
    expect(c.limits.max_sessions).toBe(10);
    expect(c.publish_interval_ms).toBe(50);
    const e = endpointSecurity(c);
    expect(e.allowAnonymous).toBe(false);
    expect(e.securityPolicies.map(String).join(" ")).not.toMatch(/None|Basic128Rsa15|#Basic256$/);
  });

  it("refuses the deprecated policies and None as a policy, saying why", () => {
    for (const p of ["Basic128Rsa15", "Basic256", "None"]) {
      const r = opcuaConfigSchema.safeParse({ security: { policies: [p] } });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.message).toMatch(/not offered/);
    }
    expect(opcuaConfigSchema.safeParse({ security: { modes: ["None"] } }).success).toBe(false);
  });

  it("refuses a password instead of a hash", () => {
    const r = opcuaConfigSchema.safeParse({ users: { hmi: { password_hash: "hunter2", role: "operator" } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/cellio hash-password/);
  });

  it("offers None and anonymous only when the config says so", () => {
    const e = endpointSecurity(opcuaConfigSchema.parse({ security: { allow_none: true, allow_anonymous: true } }));
    expect(e.allowAnonymous).toBe(true);
    expect(e.securityPolicies.map(String).some((p) => p.endsWith("#None"))).toBe(true);
  });

  it("src/north/opcua-server/sample.yaml validates and passes the checks", () => {
    const doc = parseYaml(readFileSync(path.join(ROOT, "src", "north", "opcua-server", "sample.yaml"), "utf8")) as { opcua: unknown };
    const c = opcuaConfigSchema.parse(doc.opcua);
    expect(Object.keys(c.users)).toEqual(["hmi", "commissioning"]);
    expect(opcuaConfigIssues(c, [{ id: "io1.door", device: "io1", name: "door" }], ["io1"], map)).toEqual([]);
  });

  it("reports a config nobody could log in to, a reserved user name and a point named Status", () => {
    const issues = opcuaConfigIssues(opcuaConfigSchema.parse({}), [{ id: "io1.Status", device: "io1", name: "Status" }], ["io1"], map).map((i) => `${i.path}: ${i.message}`);
    expect(issues).toEqual([expect.stringMatching(/^devices.io1.points.Status: point io1.Status is named Status/), expect.stringMatching(/^opcua.users: no users and allow_anonymous is false/)]);
    const anon = opcuaConfigSchema.parse({ users: { anonymous: { password_hash: "scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", role: "viewer" } } });
    expect(opcuaConfigIssues(anon, [], [], map).map((i) => i.message)).toEqual(['"anonymous" is reserved for anonymous sessions']);
  });

  it("puts the PKI in the cell's state folder by default; state_dir and pki_dir are relative to the config file", () => {
    const dirs = { baseDir: "/etc/cellio", stateDir: "/var/lib/cellio" };
    expect(resolvePkiDir({}, dirs)).toBe("/var/lib/cellio/opcua-server/pki");
    expect(resolvePkiDir({ state_dir: "srv" }, dirs)).toBe("/etc/cellio/srv/pki");
    expect(resolvePkiDir({ state_dir: "/data/opcua" }, dirs)).toBe("/data/opcua/pki");
    expect(resolvePkiDir({ state_dir: "srv", pki_dir: "../pki" }, dirs)).toBe("/etc/pki");
  });
});

describe("passwords", () => {
  it("hash with scrypt, verify, and refuse a wrong password", async () => {
    const h = await hashPassword("correct horse", FAST);
    expect(h).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await verifyPassword("correct horse", h)).toBe(true);
    expect(await verifyPassword("correct horsE", h)).toBe(false);
    expect(await verifyPassword("", h)).toBe(false);
    expect(await hashPassword("correct horse", FAST)).not.toBe(h); // salted
  });

  it("default cost is N = 2^15", async () => {
    expect(parsePasswordHash(await hashPassword("x"))?.N).toBe(32768);
  });

  it("refuse malformed or unbounded hashes", async () => {
    for (const bad of ["", "scrypt$", "scrypt$1000$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==", "scrypt$4194304$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==", "bcrypt$x"]) {
      expect(isPasswordHash(bad)).toBe(false);
      expect(await verifyPassword("x", bad)).toBe(false);
    }
  });

  it("UserDirectory: known user with the right password only; roles by name", async () => {
    const users = new UserDirectory({ hmi: { password_hash: await hashPassword("pw-hmi-123", FAST), role: "operator" } });
    expect(await users.check("hmi", "pw-hmi-123")).toBe(true);
    expect(await users.check("hmi", "pw-hmi-124")).toBe(false);
    expect(await users.check("nobody", "pw-hmi-123")).toBe(false);
    expect(users.roleOf("hmi")).toBe("operator");
    expect(users.roleOf("nobody")).toBeUndefined();
  });
});

describe("values", () => {
  const now = new Date(1_800_000_000_000);

  it("a good sample: typed value, Good, its source timestamp", () => {
    const dv = sampleDataValue(sample(2.5, "good", 1_700_000_000_123), T("float"), now);
    expect(dv.value.dataType).toBe(DataType.Double);
    expect(dv.value.value).toBe(2.5);
    expect(dv.statusCode.value).toBe(StatusCodes.Good.value);
    expect(dv.sourceTimestamp?.getTime()).toBe(1_700_000_000_123);
    expect(dv.serverTimestamp?.getTime()).toBe(now.getTime());
  });

  it("a bad sample: null value, its StatusCode, the frozen source timestamp", () => {
    const dv = sampleDataValue(sample(true, "bad_no_communication", 1_700_000_000_000), T("bool"), now);
    expect(dv.value.dataType).toBe(DataType.Null);
    expect(dv.statusCode.value).toBe(StatusCodes.BadNoCommunication.value);
    expect(dv.sourceTimestamp?.getTime()).toBe(1_700_000_000_000);
    expect(sampleDataValue(sample(1, "bad_timeout", 5), T("int"), now).statusCode.value).toBe(StatusCodes.BadTimeout.value);
  });

  it("never read: Bad_WaitingForInitialData without a source timestamp", () => {
    const dv = sampleDataValue(sample(null, "bad_waiting_for_initial_data", 0), T("int"), now);
    expect(dv.statusCode.value).toBe(StatusCodes.BadWaitingForInitialData.value);
    expect(dv.sourceTimestamp).toBeNull();
  });

  it("uncertain keeps the value (the last usable one)", () => {
    const dv = sampleDataValue(sample(7, "uncertain_last_usable", 100), T("int"), now);
    expect(dv.value.value).toBe(7);
    expect(dv.statusCode.value).toBe(0x40900000);
  });

  it("an int that does not fit its data type is Bad_OutOfRange, not a wrapped number", () => {
    expect(sampleDataValue(sample(2 ** 31, "good", 100), T("int"), now).statusCode.value).toBe(StatusCodes.BadOutOfRange.value);
    const u16 = pointType({ kind: "int", scale: undefined, wireType: "uint16" });
    expect(sampleDataValue(sample(-1, "good", 100), u16, now).statusCode.value).toBe(StatusCodes.BadOutOfRange.value);
    expect(sampleDataValue(sample(65535, "good", 100), u16, now).value.value).toBe(65535);
  });

  it("pushes on a new status or a value beyond the deadband; a re-read only to refresh the timestamp", () => {
    const a = sample(10, "good", 1000);
    expect(changed(undefined, a, 0)).toBe(true);
    expect(changed(a, a, 0)).toBe(false);
    expect(changed(a, sample(10, "good", 1100), 0)).toBe(false);
    expect(changed(a, sample(10, "good", 1000 + SOURCE_TS_REFRESH_MS), 0)).toBe(true);
    expect(changed(a, sample(11, "good", 1100), 0)).toBe(true);
    expect(changed(a, sample(10.4, "good", 1100), 0.5)).toBe(false);
    expect(changed(a, sample(10.5, "good", 1100), 0.5)).toBe(true);
    expect(changed(a, sample(10, "uncertain_last_usable", 1000), 0)).toBe(true);
    const bad = sample(10, "bad_timeout", 1000);
    expect(changed(bad, bad, 0)).toBe(false);
  });
});

describe("cellio hash-password", () => {
  async function run(input: string, opts: { user?: string; role?: string } = {}): Promise<{ code: number; out: string; err: string }> {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.on("data", (d: Buffer) => (out += d.toString()));
    stderr.on("data", (d: Buffer) => (err += d.toString()));
    stdin.end(input);
    const code = await hashPasswordCommand(opts, { stdin, stdout, stderr });
    return { code, out, err };
  }

  it("prints a hash of the first line of a piped stdin that verifies", async () => {
    const r = await run("s3cret-password\nignored\n");
    expect(r.code).toBe(0);
    expect(await verifyPassword("s3cret-password", r.out.trim())).toBe(true);
  });

  it("prints a users entry with --user and --role", async () => {
    const r = await run("s3cret-password\n", { user: "hmi", role: "operator" });
    const doc = parseYaml(`users:\n${r.out}`) as { users: { hmi: { password_hash: string; role: string } } };
    expect(doc.users.hmi.role).toBe("operator");
    expect(await verifyPassword("s3cret-password", doc.users.hmi.password_hash)).toBe(true);
    expect(opcuaConfigSchema.safeParse({ users: doc.users }).success).toBe(true);
  });

  it("refuses a short password and an unknown role", async () => {
    expect((await run("short\n")).code).toBe(1);
    expect((await run("s3cret-password\n", { role: "admin" })).code).toBe(2);
  });
});
