/**
 * Real-time scheduling of the loop's thread: the decisions with a fake
 * system, then the real thing on Linux (as root, as CI runs): SCHED_FIFO on
 * this thread only, threads and processes created afterwards at normal
 * priority, read back from /proc; a cell with cycle.realtime_priority runs
 * its loop under it and drops it at stop.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { DAEMON_NODE_FLAGS, SINGLE_THREADED_GC, applyRealtime, missingDaemonFlags, dropRealtime, gcOnLoopThread, linuxSys, schedOf, threadId, type RealtimeSys } from "../../src/infra/realtime.js";
import { SimDevice, Teardown, startCell, waitFor } from "../integration/helpers.js";

function fakeSys(over: Partial<RealtimeSys> & { after?: { policy: number; priority: number } } = {}): RealtimeSys & { calls: string[][] } {
  const calls: string[][] = [];
  let now = { policy: 0, priority: 0 };
  return {
    platform: "linux",
    tid: () => 4242,
    read: () => now,
    run: (args) => {
      calls.push([...args]);
      if (args[0] === "--fifo") now = over.after ?? { policy: 1, priority: Number(args[3]) };
      else now = { policy: 0, priority: 0 };
      return { status: 0, stderr: "", error: undefined };
    },
    ...over,
    calls,
  };
}

describe("realtime: parsing /proc", () => {
  it("takes the thread id from the /proc/thread-self link", () => {
    expect(threadId("1234/task/1240")).toBe(1240);
    expect(threadId("/proc/1234/task/77")).toBe(77);
    expect(() => threadId("1234")).toThrow(/unexpected/);
  });

  it("reads rt_priority and policy (fields 40, 41) even when comm holds spaces and parentheses", () => {
    const tail = Array.from({ length: 50 }, (_, i) => String(i + 3)); // field n holds the text "n"
    tail[40 - 3] = "12";
    tail[41 - 3] = "1";
    expect(schedOf(`99 (node (x) y) ${tail.join(" ")}`)).toEqual({ priority: 12, policy: 1 });
  });
});

describe("realtime: decisions", () => {
  it("asks chrt for SCHED_FIFO with reset-on-fork on the calling thread and checks the kernel's answer", () => {
    const sys = fakeSys();
    expect(applyRealtime(10, sys)).toEqual({ requested: 10, applied: true, priority: 10 });
    expect(sys.calls).toEqual([["--fifo", "--reset-on-fork", "--pid", "10", "4242"]]);
  });

  it("a refusal names the reason and the fix, and nothing is assumed applied", () => {
    const sys = fakeSys({ run: () => ({ status: 1, stderr: "chrt: failed to set pid 4242's policy: Operation not permitted\n", error: undefined }) });
    const r = applyRealtime(10, sys);
    expect(r.applied).toBe(false);
    expect(r.priority).toBe(0);
    expect(r.reason).toMatch(/Operation not permitted.*LimitRTPRIO=10.*RestrictRealtime=no/);
  });

  it("no chrt, another platform, or a kernel that reports otherwise: not applied, with the reason", () => {
    const enoent = Object.assign(new Error("spawnSync chrt ENOENT"), { code: "ENOENT" });
    expect(applyRealtime(5, fakeSys({ run: () => ({ status: null, stderr: "", error: enoent }) })).reason).toMatch(/util-linux/);
    expect(applyRealtime(5, fakeSys({ platform: "darwin" })).reason).toMatch(/Linux only/);
    const other = applyRealtime(5, fakeSys({ after: { policy: 0, priority: 0 } }));
    expect(other).toMatchObject({ applied: false, priority: 0 });
    expect(other.reason).toMatch(/policy 0/);
  });

  it("dropRealtime goes back to normal scheduling only when it was applied", () => {
    const sys = fakeSys();
    dropRealtime({ requested: 3, applied: false, priority: 0 }, sys);
    expect(sys.calls).toEqual([]);
    const s = applyRealtime(3, sys);
    dropRealtime(s, sys);
    expect(sys.calls[1]).toEqual(["--other", "--pid", "0", "4242"]);
    expect(sys.read()).toEqual({ policy: 0, priority: 0 });
  });
});

describe("realtime: V8's GC on the loop thread", () => {
  it("knows whether node was started with --single-threaded-gc", () => {
    expect(gcOnLoopThread(["--single-threaded-gc"])).toBe(true);
    expect(gcOnLoopThread(["--max-old-space-size=200"])).toBe(false);
  });

  it("lists the daemon's node flags this process lacks", () => {
    expect(missingDaemonFlags(["--single-threaded-gc", "--no-memory-reducer"])).toEqual([]);
    expect(missingDaemonFlags(["--single-threaded-gc"])).toEqual(["--no-memory-reducer"]);
    expect(missingDaemonFlags([])).toEqual(["--single-threaded-gc", "--no-memory-reducer"]);
  });

  it("every way the daemon is started passes the daemon's node flags: the systemd unit, npm start, the cellio command", () => {
    const flags = DAEMON_NODE_FLAGS.join(" ");
    expect(flags).toBe(`${SINGLE_THREADED_GC} --no-memory-reducer`);
    const unit = readFileSync("systemd/cellio.service", "utf8");
    expect(unit).toMatch(new RegExp(`^ExecStart=/usr/bin/node ${flags} `, "m"));
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts["start"]).toContain(`node ${flags} `);
    expect(readFileSync("src/main.ts", "utf8").split("\n")[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
  });
});

// The real kernel: root (CI) has CAP_SYS_NICE. Elsewhere these are skipped, and say so.
const privileged = process.platform === "linux" && process.getuid?.() === 0;

describe.skipIf(!privileged)("realtime: the real kernel (Linux, root)", () => {
  const t = new Teardown();
  afterEach(async () => {
    await t.run();
    spawnSync("chrt", ["--other", "--pid", "0", String(linuxSys.tid())]); // never leave the test process real-time
  });

  it("this thread only: a worker thread and a child process created afterwards run at normal priority", async () => {
    const r = applyRealtime(7);
    expect(r).toEqual({ requested: 7, applied: true, priority: 7 });
    expect(schedOf(readFileSync("/proc/thread-self/stat", "utf8"))).toEqual({ policy: 1, priority: 7 });

    const worker = new Worker(
      `const { parentPort } = require("node:worker_threads"); parentPort.postMessage(require("node:fs").readFileSync("/proc/thread-self/stat", "utf8"));`,
      { eval: true },
    );
    const stat = await new Promise<string>((resolve, reject) => worker.once("message", resolve).once("error", reject));
    await worker.terminate();
    expect(schedOf(stat)).toEqual({ policy: 0, priority: 0 });

    const child = spawnSync("sh", ["-c", "cat /proc/self/stat"], { encoding: "utf8" });
    expect(schedOf(child.stdout)).toEqual({ policy: 0, priority: 0 });

    dropRealtime(r);
    expect(schedOf(readFileSync("/proc/thread-self/stat", "utf8"))).toEqual({ policy: 0, priority: 0 });
  });

  it("a cell with cycle.realtime_priority runs its loop under SCHED_FIFO, reports it, and drops it at stop", async () => {
    const sim = await SimDevice.start(t);
    const cell = await startCell(
      `
version: 1
cell: { id: rt }
cycle: { period_ms: 10, input_budget_ms: 4, output_budget_ms: 4, realtime_priority: 9 }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    points:
      door: { address: "di:0" }
`,
      t,
    );
    await waitFor(() => cell.cycles.length > 5, 5000, "cycles");
    expect(cell.app.realtime).toEqual({ requested: 9, applied: true, priority: 9 });
    expect(schedOf(readFileSync("/proc/thread-self/stat", "utf8"))).toEqual({ policy: 1, priority: 9 });
    await cell.app.stop(1000);
    expect(cell.app.realtime.priority).toBe(0);
    expect(schedOf(readFileSync("/proc/thread-self/stat", "utf8"))).toEqual({ policy: 0, priority: 0 });
  });
});
