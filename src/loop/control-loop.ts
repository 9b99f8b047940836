/**
 * The fixed-rate control loop.
 *
 * Cycle k is due at t0 + k·T on an absolute timeline: no drift, and no
 * catch-up bursts — a tick that comes a whole period late skips the missed
 * cycles and counts them. Phases: input (concurrent reads, deadline) →
 * logic (pure) → gate (safe until the first complete good scan, safe on
 * fault) → output (concurrent writes, deadline) → publish (cycles$).
 *
 * Time comes from injected schedulers (RxJS SchedulerLike) and a Clock, so the
 * whole loop runs in virtual time under TestScheduler.
 */
import { Subject, type SchedulerLike, type Subscription } from "rxjs";
import type { CellModel } from "../config/compile.js";
import type { Clock } from "../infra/clock.js";
import type { Logger } from "../infra/logger.js";
import type { InputTable } from "../core/input-table.js";
import type { Sample, Value } from "../core/sample.js";
import { CellLogic, type CellLogicResult } from "../core/cell-logic.js";
import type { AlarmEvent, AlarmInputs } from "../core/alarms.js";
import type { DeviceRunner } from "./device-runner.js";
import type { CycleResult, LoopMode } from "./cycle-result.js";
import { writeSafeOutputs } from "./safe-outputs.js";
import { LoopStats } from "./stats.js";
import { logOverrun, OverrunPolicy } from "./overrun.js";
import { PhaseGate } from "./phase-gate.js";

export type { CycleResult, LoopMode } from "./cycle-result.js";

export interface ControlLoopDeps {
  readonly model: CellModel;
  readonly runners: readonly DeviceRunner[];
  readonly table: InputTable;
  readonly clock: Clock;
  /** Schedules the ticks: precise in production, virtual in tests. */
  readonly tickScheduler: SchedulerLike;
  /** Schedules phase deadlines. */
  readonly scheduler: SchedulerLike;
  /** After the next I/O poll (setImmediate in the daemon): where a deadline that fired late ends its phase (phase-gate.ts). */
  readonly afterIo?: (fn: () => void) => void;
  readonly log: Logger;
}

export class ControlLoop {
  readonly cycles$ = new Subject<CycleResult>();
  readonly stats = new LoopStats();
  private readonly overrun: OverrunPolicy;
  private readonly T: number;
  private t0 = 0;
  private k = 0;
  private running = false;
  private tickSub: Subscription | undefined;
  /** The input or output phase in progress (phase-gate.ts). */
  private readonly gate: PhaseGate;
  private outputsEnabled = false;
  private readonly inputIdx: readonly number[];
  private readonly alarmInputs: AlarmInputs;
  /** Commands, logic, latches, sequences and interlocks: the pure middle of the cycle. */
  readonly logic: CellLogic;

  constructor(private readonly deps: ControlLoopDeps) {
    const c = deps.model.cycle;
    this.T = c.periodMs;
    this.gate = new PhaseGate(deps.scheduler, () => deps.clock.now(), deps.afterIo);
    this.overrun = new OverrunPolicy(c.periodMs, c.warnPct, c.faultAfter);
    this.logic = new CellLogic(deps.model, { resetFault: () => this.resetFault() });
    this.inputIdx = deps.model.points.filter((p) => p.direction === "input").map((p) => p.index);
    const runners = new Map(deps.runners.map((r) => [r.name, r]));
    this.alarmInputs = {
      interlock: (id) => {
        const s = this.logic.interlocks.state(id);
        return s?.tripped ? `interlock ${id} tripped: ${s.lastCause}` : undefined;
      },
      device: (name) => {
        const r = runners.get(name);
        return r?.state === "bad" ? `device ${name} lost: ${r.lastError}` : undefined;
      },
      overrun: () => (this.overrun.faulted ? "overrun fault: every output is safe until the fault is reset" : undefined),
    };
  }

