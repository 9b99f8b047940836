/**
 * The machine's own jitter, measured beside a benchmark: bare threads
 * (workers of the bench process, normal priority) that sleep until absolute
 * deadlines every period and record how late each wake-up is. They run no
 * cellio code, so when one wakes 10 ms late at the same time as the
 * controller's tick, the machine (its other processes, its vCPUs' host) took
 * the time, not the controller.
 *
 * One thread on each CPU, pinned there (`taskset`), where it can be: when
 * the host stops one vCPU for a while, a thread free to move may wake on the
 * other one, on time, while whatever was on the stopped vCPU waits. Measured
 * here (30 s, 5 ms period, nothing else running): the two pinned threads saw
 * 13 and 9 wake-ups 5 ms late or more, a free thread beside them 7 and 3;
 * 10 ms or more, 4 and 4 against 2 and 2. The period matters more: these
 * stalls last 10–30 ms, so a thread waking every 100 ms sleeps through most
 * of them. Beside the 32-device fleet, each of the daemon's longest gaps
 * between cycles on the wire came with a pinned thread 11–30 ms late. This
 * VM reports no steal time for them (/proc/stat), so the guest charges the
 * time to whatever the stopped vCPU was running.
 *
 * Wake-ups late by STALL_MS or more are also logged with their time (ms
 * since 1970, the clock of a packet capture), so a long poll interval on the
 * wire can be set beside them (wire.ts). A stall of S ms is seen by a thread
 * that wakes every P ms as a wake-up late by at least S − P.
 *
 * The sleep is Atomics.wait (a futex with a timeout), whose overshoot is part
 * of what it measures. The counts live in shared memory: the bench reads and
 * resets them without a message to threads that are asleep.
 */
import { spawnSync } from "node:child_process";
import os from "node:os";
import { Worker } from "node:worker_threads";

/** Lateness buckets of 0.1 ms, the last one "100 ms or more". */
const BUCKETS = 1000;
const BUCKET_MS = 0.1;
/** Wake-ups at least this late (ms) are logged with their time. */
export const STALL_MS = 5;
/** Logged stalls per thread, at most (a window with more keeps the first ones). */
const STALL_LOG = 4096;
/** Shared control words: reset request, stop request, go (the thread may start), the thread's tid. */
const RESET = 0;
const STOP = 1;
const GO = 2;
const TID = 3;
const FIRST_BUCKET = 4;
/** Per thread, Float64: [0] max lateness, [1] logged stalls; then (due time, lateness) pairs. */
const STALL_FIRST = 2;

const WORKER = `
const { workerData } = require("node:worker_threads");
const { readlinkSync } = require("node:fs");
const ctl = new Int32Array(workerData.shared);
const log = new Float64Array(workerData.log);
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const { periodMs, buckets, bucketMs, first, stallMs, stallLog, stallFirst } = workerData;
let tid = -1; // unknown: not Linux
try {
  tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
} catch {}
Atomics.store(ctl, ${TID}, tid);
Atomics.notify(ctl, ${TID});
let due = 0;
while (Atomics.load(ctl, ${STOP}) === 0) {
  if (Atomics.load(ctl, ${GO}) === 0) {
    // paused (or not started yet): sleep until told to go, then start a fresh schedule
    Atomics.wait(ctl, ${GO}, 0, 50);
    due = performance.now() + periodMs;
    continue;
  }
  const rest = due - performance.now();
  if (rest > 0) Atomics.wait(sleepCell, 0, 0, rest);
  const late = performance.now() - due;
  if (Atomics.exchange(ctl, ${RESET}, 0) === 1) {
    for (let i = 0; i < buckets; i++) Atomics.store(ctl, first + i, 0);
    log[0] = 0;
    log[1] = 0;
  }
  Atomics.add(ctl, first + Math.min(buckets - 1, Math.floor(late / bucketMs)), 1);
  if (late > log[0]) log[0] = late;
  if (late >= stallMs && log[1] < stallLog) {
    const at = stallFirst + 2 * log[1];
    log[at] = performance.timeOrigin + due;
    log[at + 1] = late;
    log[1] += 1;
  }
  // a wake-up more than a period late skips the deadlines it missed, as the control loop does
  due += periodMs * Math.max(1, Math.ceil(late / periodMs));
}
`;

/** A wake-up STALL_MS or more late: when it was due (ms since 1970) and how late it came (ms). */
export interface Stall {
  readonly at: number;
  readonly ms: number;
}

