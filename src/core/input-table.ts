/**
 * The live input table: the latest sample of every point, updated by drivers
 * whenever an answer arrives (even after the input deadline). Each cycle takes
 * an immutable snapshot of it (the process image). Samples are immutable and
 * shared between snapshots, so a snapshot costs one array of references.
 */
import { INITIAL_SAMPLE, goodSample, withStatus, type Sample, type Status, type Value } from "./sample.js";

export class InputTable {
  private readonly samples: Sample[];

  constructor(size: number) {
    this.samples = new Array<Sample>(size).fill(INITIAL_SAMPLE);
  }

  get size(): number {
    return this.samples.length;
  }

  get(index: number): Sample {
    return this.samples[index] ?? INITIAL_SAMPLE;
  }

  /** A fresh good value. Reuses the previous sample object when nothing changed. */
  put(index: number, value: Value, sourceTs: number): void {
    const prev = this.samples[index];
    if (prev && prev.status === "good" && prev.value === value && prev.sourceTs === sourceTs) return;
    this.samples[index] = goodSample(value, sourceTs);
  }

  set(index: number, s: Sample): void {
    this.samples[index] = s;
  }

  /** Same values and source times, new status (device failed or went stale). */
  mark(indices: readonly number[], status: Status): void {
    for (const i of indices) this.samples[i] = withStatus(this.get(i), status);
  }

  snapshot(): Sample[] {
    return this.samples.slice();
  }
}
