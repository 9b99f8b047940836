/**
 * StatePersister on a real folder: load from missing / good / damaged files
 * (defaults, reason logged, damaged file kept aside), coalesced writes with a
 * bounded rate where the latest state wins, the final write at stop, and a
 * failing disk logged once and recovered.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { InterlockSnapshot, RestoreNote } from "../../src/core/interlocks.js";
import type { SequenceSnapshot } from "../../src/core/sequences.js";
import { systemClock } from "../../src/infra/clock.js";
import { StatePersister } from "../../src/persist/persister.js";
import { STATE_VERSION, parseStateBody, type RetainingEngines } from "../../src/persist/state.js";
import { encodeState, readStateFile } from "../../src/persist/store.js";
import { memoryLog } from "../helpers/memory-log.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmpDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "cellio-persister-"));
  dirs.push(d);
  return d;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Engines reduced to what is retained: one interlock whose trip count is `n`. */
class Counter implements RetainingEngines {
  n = 0;
  tripped = false;
  restored: InterlockSnapshot[] = [];
  captures = 0;
  readonly interlocks = {
    snapshot: (): InterlockSnapshot[] => {
      this.captures++;
      return [{ id: "x", tripped: this.tripped, latched: true, tripCount: this.n, cause: "c", trippedAtWallMs: 5 }];
    },
    restore: (s: readonly InterlockSnapshot[]): RestoreNote[] => {
      this.restored = [...s];
      return s.filter((i) => i.tripped).map((i) => ({ id: i.id, kind: "restored" as const, message: `interlock ${i.id} is still tripped` }));
    },
  };
  readonly sequences = {
    snapshot: (): SequenceSnapshot[] => [],
    restore: (): RestoreNote[] => [],
  };
}

function persister(dir: string, eng: RetainingEngines, minWriteIntervalMs = 100, log = memoryLog().log): StatePersister {
  return new StatePersister({ dir, cell: "c1", engines: eng, log, clock: systemClock, minWriteIntervalMs });
}

async function savedCount(file: string): Promise<number> {
  const r = await readStateFile(file, [STATE_VERSION]);
  if (r.kind !== "ok") throw new Error(`state file ${r.kind}`);
  const p = parseStateBody(r.body, "c1");
  if (!p.ok) throw new Error(p.reason);
  return p.state.interlocks[0]!.tripCount;
}

