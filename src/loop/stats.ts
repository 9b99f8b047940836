/**
 * Per-loop statistics. Updated in place every cycle (no allocation).
 */
import { Histogram, type HistogramSummary } from "./histogram.js";

export class LoopStats {
  cycles = 0;
  skipped = 0;
  overruns = 0;
  warnings = 0;
  inputMisses = 0;
  outputMisses = 0;
  degradedRules = 0;
  readonly lateness = new Histogram();
  readonly duration = new Histogram();
  readonly inputPhase = new Histogram();
  readonly logicPhase = new Histogram();
  readonly outputPhase = new Histogram();

  summary(): LoopSummary {
    return {
      cycles: this.cycles,
      skipped: this.skipped,
      overruns: this.overruns,
      warnings: this.warnings,
      inputMisses: this.inputMisses,
      outputMisses: this.outputMisses,
      lateness: this.lateness.summary(),
      duration: this.duration.summary(),
      inputPhase: this.inputPhase.summary(),
      logicPhase: this.logicPhase.summary(),
      outputPhase: this.outputPhase.summary(),
    };
  }

  /** Reset the histograms (e.g. between summary windows); counters keep counting. */
  resetWindow(): void {
    this.lateness.reset();
    this.duration.reset();
    this.inputPhase.reset();
    this.logicPhase.reset();
    this.outputPhase.reset();
  }
}

export interface LoopSummary {
  readonly cycles: number;
  readonly skipped: number;
  readonly overruns: number;
  readonly warnings: number;
  readonly inputMisses: number;
  readonly outputMisses: number;
  readonly lateness: HistogramSummary;
  readonly duration: HistogramSummary;
  readonly inputPhase: HistogramSummary;
  readonly logicPhase: HistogramSummary;
  readonly outputPhase: HistogramSummary;
}
