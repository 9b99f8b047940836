/**
 * What one OPC UA DataValue means for a cellio point (pure): status from the
 * StatusCode, value from the Variant (with the point's scaling), source
 * timestamp from the server (server timestamp, then arrival time, when the
 * server sent none). And how such a value goes into the process image.
 */
import { toEngineering } from "../../core/scaling.js";
import type { Status, Value } from "../../core/sample.js";
import type { Scaling } from "../../core/points.js";
import type { SampleSink } from "../../loop/device-port.js";
import { fromVariant } from "./codec.js";
import { statusOfCode } from "./status.js";

export interface PointValue {
  readonly status: Status;
  /** Undefined for a Bad status (the value is to be ignored, OPC 10000-4 §7.11). */
  readonly value: Value | undefined;
  readonly sourceTs: number;
  readonly error?: string;
}

export interface RawDataValue {
  readonly code: number;
  /** Built-in type of the variant (0: Null). */
  readonly variantType: number;
  readonly value: unknown;
  readonly sourceTs: Date | null | undefined;
  readonly serverTs: Date | null | undefined;
}

export function pointValue(raw: RawDataValue, scale: Scaling | undefined, arrivedMs: number): PointValue {
  const sourceTs = raw.sourceTs?.getTime() ?? raw.serverTs?.getTime() ?? arrivedMs;
  const status = statusOfCode(raw.code);
  if (status !== "good" && status !== "uncertain_last_usable") return { status, value: undefined, sourceTs };
  const conv = fromVariant(raw.variantType, raw.value);
  if (!conv.ok) return { status: "bad_device_failure", value: undefined, sourceTs, error: conv.error };
  const v = conv.value;
  return { status, value: scale && typeof v === "number" ? toEngineering(v, scale) : v, sourceTs };
}

/**
 * Put `pv` for point `index` into the sink. A point without a value since the
 * session began (`pv` undefined) is Bad_NoCommunication until fresh data
 * comes (a never-read point stays waiting for initial data).
 */
export function applyValue(sink: SampleSink, index: number, pv: PointValue | undefined): void {
  if (pv === undefined) {
    sink.mark?.([index], "bad_no_communication");
    return;
  }
  if (pv.value !== undefined) sink.put(index, pv.value, pv.sourceTs);
  if (pv.status !== "good") sink.mark?.([index], pv.status);
}
