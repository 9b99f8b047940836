/**
 * OPC UA StatusCode → cellio status (pure). cellio's statuses map 1:1 onto the
 * StatusCodes named in src/core/sample.ts; every other code lands on the
 * nearest of them by its severity and meaning (table in ./README.md).
 */
import type { Status } from "../../core/sample.js";

/** StatusCode values (top 16 bits; the low bits are info flags). OPC 10000-4 / 10000-6 StatusCode table. */
export const SC = {
  BadCommunicationError: 0x80050000,
  BadTimeout: 0x800a0000,
  BadServerNotConnected: 0x800d0000,
  BadUserAccessDenied: 0x801f0000,
  BadNoCommunication: 0x80310000,
  BadWaitingForInitialData: 0x80320000,
  BadNodeIdInvalid: 0x80330000,
  BadNodeIdUnknown: 0x80340000,
  BadAttributeIdInvalid: 0x80350000,
  BadNotReadable: 0x803a0000,
  BadNotWritable: 0x803b0000,
  BadOutOfRange: 0x803c0000,
  BadTypeMismatch: 0x80740000,
  BadConfigurationError: 0x80890000,
  BadNotConnected: 0x808a0000,
  BadDeviceFailure: 0x808b0000,
  BadSensorFailure: 0x808c0000,
  BadOutOfService: 0x808d0000,
  BadNotFound: 0x803e0000,
} as const;

export type Severity = "good" | "uncertain" | "bad";

export function severityOf(code: number): Severity {
  const s = (code >>> 30) & 0x3;
  return s === 0 ? "good" : s === 1 ? "uncertain" : "bad";
}

const BAD: ReadonlyMap<number, Status> = new Map<number, Status>([
  [SC.BadTimeout, "bad_timeout"],
  [SC.BadNoCommunication, "bad_no_communication"],
  [SC.BadCommunicationError, "bad_no_communication"],
  [SC.BadServerNotConnected, "bad_no_communication"],
  [SC.BadNotConnected, "bad_no_communication"],
  [SC.BadWaitingForInitialData, "bad_waiting_for_initial_data"],
  [SC.BadConfigurationError, "bad_config_error"],
  [SC.BadNodeIdInvalid, "bad_config_error"],
  [SC.BadNodeIdUnknown, "bad_config_error"],
  [SC.BadAttributeIdInvalid, "bad_config_error"],
  [SC.BadNotReadable, "bad_config_error"],
  [SC.BadNotWritable, "bad_config_error"],
  [SC.BadTypeMismatch, "bad_config_error"],
  [SC.BadUserAccessDenied, "bad_config_error"],
  [SC.BadNotFound, "bad_config_error"],
]);

/**
 * The cellio status of a value the server sent with `code`: Good* → good,
 * Uncertain* → uncertain_last_usable, Bad_* by meaning, any other Bad →
 * bad_device_failure (the source failed).
 */
export function statusOfCode(code: number): Status {
  switch (severityOf(code)) {
    case "good":
      return "good";
    case "uncertain":
      return "uncertain_last_usable";
    case "bad":
      return BAD.get((code & 0xffff0000) >>> 0) ?? "bad_device_failure";
  }
}
