/**
 * What every cycle publishes on ControlLoop.cycles$: timings, the process
 * image, what was commanded, the modes, and the cycle's events. OPC UA, MQTT
 * and metrics read it; they never reach into the loop.
 */
import type { Sample, Value } from "../core/sample.js";
import type { SequenceEvent } from "../core/sequences.js";
import type { InterlockEvent } from "../core/interlocks.js";
import type { AppliedCommand } from "../core/commands.js";
import type { ControlMode, ModeEvent } from "../core/control-mode.js";
import type { AlarmEvent } from "../core/alarms.js";

export type LoopMode = "starting" | "running" | "faulted";

export interface CycleResult {
  readonly cycle: number;
  readonly dueMs: number;
  readonly latenessMs: number;
  readonly inputMs: number;
  readonly logicMs: number;
  readonly outputMs: number;
  readonly durationMs: number;
  readonly wallMs: number;
  readonly image: readonly Sample[];
  /** Value commanded for every output this cycle (null for inputs). */
  readonly commanded: readonly (Value | null)[];
  /** The mode the outputs of this cycle were computed in (a fault judged at the end of this cycle shows from the next one). */
  readonly mode: LoopMode;
  /** The control mode (auto | manual, src/core/control-mode.ts) the outputs of this cycle were computed in. */
  readonly control: ControlMode;
  readonly overrun: boolean;
  /** Commands applied at the start of this cycle's logic. */
  readonly commands: readonly AppliedCommand[];
  readonly sequenceEvents: readonly SequenceEvent[];
  readonly interlockEvents: readonly InterlockEvent[];
  /** Control mode switches (set_mode) and a lost manual permit. */
  readonly modeEvents: readonly ModeEvent[];
  /** Alarm raise / clear / ack (src/core/alarms.ts). */
  readonly alarmEvents: readonly AlarmEvent[];
}
