/**
 * Garbage-collection pauses of the calling thread: in `cellio run`, the main
 * thread, which is the control loop's. For a 10 ms loop a GC pause is time the
 * cycle cannot run, so /metrics exports them (cellio_gc_pause_seconds).
 *
 * Source: perf_hooks `gc` performance entries, one per collection (scavenge,
 * mark-compact, incremental-marking and weak-callback phases), whose duration
 * is the time this thread spent in it. A PerformanceObserver sees only its own
 * thread's heap: the north worker's collections are not counted. Entries come
 * in batches a little after the collection; every entry of a batch is passed
 * on (prom-client's nodejs_gc_duration_seconds takes only the first).
 */
import { PerformanceObserver } from "node:perf_hooks";

/** Called once per collection with its duration in milliseconds. */
export type GcPauseListener = (durationMs: number) => void;

/**
 * Where pauses come from: connect a listener, get back the function that
 * disconnects it. perf_hooks in cellio (gcPausesOfThisThread); tests feed
 * pauses by hand.
 */
export type GcPauseSource = (onPause: GcPauseListener) => () => void;

/** This thread's collections, from a perf_hooks observer of `gc` entries (disconnected by the returned function). */
export const gcPausesOfThisThread: GcPauseSource = (onPause) => {
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) onPause(entry.duration);
  });
  observer.observe({ entryTypes: ["gc"] });
  return () => observer.disconnect();
};

/**
 * One source for several listeners (the cell's /metrics and its summary line):
 * `source` is connected once, while at least one listener is, and each pause
 * goes to every listener connected at the time.
 */
export function sharedGcPauses(source: GcPauseSource = gcPausesOfThisThread): GcPauseSource {
  const listeners = new Set<GcPauseListener>();
  let disconnect: (() => void) | undefined;
  const fanOut: GcPauseListener = (ms) => {
    for (const l of listeners) l(ms);
  };
  return (onPause) => {
    listeners.add(onPause);
    disconnect ??= source(fanOut);
    return () => {
      listeners.delete(onPause);
      if (listeners.size === 0) {
        disconnect?.();
        disconnect = undefined;
      }
    };
  };
}

/** A source connected between start() and stop() (idempotent both), for a component's lifecycle. */
export class GcPauseMonitor {
  private disconnect: (() => void) | undefined;

  constructor(
    private readonly onPause: GcPauseListener,
    private readonly source: GcPauseSource = gcPausesOfThisThread,
  ) {}

  get running(): boolean {
    return this.disconnect !== undefined;
  }

  start(): void {
    this.disconnect ??= this.source(this.onPause);
  }

  stop(): void {
    this.disconnect?.();
    this.disconnect = undefined;
  }
}