  get mode(): LoopMode {
    if (this.overrun.faulted) return "faulted";
    return this.outputsEnabled ? "running" : "starting";
  }

  get cycle(): number {
    return this.k;
  }

  /**
   * Nothing in flight: no phase running and no device read or write
   * outstanding (a straggler of a phase that ended at its deadline counts).
   * The tick scheduler may then sleep in one piece until the next cycle.
   */
  get quiet(): boolean {
    if (this.gate.running) return false;
    for (const r of this.deps.runners) if (r.busy || r.writing) return false;
    return true;
  }

  /**
   * Start ticking; the first cycle is due one period from the next whole
   * millisecond. A whole t0 keeps every due time t0 + k·T a whole number, so
   * the time between two cycles is exactly a multiple of T (with t0 a raw
   * clock reading, (t0 + 150) - (t0 + 100) can be 49.999999999970896).
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.t0 = Math.ceil(this.deps.clock.now()) + this.T;
    this.k = 0;
    this.scheduleTick();
  }

  /** Stop ticking. A cycle in flight is abandoned at its next phase; reads and writes in flight finish on their own. */
  stop(): void {
    this.running = false;
    this.tickSub?.unsubscribe();
    this.tickSub = undefined;
    this.gate.abandon();
  }

  /** Clear an overrun fault. Refused while cycles still overrun. */
  resetFault(): boolean {
    const ok = this.overrun.reset();
    if (ok) this.deps.log.info("overrun fault reset");
    return ok;
  }

  private scheduleTick(): void {
    if (!this.running) return;
    const delay = Math.max(0, this.t0 + this.k * this.T - this.deps.clock.now());
    this.tickSub = this.deps.tickScheduler.schedule(() => this.tick(), delay);
  }

  private tick(): void {
    if (!this.running) return;
    const { clock } = this.deps;
    const start = clock.now();
    let due = this.t0 + this.k * this.T;
    if (start < due) {
      // A timer that fires early (setTimeout may, by up to 1 ms): wait for the due time.
      this.tickSub = this.deps.tickScheduler.schedule(() => this.tick(), due - start);
      return;
    }
    if (start - due >= this.T) {
      const k = Math.floor((start - this.t0) / this.T);
      this.stats.skipped += k - this.k;
      this.k = k;
      due = this.t0 + k * this.T;
    }
    const gate = this.gate;
    const started = gate.begin();
    for (const r of this.deps.runners) {
      if (!r.isDue(this.k)) continue;
      gate.add();
      if (r.startRead(gate.ioDone, gate.phase)) started.push(r);
      else {
        gate.notStarted();
        r.counters.deadlineMisses++;
        this.stats.inputMisses++;
      }
    }
    const afterInput = (): void => {
      for (const r of started) {
        if (r.busy) {
          r.counters.deadlineMisses++;
          this.stats.inputMisses++;
        }
      }
      this.afterInput(start, due);
    };
    const budget = Math.max(0, start + this.deps.model.cycle.inputBudgetMs - clock.now());
    gate.await(budget, afterInput);
  }

  private afterInput(start: number, due: number): void {
    if (!this.running) return;
    const { clock, model, runners, table } = this.deps;
    const tIn = clock.now();
    for (const r of runners) r.checkStale(tIn);
    const image = table.snapshot();
    // The cycle of the first complete good scan still writes the safe values,
    // so every output has been written safe before the logic drives it.
    const firstGoodScan = !this.outputsEnabled && this.allInputsGood(image);
    const desired = new Array<Value | null>(model.points.length);
    const wallMs = clock.wall();
    // Timers and step timeouts count the cycle's due time, not the end of its
    // input phase: that varies with the devices' answer times, and a 50 ms
    // ton() at a 10 ms period then ended in the 5th or the 6th cycle.
    const result = this.logic.run(this.k, image, due, wallMs, desired, (i, v) => table.put(i, v, wallMs), this.outputsEnabled);
    this.stats.degradedRules += result.degradedRules;
    const alarmEvents = this.logic.updateAlarms(this.alarmInputs, this.k, wallMs);
    const mode = this.mode;
    if (mode !== "running") {
      const safe = this.logic.safe;
      for (let i = 0; i < desired.length; i++) if (safe[i] !== null) desired[i] = safe[i]!;
    }
    if (firstGoodScan) {
      this.outputsEnabled = true;
      this.deps.log.info({ cycle: this.k }, "first complete good scan: outputs follow the logic from the next cycle");
    }
    const tLogic = clock.now();
    this.runOutputs(desired, () => this.afterOutput(start, due, tIn, tLogic, image, desired, wallMs, result, mode, alarmEvents));
  }

