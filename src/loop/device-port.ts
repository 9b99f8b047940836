/**
 * What the control loop needs from a southbound device driver. Reads and
 * writes are cold Observables that emit one outcome and complete, so the
 * loop can run them concurrently with deadlines in (virtual) RxJS time.
 */
import type { Observable } from "rxjs";
import type { Status, Value } from "../core/sample.js";

export type FailureStatus = Exclude<Status, "good" | "uncertain_last_usable" | "bad_waiting_for_initial_data">;

export type ReadOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: FailureStatus; readonly error: string };

export interface OutputChange {
  readonly index: number;
  readonly value: Value;
}

export type WriteOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: FailureStatus; readonly error: string; readonly failed: readonly number[] };

/** Where a driver puts what it read. */
export interface SampleSink {
  /** A fresh value read from the device now (wall-clock epoch ms). */
  put(index: number, value: Value, sourceTs: number): void;
  /**
   * A per-point status the device reported (an OPC UA server's StatusCode):
   * the points keep their last value and source time, with this status.
   * Optional: the InputTable has it; sinks that only collect values need not.
   */
  mark?(indices: readonly number[], status: Status): void;
}

export interface DevicePort {
  readonly name: string;
  /** Read every input of the device into the sink, then emit one outcome. */
  read(sink: SampleSink): Observable<ReadOutcome>;
  /** Write the given outputs, then emit one outcome. */
  write(changes: readonly OutputChange[]): Observable<WriteOutcome>;
}

/**
 * A port that can also read without an Observable per read (the Modbus
 * driver: 100 reads a second per device make the Observable, its subscriber
 * and their closures a measurable share of the daemon's CPU). `done` is
 * called exactly once, possibly before readDirect returns.
 */
export interface DirectReadPort {
  readDirect(sink: SampleSink, done: (o: ReadOutcome) => void): void;
}

export interface DeviceDriver extends DevicePort {
  start(): Promise<void>;
  stop(): Promise<void>;
}
