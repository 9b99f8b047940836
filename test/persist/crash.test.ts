/**
 * kill -9 during a write: a real process writes the state file in a tight
 * loop with the shipped writeFileAtomic (the CLI build, test/integration/
 * helpers.ts builtCli) and is SIGKILLed at random moments, many times. After
 * every kill the file is intact and holds either the last version the writer
 * reported written or the one after it (written, not yet reported): never a
 * torn, empty or mixed file. The temp files of killed writes are counted to
 * show that kills did land in the middle of writes.
 *
 * What this does not show: a power cut, where the page cache is lost too.
 * That is what the fsyncs (file, then folder) are for; a process kill leaves
 * the page cache to the kernel.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtCli } from "../integration/helpers.js";
import { readStateFile, removeTempFiles } from "../../src/persist/store.js";

/** The writer: versions start+1, start+2, ... each a different size; prints each version once it is written. */
const WRITER = `
const [storeUrl, file, start] = process.argv.slice(1);
const { encodeState, writeFileAtomic } = await import(storeUrl);
for (let n = Number(start) + 1; ; n++) {
  await writeFileAtomic(file, encodeState(1, JSON.stringify({ n, pad: "x".repeat((n * 7919) % 30000) })));
  process.stdout.write(n + "\\n");
}
`;

const KILLS = 40;
let storeUrl = "";
let dir = "";

beforeAll(async () => {
  const main = await builtCli();
  storeUrl = pathToFileURL(path.join(path.dirname(main), "persist", "store.js")).href;
  dir = mkdtempSync(path.join(os.tmpdir(), "cellio-crash-"));
}, 180_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Run the writer from version `start`, SIGKILL it `delayMs` after its first reported write; the last version it reported. */
function runAndKill(file: string, start: number, delayMs: number): Promise<{ lastReported: number; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", WRITER, storeUrl, file, String(start)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let armed = false;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!armed && out.includes("\n")) {
        armed = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const guard = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the writer reported no write within 20 s; stderr: ${err}`));
    }, 20_000);
    // "close": every byte the writer put in the pipe has been read (its stdout to a pipe is synchronous on Linux).
    child.once("close", (_code, signal) => {
      clearTimeout(guard);
      const lines = out.split("\n").filter(Boolean);
      resolve({ lastReported: Number(lines.at(-1) ?? start), signal });
    });
  });
}

describe("kill -9 during state file writes", () => {
  it(`after each of ${KILLS} kills at random moments the file is the old or the new version, never damaged`, async () => {
    const file = path.join(dir, "c1.state");
    let version = 0;
    let midWrite = 0;
    for (let i = 0; i < KILLS; i++) {
      const { lastReported, signal } = await runAndKill(file, version, Math.random() * 40);
      expect(signal).toBe("SIGKILL");
      const r = await readStateFile(file, [1]);
      if (r.kind !== "ok") throw new Error(`kill ${i}: the state file is ${r.kind}: ${"reason" in r ? r.reason : ""}`);
      const body = JSON.parse(r.body) as { n: number; pad: string };
      expect(body.pad.length, `kill ${i}: version ${body.n} has its own content`).toBe((body.n * 7919) % 30000);
      // The last reported version, or the next one when the kill fell between its rename and its report.
      expect([lastReported, lastReported + 1], `kill ${i}`).toContain(body.n);
      if ((await removeTempFiles(file)).length > 0) midWrite++;
      version = body.n;
    }
    expect(readdirSync(dir)).toEqual(["c1.state"]);
    // Most of the writer's time is spent inside writes: some kills must have landed there.
    expect(midWrite, "kills that left a temp file (landed inside a write)").toBeGreaterThan(0);
  }, 240_000);
});
