/**
 * The machine's own timing, before any cellio figure: how late bare threads,
 * one pinned to each CPU, that sleep until every 10 ms deadline wake up
 * (wake-probe.ts, what a control loop's tick does, with no cellio code), and
 * how long a thread that never sleeps loses the CPU. On a VM both include the
 * host's share: a vCPU that went idle while its thread slept can be given
 * back late. The fleet bench runs the same probe beside each daemon run.
 */
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { sleep, type Figure } from "./util.js";
import { WakeProbe } from "./wake-probe.js";

const PERIOD = 10;
/** A busy thread: gaps between two clock readings longer than this count (ms). */
const GAP_MS = 1;

const SPINNER = `
const { parentPort, workerData } = require("node:worker_threads");
const end = performance.now() + workerData.ms;
let last = performance.now();
let gaps = 0, over5 = 0, max = 0;
for (;;) {
  const t = performance.now();
  const g = t - last;
  if (g > workerData.gapMs) { gaps++; if (g > 5) over5++; if (g > max) max = g; }
  last = t;
  if (t > end) break;
}
parentPort.postMessage({ gaps, over5, max });
`;

interface Gaps {
  gaps: number;
  over5: number;
  max: number;
}

async function busyThread(seconds: number): Promise<Gaps> {
  const w = new Worker(SPINNER, { eval: true, workerData: { ms: seconds * 1000, gapMs: GAP_MS } });
  const [result] = (await once(w, "message")) as [Gaps];
  await w.terminate();
  return result;
}

export async function runMachineBench(seconds: number): Promise<Figure[]> {
  const probe = await WakeProbe.start(PERIOD);
  await sleep(200);
  probe.reset();
  await sleep(seconds * 1000);
  const wake = probe.report();
  await probe.stop();
  // One core kept busy for at most 10 s (the other one is left alone).
  const busy = await busyThread(Math.min(seconds, 10));
  const bench = "machine";
  const where = wake.pinned ? `one on each of ${wake.threads} CPUs` : "not pinned to a CPU";
  const sleeper = `threads sleeping until every ${PERIOD} ms deadline (${where}), nothing else running`;
  const spinner = `a thread that never sleeps, ${Math.min(seconds, 10)} s`;
  return [
    { bench, case: sleeper, metric: "wake-ups", value: wake.wakeups, unit: "" },
    { bench, case: sleeper, metric: "wake-up lateness p99", value: wake.p99, unit: "ms" },
    { bench, case: sleeper, metric: "wake-up lateness max", value: wake.max, unit: "ms" },
    { bench, case: sleeper, metric: "wake-ups more than 5 ms late", value: wake.over5, unit: "in the window" },
    { bench, case: sleeper, metric: "wake-ups more than 10 ms late", value: wake.stalls.filter((s) => s.ms > 10).length, unit: "in the window" },
    { bench, case: spinner, metric: `times off the CPU for more than ${GAP_MS} ms`, value: busy.gaps, unit: "" },
    { bench, case: spinner, metric: "times off the CPU for more than 5 ms", value: busy.over5, unit: "" },
    { bench, case: spinner, metric: "longest time off the CPU", value: busy.max, unit: "ms" },
  ];
}
