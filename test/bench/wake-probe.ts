/**
 * The machine's own jitter, measured beside a benchmark: a bare thread (a
 * worker of the bench process, normal priority) that sleeps until absolute
 * deadlines every period (10 ms, as a control loop's tick does, or longer to
 * stay out of the way of what it watches), and records how late each wake-up
 * is. It runs no cellio code, so when it wakes 5–10 ms late at
 * the same time as the controller's tick, the machine (its other processes,
 * its vCPUs' host) took the time, not the controller.
 *
 * The sleep is Atomics.wait (a futex with a timeout), whose overshoot is part
 * of what it measures. The counts live in shared memory: the bench reads and
 * resets them without a message to a thread that is asleep.
 */
import { Worker } from "node:worker_threads";

/** Lateness buckets of 0.1 ms, the last one "100 ms or more". */
const BUCKETS = 1000;
const BUCKET_MS = 0.1;
/** Shared layout: [0] reset request, [1] stop request; then the bucket counts. */
const RESET = 0;
const STOP = 1;
const FIRST_BUCKET = 2;

const WORKER = `
const { workerData } = require("node:worker_threads");
const ctl = new Int32Array(workerData.shared);
const max = new Float64Array(workerData.max);
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const { periodMs, buckets, bucketMs, first } = workerData;
let due = performance.now() + periodMs;
while (Atomics.load(ctl, ${STOP}) === 0) {
  const rest = due - performance.now();
  if (rest > 0) Atomics.wait(sleepCell, 0, 0, rest);
  const late = performance.now() - due;
  if (Atomics.exchange(ctl, ${RESET}, 0) === 1) {
    for (let i = 0; i < buckets; i++) Atomics.store(ctl, first + i, 0);
    max[0] = 0;
  }
  Atomics.add(ctl, first + Math.min(buckets - 1, Math.floor(late / bucketMs)), 1);
  if (late > max[0]) max[0] = late;
  // a wake-up more than a period late skips the deadlines it missed, as the control loop does
  due += periodMs * Math.max(1, Math.ceil(late / periodMs));
}
`;

export interface WakeProbeReport {
  readonly wakeups: number;
  /** Lateness of the wake-ups (ms): p99 to the bucket's upper edge (0.1 ms), max exact. */
  readonly p99: number;
  readonly max: number;
  /** Wake-ups more than 5 ms late. */
  readonly over5: number;
}

export class WakeProbe {
  private constructor(
    private readonly worker: Worker,
    private readonly ctl: Int32Array,
    private readonly maxMs: Float64Array,
  ) {}

  /** Start the probe thread, waking every `periodMs`. */
  static start(periodMs = 10): WakeProbe {
    const shared = new SharedArrayBuffer(4 * (FIRST_BUCKET + BUCKETS));
    const max = new SharedArrayBuffer(8);
    const worker = new Worker(WORKER, { eval: true, workerData: { shared, max, periodMs, buckets: BUCKETS, bucketMs: BUCKET_MS, first: FIRST_BUCKET } });
    worker.unref();
    return new WakeProbe(worker, new Int32Array(shared), new Float64Array(max));
  }

  /** Forget what was recorded (takes effect at the probe's next wake-up). */
  reset(): void {
    Atomics.store(this.ctl, RESET, 1);
  }

  report(): WakeProbeReport {
    let n = 0;
    let over5 = 0;
    const counts: number[] = [];
    for (let i = 0; i < BUCKETS; i++) {
      const c = Atomics.load(this.ctl, FIRST_BUCKET + i);
      counts.push(c);
      n += c;
      if (i * BUCKET_MS >= 5) over5 += c;
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
    return { wakeups: n, p99: Math.min(p99, this.maxMs[0]!), max: this.maxMs[0]!, over5 };
  }

  async stop(): Promise<void> {
    Atomics.store(this.ctl, STOP, 1);
    await this.worker.terminate();
  }
}
