/**
 * Real-time scheduling for the loop's thread only (Linux).
 *
 * On a machine whose cores are also busy with other work (a broker, OPC UA
 * clients, cellio's own north worker), a loop thread at normal priority waits
 * for a CPU when its timer fires: measured on a 2-core machine with MQTT at
 * 10k messages/s, 166 of 174 cycles later than 1 ms had the thread runnable but
 * not running (test/bench: "waiting for a CPU"). Under SCHED_FIFO the kernel
 * runs it the moment it wakes.
 *
 * Only the thread that calls applyRealtime() changes policy: cellio asks
 * `chrt` (util-linux; Node has no sched_setscheduler) to set SCHED_FIFO with
 * SCHED_RESET_ON_FORK on that thread id, so the threads and processes it
 * creates afterwards (the north worker, the sd_notify helper) start at normal
 * priority, and the threads that exist already (V8's and libuv's) stay as they
 * are. The result is read back from /proc, never assumed.
 *
 * Needs CAP_SYS_NICE or an RLIMIT_RTPRIO at least the priority (systemd:
 * `LimitRTPRIO=`, and `RestrictRealtime=no`). Refused: logged with the reason
 * and the fix, and the loop runs at normal priority — timing gets worse under
 * load, nothing else changes.
 *
 * V8's garbage collector hands work to helper threads that stay at normal
 * priority, and the loop's thread waits for them at the end of a collection:
 * under load that is priority inversion (measured: a 45 ms GC pause of the
 * real-time loop thread with 10 OPC UA clients busy, against 2.3 ms with
 * `node --single-threaded-gc`, where the thread does its own GC work). So
 * the daemon is started with that flag (systemd unit, `npm start`, the
 * `cellio` command's first line), and a real-time loop without it is
 * logged (gcOnLoopThread()).
 *
 * The same places pass `--no-memory-reducer`, at any priority: V8's memory
 * reducer compacts the heap once allocation slows after start, in one
 * stop-the-world mark-compact on the loop's thread (no helper threads with
 * --single-threaded-gc). Measured on the 32-device fleet with --trace-gc over
 * 150 s: a 19 ms "Mark-Compact (reduce)" 105 s after start, after which the
 * smaller heap collected twice as often (310 collections after the first 5 s,
 * 3.0–3.7 ms scavenges among them); without the reducer, 131 collections, the
 * longest 1.0 ms. The heap keeps its size from start-up (about 50 MB here).
 *
 * The kernel's real-time throttling (sched_rt_runtime_us, 95 % by default)
 * still leaves the other tasks of a core 5 %, and the systemd watchdog still
 * stops a loop that no longer completes cycles.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";

export interface RealtimeState {
  /** The priority asked for (undefined: not asked; the loop runs at normal priority). */
  readonly requested: number | undefined;
  /** SCHED_FIFO at `priority`, read back from the kernel. */
  readonly applied: boolean;
  /** The thread's real-time priority as read back (0: normal scheduling). */
  readonly priority: number;
  /** Why it was not applied. */
  readonly reason?: string;
}

/** What applyRealtime() touches of the system (tests inject fakes). */
export interface RealtimeSys {
  readonly platform: NodeJS.Platform;
  /** The calling thread's id. */
  tid(): number;
  /** Policy and rt priority of the calling thread. */
  read(): { policy: number; priority: number };
  run(args: readonly string[]): Pick<SpawnSyncReturns<string>, "status" | "stderr" | "error">;
}

const SCHED_OTHER = 0;
const SCHED_FIFO = 1;

export const NOT_REQUESTED: RealtimeState = Object.freeze({ requested: undefined, applied: false, priority: 0 });

export const linuxSys: RealtimeSys = {
  platform: process.platform,
  tid: () => threadId(readlinkSync("/proc/thread-self")),
  read: () => schedOf(readFileSync("/proc/thread-self/stat", "utf8")),
  run: (args) => spawnSync("chrt", [...args], { encoding: "utf8", timeout: 5000 }),
};

/** "/proc/thread-self" links to "<pid>/task/<tid>". */
export function threadId(link: string): number {
  const m = /(?:^|\/)task\/(\d+)$/.exec(link);
  if (!m) throw new Error(`unexpected /proc/thread-self link: ${link}`);
  return Number(m[1]);
}

/** rt_priority and policy from a /proc/<pid>/task/<tid>/stat line (fields 40 and 41 of proc(5)). */
export function schedOf(stat: string): { policy: number; priority: number } {
  // Field 2 (comm) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { priority: Number(fields[40 - 3]), policy: Number(fields[41 - 3]) };
}

/** Put the calling thread under SCHED_FIFO at `priority` (1–99), with reset-on-fork. */
export function applyRealtime(priority: number, sys: RealtimeSys = linuxSys): RealtimeState {
  const refused = (reason: string): RealtimeState => ({ requested: priority, applied: false, priority: safeRead(sys).priority, reason });
  if (sys.platform !== "linux") return refused(`real-time scheduling is supported on Linux only (this is ${sys.platform})`);
  let tid: number;
  try {
    tid = sys.tid();
  } catch (e) {
    return refused(e instanceof Error ? e.message : String(e));
  }
  const r = sys.run(["--fifo", "--reset-on-fork", "--pid", String(priority), String(tid)]);
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return refused(code === "ENOENT" ? "chrt was not found (Debian package util-linux)" : `chrt could not run: ${r.error.message}`);
  }
  if (r.status !== 0) {
    const msg = r.stderr.trim() || `chrt exited with ${String(r.status)}`;
    return refused(/not permitted/i.test(msg) ? `${msg} (needs CAP_SYS_NICE or RLIMIT_RTPRIO ≥ ${priority}: systemd LimitRTPRIO=${priority} and RestrictRealtime=no)` : msg);
  }
  const now = safeRead(sys);
  if (now.policy !== SCHED_FIFO || now.priority !== priority) {
    return { requested: priority, applied: false, priority: now.priority, reason: `the kernel reports policy ${now.policy}, priority ${now.priority} after chrt` };
  }
  return { requested: priority, applied: true, priority };
}

/** The node flag that keeps V8's GC work on the thread that needs it (see the header). */
export const SINGLE_THREADED_GC = "--single-threaded-gc";

/** The node flag that stops V8 compacting the heap after start-up in one long pause (see the header). */
export const NO_MEMORY_REDUCER = "--no-memory-reducer";

/** The node flags the daemon runs with: the systemd unit, `npm start` and the `cellio` command's first line pass them. */
export const DAEMON_NODE_FLAGS: readonly string[] = [SINGLE_THREADED_GC, NO_MEMORY_REDUCER];

/** The daemon flags this process was started without. */
export function missingDaemonFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return DAEMON_NODE_FLAGS.filter((f) => !execArgv.includes(f));
}

/** This process was started with SINGLE_THREADED_GC. */
export function gcOnLoopThread(execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.includes(SINGLE_THREADED_GC);
}

/** Back to normal scheduling (the cell stopped; the process may go on, as in tests and benchmarks). */
export function dropRealtime(state: RealtimeState, sys: RealtimeSys = linuxSys): void {
  if (!state.applied) return;
  const now = safeRead(sys);
  if (now.policy === SCHED_OTHER) return;
  sys.run(["--other", "--pid", "0", String(sys.tid())]);
}

function safeRead(sys: RealtimeSys): { policy: number; priority: number } {
  try {
    return sys.read();
  } catch {
    return { policy: SCHED_OTHER, priority: 0 };
  }
}
