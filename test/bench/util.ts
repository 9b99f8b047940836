/**
 * Small helpers shared by the benchmarks: CPU measurement, a child-process
 * simulator, and result formatting. Benchmarks print figures; they never assert.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const MAIN = path.join(ROOT, "dist", "src", "main.js");

export interface Figure {
  readonly bench: string;
  readonly case: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** The same metric for the baseline measured in the same run, if any. */
  readonly baseline?: number;
  readonly baselineName?: string;
}

export function benchSeconds(fallback: number): number {
  const v = Number(process.env.BENCH_SECONDS);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** CPU time of this process over a window, as % of one core. */
export function cpuMeter(): () => number {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  return () => {
    const c = process.cpuUsage(c0);
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
    return ((c.user + c.system) / wallUs) * 100;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Start `cellio sim` for a config in its own process; resolves when it listens. */
export function startSimProcess(config: string, controlPort: number, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAIN, "sim", "--config", config, "--control-port", String(controlPort), "--exit-with-parent", ...extra], {
    stdio: ["pipe", "pipe", "ignore"],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    child.once("exit", (code) => reject(new Error(`simulator exited (${String(code)}) before it was ready`)));
    lines.on("line", (line) => {
      if (line.includes('"sim-ready"')) {
        child.removeAllListeners("exit");
        resolve(child);
      }
    });
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(3000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

export function fmt(n: number, digits = 3): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}
