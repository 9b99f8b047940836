/**
 * The manual value table: output and memory values set by command
 * (set_point), by point index; null where none was set.
 *
 * The logic phase starts from it (src/core/cell-logic.ts): in auto mode it is
 * the base of outputs no logic rule, latch or sequence drives; in manual mode
 * (src/core/control-mode.ts) it is what every output is set to, safe where
 * nothing was set. Tripped interlocks force over it either way, and the
 * values of the outputs a tripping interlock forces are dropped, so nothing
 * restarts by itself from an old value once the interlock clears.
 */
import type { Value } from "./sample.js";

export class ManualValues {
  private readonly values: (Value | null)[];

  constructor(size: number) {
    this.values = new Array<Value | null>(size).fill(null);
  }

  get(index: number): Value | null {
    return this.values[index] ?? null;
  }

  set(index: number, value: Value): void {
    this.values[index] = value;
  }

  clear(index: number): void {
    this.values[index] = null;
  }

  /** Forget every value (a mode change). */
  clearAll(): void {
    this.values.fill(null);
  }

  /** Write every manual value into `desired` (the base the logic phase starts from). */
  overlay(desired: (Value | null)[]): void {
    for (let i = 0; i < this.values.length; i++) {
      const v = this.values[i];
      if (v !== null && v !== undefined) desired[i] = v;
    }
  }
}