export interface WakeProbeReport {
  /** All threads' wake-ups. */
  readonly wakeups: number;
  /** Lateness of the wake-ups (ms): p99 to the bucket's upper edge (0.1 ms), max exact. */
  readonly p99: number;
  readonly max: number;
  /** Wake-ups 5 ms (STALL_MS) late or more: the count of `stalls`, exact where the log is full. */
  readonly over5: number;
  /** Threads, and whether each is pinned to a CPU of its own. */
  readonly threads: number;
  readonly pinned: boolean;
  /** Wake-ups at least STALL_MS late, any thread, in time order (at most STALL_LOG per thread). */
  readonly stalls: readonly Stall[];
}

interface ProbeThread {
  readonly worker: Worker;
  readonly ctl: Int32Array;
  readonly log: Float64Array;
}

let pinWarned = false;

export class WakeProbe {
  private constructor(
    private readonly threads: readonly ProbeThread[],
    readonly pinned: boolean,
  ) {}

  /**
   * Start the probe, waking every `periodMs`: one thread pinned to each CPU (`perCpu`, the default),
   * or one thread free to move. Where pinning fails (no `taskset`, not Linux), the threads run unpinned
   * and the report says so.
   */
  static async start(periodMs = 10, opts: { readonly perCpu?: boolean } = {}): Promise<WakeProbe> {
    const n = opts.perCpu === false ? 1 : os.availableParallelism();
    const threads: ProbeThread[] = [];
    for (let i = 0; i < n; i++) {
      const shared = new SharedArrayBuffer(4 * (FIRST_BUCKET + BUCKETS));
      const log = new SharedArrayBuffer(8 * (STALL_FIRST + 2 * STALL_LOG));
      const worker = new Worker(WORKER, {
        eval: true,
        workerData: { shared, log, periodMs, buckets: BUCKETS, bucketMs: BUCKET_MS, first: FIRST_BUCKET, stallMs: STALL_MS, stallLog: STALL_LOG, stallFirst: STALL_FIRST },
      });
      worker.unref();
      threads.push({ worker, ctl: new Int32Array(shared), log: new Float64Array(log) });
    }
    let pinned = opts.perCpu !== false;
    for (const [cpu, t] of threads.entries()) {
      const tid = await WakeProbe.tid(t.ctl);
      if (!pinned) continue;
      const r = tid <= 0 ? undefined : spawnSync("taskset", ["-p", "-c", String(cpu), String(tid)], { encoding: "utf8" });
      if (r?.status !== 0) {
        pinned = false;
        if (!pinWarned) process.stderr.write(`wake probe: threads not pinned to CPUs (${r?.error?.message ?? r?.stderr.trim() ?? "no thread id"})\n`);
        pinWarned = true;
      }
    }
    const probe = new WakeProbe(threads, pinned);
    probe.resume();
    return probe;
  }

  /** The thread's id, once it has published it (-1 where it has none to give, 0 if it does not within a second). */
  private static async tid(ctl: Int32Array): Promise<number> {
    for (let i = 0; i < 100 && Atomics.load(ctl, TID) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    return Atomics.load(ctl, TID);
  }

  /** Stop waking (the threads sleep until `resume`): out of the way of a window that measures CPU. */
  pause(): void {
    for (const t of this.threads) Atomics.store(t.ctl, GO, 0);
  }

  resume(): void {
    for (const t of this.threads) {
      Atomics.store(t.ctl, GO, 1);
      Atomics.notify(t.ctl, GO);
    }
  }

  /** Forget what was recorded (takes effect at each thread's next wake-up). */
  reset(): void {
    for (const t of this.threads) Atomics.store(t.ctl, RESET, 1);
  }

  report(): WakeProbeReport {
    const counts = new Array<number>(BUCKETS).fill(0);
    let max = 0;
    const stalls: Stall[] = [];
    for (const t of this.threads) {
      for (let i = 0; i < BUCKETS; i++) counts[i]! += Atomics.load(t.ctl, FIRST_BUCKET + i);
      max = Math.max(max, t.log[0]!);
      for (let k = 0; k < t.log[1]!; k++) stalls.push({ at: t.log[STALL_FIRST + 2 * k]!, ms: t.log[STALL_FIRST + 2 * k + 1]! });
    }
    stalls.sort((a, b) => a.at - b.at);
    let n = 0;
    let over5 = 0;
    for (let i = 0; i < BUCKETS; i++) {
      n += counts[i]!;
      if (i * BUCKET_MS >= STALL_MS) over5 += counts[i]!;
    }
    let seen = 0;
    let p99 = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i]!;
      if (seen >= Math.ceil(0.99 * n)) {
        p99 = (i + 1) * BUCKET_MS;
        break;
      }
    }
    return { wakeups: n, p99: Math.min(p99, max), max, over5, threads: this.threads.length, pinned: this.pinned, stalls };
  }

  async stop(): Promise<void> {
    for (const t of this.threads) {
      Atomics.store(t.ctl, STOP, 1);
      Atomics.notify(t.ctl, GO);
    }
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