  private runOutputs(commanded: readonly (Value | null)[], after: () => void): void {
    const gate = this.gate;
    const started = gate.begin();
    for (const r of this.deps.runners) {
      if (r.opts.outputs.length === 0) continue;
      gate.add();
      if (r.startWrite(r.changes(commanded), gate.ioDone, gate.phase)) started.push(r);
      else gate.notStarted();
    }
    const finish = (): void => {
      for (const r of started) if (r.writing) this.stats.outputMisses++;
      after();
    };
    gate.await(this.deps.model.cycle.outputBudgetMs, finish);
  }

  private afterOutput(
    start: number,
    due: number,
    tIn: number,
    tLogic: number,
    image: Sample[],
    commanded: (Value | null)[],
    wallMs: number,
    logic: CellLogicResult,
    mode: LoopMode,
    alarmEvents: readonly AlarmEvent[],
  ): void {
    if (!this.running) return;
    const end = this.deps.clock.now();
    const duration = end - start;
    // While starting (outputs held safe, connections and JIT warming up) an
    // overrun is counted but cannot fault the cell, as a PLC suspends its task
    // watchdog during initialisation.
    const verdict = this.overrun.judge(duration, mode !== "starting");
    const s = this.stats;
    s.cycles++;
    s.lateness.recordMs(start - due);
    s.duration.recordMs(duration);
    s.inputPhase.recordMs(tIn - start);
    s.logicPhase.recordMs(tLogic - tIn);
    s.outputPhase.recordMs(end - tLogic);
    if (verdict === "warn") s.warnings++;
    else if (verdict === "overrun" || verdict === "fault") {
      s.overruns++;
      const times = { cycle: this.k, durationMs: duration, periodMs: this.T, latenessMs: start - due, inputMs: tIn - start, logicMs: tLogic - tIn, outputMs: end - tLogic };
      logOverrun(this.deps.log, verdict, this.overrun, mode === "starting", times);
    }
    Object.freeze(image);
    this.cycles$.next({
      cycle: this.k,
      dueMs: due,
      latenessMs: start - due,
      inputMs: tIn - start,
      logicMs: tLogic - tIn,
      outputMs: end - tLogic,
      durationMs: duration,
      wallMs,
      image,
      commanded,
      mode,
      control: logic.control,
      overrun: verdict === "overrun" || verdict === "fault",
      commands: logic.commands,
      sequenceEvents: logic.sequenceEvents,
      interlockEvents: logic.interlockEvents,
      modeEvents: logic.modeEvents,
      alarmEvents,
    });
    this.k++;
    this.scheduleTick();
  }

  private allInputsGood(image: readonly Sample[]): boolean {
    for (const i of this.inputIdx) if (image[i]!.quality !== "good") return false;
    return true;
  }

  /**
   * Drive every output to its safe value (all of them, not only changed ones)
   * and wait for the writes, at most `timeoutMs`. Used at shutdown.
   */
  writeSafeOutputs(timeoutMs: number): Promise<{ ok: boolean; failed: string[] }> {
    return writeSafeOutputs(this.deps.runners, this.logic.safe, timeoutMs, this.deps.scheduler);
  }
}
