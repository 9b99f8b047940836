/**
 * The state file format and its atomic write: every way a file can be
 * damaged is told apart from a good one and from a missing one, with a
 * reason; nothing is thrown.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { decodeState, encodeState, moveAside, readStateFile, removeTempFiles, writeFileAtomic } from "../../src/persist/store.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmpDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "cellio-store-"));
  dirs.push(d);
  return d;
}

const BODY = JSON.stringify({ cell: "c1", note: "grüße, 東京", n: 42 });

describe("encodeState / decodeState", () => {
  it("round-trips a body (UTF-8) with its version", () => {
    const bytes = encodeState(1, BODY);
    expect(bytes.toString("utf8").split("\n")[0]).toMatch(/^cellio-state v1 sha256:[0-9a-f]{64} bytes:\d+$/);
    expect(decodeState(bytes, [1])).toEqual({ kind: "ok", version: 1, body: BODY });
  });

  it("finds every truncation of a file corrupt (a torn write)", () => {
    const bytes = encodeState(1, BODY);
    for (let n = 0; n < bytes.length; n++) {
      const r = decodeState(bytes.subarray(0, n), [1]);
      expect(r.kind, `truncated to ${n} bytes`).toBe("corrupt");
    }
  });

  it("finds any single flipped bit corrupt", () => {
    const bytes = encodeState(1, BODY);
    for (let i = 0; i < bytes.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const b = Buffer.from(bytes);
        b[i] = b[i]! ^ bit;
        const r = decodeState(b, [1]);
        // A flip in the version digit can still read as a well-formed file of another version.
        expect(r.kind === "corrupt" || r.kind === "unsupported", `byte ${i} bit ${bit}: ${r.kind}`).toBe(true);
      }
    }
  });

  it("refuses appended bytes, an empty file, a foreign file", () => {
    expect(decodeState(Buffer.concat([encodeState(1, BODY), Buffer.from("\n")]), [1])).toMatchObject({ kind: "corrupt", reason: expect.stringContaining("torn or altered") as string });
    expect(decodeState(Buffer.alloc(0), [1])).toEqual({ kind: "corrupt", reason: "the file is empty" });
    expect(decodeState(Buffer.from('{"cell":"c1"}\n'), [1])).toMatchObject({ kind: "corrupt", reason: "the header line is not a cellio-state header" });
    expect(decodeState(Buffer.alloc(4096, 0), [1])).toMatchObject({ kind: "corrupt", reason: "no cellio-state header line" });
  });

  it("tells an intact file of another version apart from a damaged one", () => {
    const r = decodeState(encodeState(7, BODY), [1]);
    expect(r).toEqual({ kind: "unsupported", version: 7, reason: "format v7; this cellio reads v1" });
  });
});

describe("writeFileAtomic / readStateFile", () => {
  it("writes, replaces and reads back; leaves no temp file", async () => {
    const dir = tmpDir();
    const file = path.join(dir, "c1.state");
    expect(await readStateFile(file, [1])).toEqual({ kind: "missing" });
    await writeFileAtomic(file, encodeState(1, BODY));
    expect(await readStateFile(file, [1])).toEqual({ kind: "ok", version: 1, body: BODY });
    await writeFileAtomic(file, encodeState(1, "{}"));
    expect(await readStateFile(file, [1])).toEqual({ kind: "ok", version: 1, body: "{}" });
    expect(readdirSync(dir)).toEqual(["c1.state"]);
  });

  it("rejects when the target cannot be replaced, and leaves no temp file", async () => {
    const dir = tmpDir();
    const file = path.join(dir, "c1.state");
    // A folder in the way: rename() over it fails (EISDIR), as any I/O error would.
    mkdirSync(path.join(file, "sub"), { recursive: true });
    await expect(writeFileAtomic(file, encodeState(1, BODY))).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(dir)).toEqual(["c1.state"]);
  });

  it("reports a file it cannot read as corrupt with the reason", async () => {
    const dir = tmpDir();
    const file = path.join(dir, "c1.state");
    writeFileSync(file, encodeState(1, BODY).subarray(0, 30));
    const r = await readStateFile(file, [1]);
    expect(r.kind).toBe("corrupt");
  });

  it("removeTempFiles takes only the temp files of that state file; moveAside keeps a bad file", async () => {
    const dir = tmpDir();
    const file = path.join(dir, "c1.state");
    for (const n of ["c1.state.123.tmp", "c1.state.9.tmp", "c2.state.5.tmp", "c1.state", "c1xstate.1.tmp"]) writeFileSync(path.join(dir, n), "x");
    expect((await removeTempFiles(file)).sort()).toEqual(["c1.state.123.tmp", "c1.state.9.tmp"]);
    expect(readdirSync(dir).sort()).toEqual(["c1.state", "c1xstate.1.tmp", "c2.state.5.tmp"]);
    const to = await moveAside(file, 1234.4);
    expect(to).toBe(`${file}.bad-1234`);
    expect(existsSync(file)).toBe(false);
    expect(readFileSync(to, "utf8")).toBe("x");
  });
});
