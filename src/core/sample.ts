/**
 * Samples: a value with its quality and the time the source produced it.
 *
 * Every status maps 1:1 onto an OPC UA StatusCode, so the northbound side
 * never has to guess. "Unknown" (never read: waiting_for_initial_data) is not
 * the same as "unavailable" (read failed: no_communication, timeout, ...).
 */

export type Value = boolean | number | string;

export type Quality = "good" | "uncertain" | "bad";

export const STATUSES = [
  "good",
  "uncertain_last_usable",
  "bad_no_communication",
  "bad_timeout",
  "bad_device_failure",
  "bad_config_error",
  "bad_waiting_for_initial_data",
] as const;
export type Status = (typeof STATUSES)[number];

/** OPC UA StatusCode values (OPC 10000-4 / 10000-8) for each status. */
export const OPCUA_STATUS_CODE: Readonly<Record<Status, number>> = Object.freeze({
  good: 0x00000000,
  uncertain_last_usable: 0x40900000,
  bad_no_communication: 0x80310000,
  bad_timeout: 0x800a0000,
  bad_device_failure: 0x808b0000,
  bad_config_error: 0x80890000,
  bad_waiting_for_initial_data: 0x80320000,
});

export function qualityOf(status: Status): Quality {
  switch (status) {
    case "good":
      return "good";
    case "uncertain_last_usable":
      return "uncertain";
    case "bad_no_communication":
    case "bad_timeout":
    case "bad_device_failure":
    case "bad_config_error":
    case "bad_waiting_for_initial_data":
      return "bad";
  }
}

export interface Sample {
  /** Last value read from the source; null when it was never read. */
  readonly value: Value | null;
  readonly status: Status;
  readonly quality: Quality;
  /** Epoch ms at which the source produced `value` (0 when never read). Never refreshed without a re-read. */
  readonly sourceTs: number;
}

export function sample(value: Value | null, status: Status, sourceTs: number): Sample {
  return Object.freeze({ value, status, quality: qualityOf(status), sourceTs });
}

export function goodSample(value: Value, sourceTs: number): Sample {
  return sample(value, "good", sourceTs);
}

/** The sample of a point that has never been read. */
export const INITIAL_SAMPLE: Sample = sample(null, "bad_waiting_for_initial_data", 0);

/**
 * The same value and source time with a new status: used when a device fails
 * (the value stays what it was last read as, the source time stays frozen).
 * A point never read keeps waiting_for_initial_data: unknown is not unavailable.
 */
export function withStatus(prev: Sample, status: Status): Sample {
  if (prev.status === status) return prev;
  if (prev.status === "bad_waiting_for_initial_data" && prev.value === null) return prev;
  return sample(prev.value, status, prev.sourceTs);
}
