/**
 * A device for virtual-time loop tests: answers after a configurable latency
 * on the TestScheduler, can fail, and can "block the event loop" by skewing
 * the clock synchronously (what a long synchronous chunk does in real life).
 */
import { map, timer, type Observable, type SchedulerLike } from "rxjs";
import type { DevicePort, OutputChange, ReadOutcome, SampleSink, WriteOutcome } from "../../src/loop/device-port.js";
import type { Clock } from "../../src/infra/clock.js";
import type { Value } from "../../src/core/sample.js";

/**
 * Virtual time that can jump ahead as if the thread had been busy: after
 * block(ms) the clock reads `ms` later, and stays there until virtual time
 * catches up (a blocked event loop, then everything resumes).
 */
export class SkewClock implements Clock {
  private busyUntil = Number.NEGATIVE_INFINITY;
  /** `offsetMs`: what the clock reads at virtual time 0 (a machine that has been up a while). */
  constructor(
    private readonly scheduler: { now(): number },
    private readonly offsetMs = 0,
  ) {}
  now(): number {
    return Math.max(this.offsetMs + this.scheduler.now(), this.busyUntil);
  }
  block(ms: number): void {
    this.busyUntil = this.now() + ms;
  }
  wall(): number {
    return 1_700_000_000_000 + this.now();
  }
}

export class FakeDevice implements DevicePort {
  readLatency = 1;
  writeLatency = 1;
  fail: ReadOutcome | undefined;
  /** Synchronous "CPU time" burnt in a read call (ms), for the next `blockCount` reads. */
  blockMs = 0;
  blockCount = 0;
  readonly values = new Map<number, Value>();
  readonly reads: number[] = [];
  readonly writes: { t: number; changes: readonly OutputChange[] }[] = [];

  constructor(
    readonly name: string,
    private readonly scheduler: SchedulerLike,
    private readonly clock: SkewClock,
  ) {}

  read(sink: SampleSink): Observable<ReadOutcome> {
    this.reads.push(this.clock.now());
    if (this.blockCount > 0) {
      this.blockCount--;
      this.clock.block(this.blockMs);
    }
    return timer(this.readLatency, this.scheduler).pipe(
      map(() => {
        if (this.fail) return this.fail;
        for (const [i, v] of this.values) sink.put(i, v, this.clock.wall());
        return { ok: true } as const;
      }),
    );
  }

  write(changes: readonly OutputChange[]): Observable<WriteOutcome> {
    this.writes.push({ t: this.clock.now(), changes });
    return timer(this.writeLatency, this.scheduler).pipe(map(() => ({ ok: true }) as const));
  }
}
