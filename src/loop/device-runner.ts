/**
 * One device as the loop sees it: poll pacing, at most one read and one write
 * in flight, failure counting, staleness, quality marking and counters.
 * Logs transitions only: first failure at warn, recovery once at info.
 */
import type { Clock } from "../infra/clock.js";
import type { Logger } from "../infra/logger.js";
import type { InputTable } from "../core/input-table.js";
import type { Status, Value } from "../core/sample.js";
import type { DevicePort, DirectReadPort, OutputChange, ReadOutcome, WriteOutcome } from "./device-port.js";
import { Histogram } from "./histogram.js";


function directReader(port: DevicePort): DirectReadPort | undefined {
  const p = port as Partial<DirectReadPort>;
  return typeof p.readDirect === "function" ? (p as DirectReadPort) : undefined;
}

/** Told when a read or write started by the loop is done; `phase` is the token it was started with. */
export type PhaseDone = (phase: number) => void;

const NO_OUTCOME: ReadOutcome = Object.freeze({ ok: false, status: "bad_device_failure", error: "driver completed without an outcome" });

export type DeviceState = "waiting" | "good" | "stale" | "bad";

export interface DeviceRunnerOptions {
  readonly pollEvery: number;
  readonly staleAfterMs: number;
  readonly failAfter: number;
  /** All point indices of the device (inputs and outputs). */
  readonly points: readonly number[];
  /** Output point indices of the device. */
  readonly outputs: readonly number[];
  readonly heartbeatWrites: boolean;
}

export class DeviceCounters {
  reads = 0;
  readFailures = 0;
  writes = 0;
  writeFailures = 0;
  busySkips = 0;
  deadlineMisses = 0;
  readonly failuresByStatus = new Map<Status, number>();
  readonly readLatency = new Histogram();
}

export class DeviceRunner {
  state: DeviceState = "waiting";
  lastError = "";
  readonly counters = new DeviceCounters();
  private readInFlight = false;
  private writeInFlight = false;
  private consecutiveFailures = 0;
  /** Silence of the device since its last good read, in cellio's running time (see checkStale). */
  private silentMs = 0;
  private lastCheckMs: number | undefined;
  /** Last value successfully written per output (undefined: unknown, write again). */
  private readonly written = new Map<number, Value>();
  private readonly direct: DirectReadPort | undefined;
  /** The read in flight: when it started, whom to tell, with which token. */
  private readT0 = 0;
  private readDone: PhaseDone | undefined;
  private readPhase = 0;
  private readonly finishReadBound = (o: ReadOutcome): void => this.finishRead(o);

  constructor(
    readonly port: DevicePort,
    readonly opts: DeviceRunnerOptions,
    private readonly table: InputTable,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.direct = directReader(port);
  }

  get name(): string {
    return this.port.name;
  }

  isDue(cycle: number): boolean {
    return cycle % this.opts.pollEvery === 0;
  }

  /** A read is in flight. */
  get busy(): boolean {
    return this.readInFlight;
  }

  /** A write is in flight. */
  get writing(): boolean {
    return this.writeInFlight;
  }

  /**
   * Start a read unless one is in flight (false then: counted as a busy skip).
   * When it is done, the outcome is applied and `done(phase)` is called,
   * possibly before startRead returns.
   */
  startRead(done: PhaseDone, phase: number): boolean {
    if (this.readInFlight) {
      this.counters.busySkips++;
      return false;
    }
    this.readInFlight = true;
    this.readDone = done;
    this.readPhase = phase;
    this.readT0 = this.clock.now();
    if (this.direct) {
      try {
        this.direct.readDirect(this.table, this.finishReadBound);
      } catch (e) {
        if (this.readInFlight) this.finishRead({ ok: false, status: "bad_device_failure", error: String(e) });
      }
      return true;
    }
    let outcome: ReadOutcome | undefined;
    // An Observable ends with complete OR error, never both: both end the read
    // (an error that only set the outcome left the device busy for good).
    this.port.read(this.table).subscribe({
      next: (o) => (outcome = o),
      error: (e: unknown) => this.finishRead({ ok: false, status: "bad_device_failure", error: String(e) }),
      complete: () => this.finishRead(outcome ?? NO_OUTCOME),
    });
    return true;
  }

  private finishRead(o: ReadOutcome): void {
    const done = this.readDone;
    this.readDone = undefined;
    this.readInFlight = false;
    this.onRead(o, this.readT0);
    done?.(this.readPhase);
  }