describe("StatePersister", () => {
  it("first start: no file, defaults, the file is created; the next start restores it", async () => {
    const dir = path.join(tmpDir(), "nested", "state");
    const eng = new Counter();
    const l = memoryLog();
    const p = persister(dir, eng, 100, l.log);
    expect(await p.load()).toBe("missing");
    expect(l.lines.some((x) => x.msg.startsWith("no state file yet: starting from defaults"))).toBe(true);
    await waitFor(() => p.writes === 1, 3000, "the first write");
    eng.n = 3;
    eng.tripped = true;
    p.request();
    expect(await p.flush(2000)).toBe(true);

    const eng2 = new Counter();
    const l2 = memoryLog();
    expect(await persister(dir, eng2, 100, l2.log).load()).toBe("restored");
    expect(eng2.restored).toEqual([{ id: "x", tripped: true, latched: true, tripCount: 3, cause: "c", trippedAtWallMs: 5 }]);
    expect(l2.lines.find((x) => x.msg === "interlock x is still tripped")?.level).toBe(40);
    expect(l2.lines.some((x) => x.msg === "state restored from the state file")).toBe(true);
  });

  it("coalesces: a burst of requests gives a bounded number of writes and the latest state wins", async () => {
    const dir = tmpDir();
    const eng = new Counter();
    const p = persister(dir, eng, 150);
    await p.load();
    await waitFor(() => !p.busy, 3000, "the first write");
    const before = p.writes;
    const t0 = Date.now();
    for (let i = 1; i <= 500; i++) {
      eng.n = i;
      p.request();
      if (i % 50 === 0) await sleep(20);
    }
    const burstMs = Date.now() - t0;
    await waitFor(() => !p.busy, 5000, "the writes to settle");
    expect(await savedCount(p.file)).toBe(500);
    // One write at once, then at most one per 150 ms over the burst (plus the trailing one).
    expect(p.writes - before).toBeLessThanOrEqual(2 + Math.ceil(burstMs / 150));
    expect(p.writes - before).toBeGreaterThanOrEqual(1);
    expect(readdirSync(dir)).toEqual(["c1.state"]);
  });

  it("request() does no work itself, and nothing is written when nothing retained changed", async () => {
    const dir = tmpDir();
    const eng = new Counter();
    const p = persister(dir, eng, 10);
    await p.load();
    await waitFor(() => !p.busy, 3000, "the first write");
    const { writes, captures } = { writes: p.writes, captures: eng.captures };
    p.request();
    expect(eng.captures).toBe(captures); // captured later, off the caller's stack
    await waitFor(() => !p.busy, 3000, "the request to be handled");
    expect(eng.captures).toBe(captures + 1);
    expect(p.writes).toBe(writes);
  });

  it("flush() at stop writes the final state at once and takes no request after it", async () => {
    const dir = tmpDir();
    const eng = new Counter();
    const p = persister(dir, eng, 60_000); // the interval would hold the last change back for a minute
    await p.load();
    await waitFor(() => !p.busy, 3000, "the first write");
    eng.n = 1;
    p.request();
    eng.n = 2;
    p.request();
    expect(await p.flush(2000)).toBe(true);
    expect(await savedCount(p.file)).toBe(2);
    eng.n = 3;
    p.request();
    await sleep(50);
    expect(p.busy).toBe(false);
    expect(await savedCount(p.file)).toBe(2);
  });

  it("a damaged file: defaults, the reason logged at error, the file kept aside, a good file written", async () => {
    const dir = tmpDir();
    const file = path.join(dir, "c1.state");
    const good = encodeState(STATE_VERSION, JSON.stringify({ cell: "c1", savedAtWallMs: 1, interlocks: [], sequences: [] }));
    writeFileSync(file, good.subarray(0, good.length - 3)); // torn
    const eng = new Counter();
    const l = memoryLog();
    const p = persister(dir, eng, 50, l.log);
    expect(await p.load()).toBe("unreadable");
    expect(eng.restored).toEqual([]);
    const err = l.lines.find((x) => x.level === 50)!;
    expect(err.msg).toMatch(/^state file unreadable \(the body has \d+ bytes, the header says \d+ \(torn or altered\)\): starting from defaults/);
    const keptAs = err["keptAs"] as string;
    expect(readFileSync(keptAs)).toEqual(good.subarray(0, good.length - 3));
    await waitFor(() => p.writes === 1, 3000, "a fresh file");
    expect(await savedCount(file)).toBe(0);
  });

  it("a file of another cell, of an unknown version, or with a wrong shape is refused the same way", async () => {
    const bodies = [
      [encodeState(STATE_VERSION, JSON.stringify({ cell: "other", savedAtWallMs: 1, interlocks: [], sequences: [] })), 'it was written by cell "other"'],
      [encodeState(STATE_VERSION + 1, "{}"), `format v${STATE_VERSION + 1}; this cellio reads v${STATE_VERSION}`],
      [encodeState(STATE_VERSION, '{"cell":"c1"}'), "the body does not have the v1 shape"],
    ] as const;
    for (const [bytes, reason] of bodies) {
      const dir = tmpDir();
      writeFileSync(path.join(dir, "c1.state"), bytes);
      const l = memoryLog();
      const p = persister(dir, new Counter(), 50, l.log);
      expect(await p.load()).toBe("unreadable");
      expect(l.lines.find((x) => x.level === 50)?.msg).toContain(reason);
      await p.flush(2000);
    }
  });

  it("removes the temp file a killed write left behind", async () => {
    const dir = tmpDir();
    writeFileSync(path.join(dir, "c1.state.4242.tmp"), "half a write");
    const l = memoryLog();
    const p = persister(dir, new Counter(), 50, l.log);
    await p.load();
    expect(existsSync(path.join(dir, "c1.state.4242.tmp"))).toBe(false);
    expect(l.lines.some((x) => x.level === 40 && (x["files"] as string[]).includes("c1.state.4242.tmp"))).toBe(true);
    await p.flush(2000);
  });

  it("a write that fails is logged once, retried, and its recovery logged once", async () => {
    const dir = tmpDir();
    const file = path.join(dir, "c1.state");
    const eng = new Counter();
    const l = memoryLog();
    const p = persister(dir, eng, 20, l.log);
    await p.load();
    await waitFor(() => p.writes === 1 && !p.busy, 3000, "the first write");
    rmSync(file);
    mkdirSync(path.join(file, "blocker"), { recursive: true }); // rename() over a folder fails
    eng.n = 7;
    p.request();
    await waitFor(() => p.failures >= 3, 5000, "three failed attempts");
    expect(l.lines.filter((x) => x.msg.startsWith("state file write failed")).length).toBe(1);
    rmSync(file, { recursive: true });
    await waitFor(() => p.writes === 2, 5000, "the write to get through");
    expect(l.lines.filter((x) => x.msg === "state file written again").length).toBe(1);
    expect(await savedCount(file)).toBe(7);
    await p.flush(2000);
  });
});
