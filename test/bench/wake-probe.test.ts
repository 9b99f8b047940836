import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { WakeProbe } from "./wake-probe.js";

const canPin = process.platform === "linux" && spawnSync("taskset", ["--version"]).status === 0;

/** The CPUs each thread of this process may run on, by thread id. */
function affinities(): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    const status = readFileSync(`/proc/${process.pid}/task/${tid}/status`, "utf8");
    out.set(Number(tid), /^Cpus_allowed_list:\s*(\S+)/m.exec(status)![1]!);
  }
  return out;
}

describe("WakeProbe", () => {
  it.runIf(canPin)("runs one thread pinned to each CPU, and counts their wake-ups", async () => {
    const before = affinities();
    const probe = await WakeProbe.start(5);
    try {
      expect(probe.pinned).toBe(true);
      const added = [...affinities()].filter(([tid]) => !before.has(tid)).map(([, cpus]) => cpus);
      const n = os.availableParallelism();
      // each CPU has a thread of its own (the workers' other threads are not pinned)
      for (let cpu = 0; cpu < n; cpu++) expect(added.filter((c) => c === String(cpu))).toHaveLength(1);
      probe.reset();
      await new Promise((r) => setTimeout(r, 200));
      const r = probe.report();
      expect(r.threads).toBe(n);
      expect(r.wakeups).toBeGreaterThanOrEqual(n * 10); // 40 per thread at 5 ms, on a busy machine fewer
      expect(r.max).toBeGreaterThanOrEqual(r.p99);
      expect(r.stalls.every((s) => s.ms >= 5)).toBe(true);
      expect(r.over5).toBe(r.stalls.length); // the histogram's count and the log's agree
      expect(r.stalls.map((s) => s.at)).toEqual([...r.stalls.map((s) => s.at)].sort((a, b) => a - b));
    } finally {
      await probe.stop();
    }
  });

  it("wakes no more while paused, and again once resumed", async () => {
    const probe = await WakeProbe.start(5, { perCpu: false });
    try {
      await new Promise((r) => setTimeout(r, 50));
      probe.pause();
      await new Promise((r) => setTimeout(r, 30)); // a wake-up due before the pause may still come
      probe.reset();
      probe.resume(); // the reset is taken at the next wake-up: let one come, then pause again
      await new Promise((r) => setTimeout(r, 30));
      probe.pause();
      await new Promise((r) => setTimeout(r, 30));
      const paused = probe.report().wakeups;
      await new Promise((r) => setTimeout(r, 150));
      expect(probe.report().wakeups).toBe(paused);
      probe.resume();
      await new Promise((r) => setTimeout(r, 150));
      expect(probe.report().wakeups).toBeGreaterThan(paused);
    } finally {
      await probe.stop();
    }
  });

  it("runs one thread, not pinned, when asked to", async () => {
    const probe = await WakeProbe.start(5, { perCpu: false });
    try {
      expect(probe.pinned).toBe(false);
      await new Promise((r) => setTimeout(r, 100));
      const r = probe.report();
      expect(r.threads).toBe(1);
      expect(r.wakeups).toBeGreaterThan(0);
    } finally {
      await probe.stop();
    }
  });
});