  private onRead(o: ReadOutcome, t0: number): void {
    const now = this.clock.now();
    this.counters.reads++;
    this.counters.readLatency.recordMs(now - t0);
    if (o.ok) {
      this.consecutiveFailures = 0;
      this.silentMs = 0;
      this.lastCheckMs = now;
      if (this.state !== "good") {
        if (this.state === "bad" || this.state === "stale") this.log.info("device recovered");
        // Stale marked the outputs uncertain too, and only a write puts them
        // back: write every output again (the device may also have restarted
        // meanwhile). A lost device forgot them already.
        if (this.state === "stale") this.written.clear();
        this.state = "good";
        this.lastError = "";
      }
      return;
    }
    this.counters.readFailures++;
    this.counters.failuresByStatus.set(o.status, (this.counters.failuresByStatus.get(o.status) ?? 0) + 1);
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= this.opts.failAfter && this.state !== "bad") {
      this.log.warn({ status: o.status, err: o.error }, "device lost: its points are bad");
      this.state = "bad";
      this.lastError = o.error;
      this.table.mark(this.opts.points, o.status);
      this.written.clear();
    } else if (this.state === "bad") {
      this.lastError = o.error;
      this.table.mark(this.opts.points, o.status);
    }
  }

  /**
   * Turn a good device stale when it has not answered for staleAfterMs.
   * Call once per cycle, after the input phase.
   *
   * The silence is counted in cellio's running time: the time between two
   * checks counts at most a third of staleAfterMs. A stall of cellio itself
   * (its event loop blocked, cycles skipped: counted in the loop's stats) is
   * not the device's silence, and must not make it stale while its answer
   * is waiting to be read (a latched interlock on its points would trip and
   * want a reset for cellio's own hiccup). A device that stays silent while
   * cellio runs turns stale after staleAfterMs as before. An expression that
   * needs a strict age can say so: `age(io1.door) < 200ms`.
   */
  checkStale(nowMs: number): void {
    const dt = this.lastCheckMs === undefined ? 0 : Math.max(0, nowMs - this.lastCheckMs);
    this.lastCheckMs = nowMs;
    this.silentMs += Math.min(dt, this.opts.staleAfterMs / 3);
    if (this.state === "good" && this.silentMs > this.opts.staleAfterMs) {
      this.state = "stale";
      this.log.warn({ staleAfterMs: this.opts.staleAfterMs }, "device stale: no fresh data");
      this.table.mark(this.opts.points, "uncertain_last_usable");
    }
  }

  /** Outputs whose commanded value differs from what the device last accepted. */
  changes(commanded: readonly (Value | null)[], all = this.opts.heartbeatWrites): OutputChange[] {
    const out: OutputChange[] = [];
    for (const i of this.opts.outputs) {
      const v = commanded[i];
      if (v === null || v === undefined) continue;
      if (all || this.written.get(i) !== v) out.push({ index: i, value: v });
    }
    return out;
  }

  /** Start a write unless there is nothing to write or one is in flight; `done(phase)` when it is done. */
  startWrite(changes: readonly OutputChange[], done: PhaseDone, phase: number): boolean {
    if (changes.length === 0 || this.writeInFlight) return false;
    this.writeInFlight = true;
    let outcome: WriteOutcome | undefined;
    const finish = (o: WriteOutcome): void => {
      this.writeInFlight = false;
      this.onWrite(changes, o);
      done(phase);
    };
    this.port.write(changes).subscribe({
      next: (o) => (outcome = o),
      error: (e: unknown) => finish({ ok: false, status: "bad_device_failure", error: String(e), failed: changes.map((c) => c.index) }),
      complete: () => finish(outcome ?? { ok: false, status: "bad_device_failure", error: "no outcome", failed: [] }),
    });
    return true;
  }

  private onWrite(changes: readonly OutputChange[], o: WriteOutcome): void {
    this.counters.writes++;
    const ts = this.clock.wall();
    const failed = o.ok ? undefined : new Set(o.failed);
    for (const c of changes) {
      if (failed?.has(c.index)) {
        this.written.delete(c.index);
        if (!o.ok) this.table.mark([c.index], o.status);
      } else {
        this.written.set(c.index, c.value);
        this.table.put(c.index, c.value, ts);
      }
    }
    if (!o.ok) {
      this.counters.writeFailures++;
      if (this.lastError !== o.error) this.log.warn({ err: o.error }, "output write failed");
      this.lastError = o.error;
    }
  }

  /** Forget what was written: the next cycle writes every output again. */
  forgetWritten(): void {
    this.written.clear();
  }
}
