/**
 * The messages between the control loop's thread and the north worker, and
 * the compact encoding of changed samples.
 *
 * Main → worker: NorthInit once (as workerData), then CycleDelta messages
 * (only what changed since the previous delta) and one StopRequest.
 * Worker → main: CommandRequest (answered through the shared buffer, see
 * sync-call.ts), StatusMessage, LogMessage, StoppedMessage.
 *
 * Changed samples travel as one ArrayBuffer, transferred (not copied):
 * values and source times as float64, point indices as int32, status and
 * value type as one byte each; string values in a side array.
 */
import type { Caller, Command, AppliedCommand } from "../../core/commands.js";
import type { ModeEvent } from "../../core/control-mode.js";
import type { InterlockEvent, InterlockState } from "../../core/interlocks.js";
import type { PointDef } from "../../core/points.js";
import { STATUSES, sample, type Sample, type Status, type Value } from "../../core/sample.js";
import type { SequenceEvent, SequenceState } from "../../core/sequences.js";
import type { MqttConfig } from "../mqtt/config.js";
import type { OpcuaConfig } from "../opcua-server/config.js";
import type { ControlState } from "./control.js";

export type LoopModeName = "starting" | "running" | "faulted";

/** Everything the worker needs to build MQTT and the OPC UA server: plain data (structured clone). */
export interface NorthInit {
  readonly cellId: string;
  readonly periodMs: number;
  readonly points: readonly PointDef[];
  readonly devices: readonly string[];
  readonly interlocks: readonly { readonly id: string; readonly description?: string | undefined }[];
  readonly sequences: readonly { readonly id: string; readonly description?: string | undefined }[];
  readonly mqtt?: MqttConfig | undefined;
  readonly opcua?: OpcuaConfig | undefined;
  /** The whole loaded config, for the MQTT birth's config hash. */
  readonly config: unknown;
  /** Directory of the config file: relative TLS files and OPC UA server folders are resolved against it. */
  readonly baseDir: string;
  /** The cell's state folder: the OPC UA server's certificates default to opcua-server/pki in it. */
  readonly stateDir: string;
  /** The main logger's level: the worker does not even format what would be dropped. */
  readonly logLevel: string;
  /** The cell keeps alarm states (core/alarms.ts): deltas carry them, the OPC UA conditions follow them. */
  readonly alarms: boolean;
  /** Shared with the main thread: command replies and the last applied delta (sync-call.ts). */
  readonly shared: SharedArrayBuffer;
  /** How long a command waits for the loop's thread to answer. */
  readonly commandTimeoutMs: number;
}

export type SequenceSnap = Pick<SequenceState, "id" | "step" | "stepElapsedMs" | "lastFault" | "faulted">;

/** One alarm of the core (core/alarms.ts AlarmState fits). */
export interface AlarmSnap {
  readonly id: string;
  readonly active: boolean;
  readonly acked: boolean;
  readonly message: string;
}

export interface HistogramSnap {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface DeviceSnap {
  readonly name: string;
  readonly state: "waiting" | "good" | "stale" | "bad";
  readonly lastError: string;
  readonly counters: {
    readonly reads: number;
    readonly readFailures: number;
    readonly writes: number;
    readonly writeFailures: number;
    readonly deadlineMisses: number;
    readonly readLatency: HistogramSnap;
  };
}

export interface LoopSnap {
  readonly cycles: number;
  readonly skipped: number;
  readonly overruns: number;
  readonly inputMisses: number;
  readonly outputMisses: number;
  readonly lateness: HistogramSnap;
  readonly duration: { readonly p99: number };
}

/** The changed samples of a delta. */
export interface EncodedSamples {
  readonly n: number;
  /** 22 bytes per sample: f64 value, f64 sourceTs, i32 index, u8 status, u8 type. */
  readonly buf: ArrayBuffer;
  /** String values, in order of the samples of type STRING. */
  readonly strings: readonly string[];
}

export interface CycleDelta {
  readonly t: "cycle";
  /** Delta sequence number (1, 2, ...): the worker stores the last applied one in the shared buffer. */
  readonly seq: number;
  readonly cycle: number;
  readonly wallMs: number;
  readonly mode: LoopModeName;
  readonly latenessMs: number;
  readonly durationMs: number;
  readonly samples?: EncodedSamples;
  /** Interlock and sequence states that changed (whole states). */
  readonly interlocks?: readonly InterlockState[];
  readonly sequences?: readonly SequenceSnap[];
  /** Alarm states that changed. */
  readonly alarms?: readonly AlarmSnap[];
  /** The control mode (auto | manual, since, by, manual permitted), when it changed; always in the first delta to a worker. */
  readonly control?: ControlState;
  /** Every event since the previous delta (bounded: `droppedEvents` counts what did not fit). */
  readonly interlockEvents?: readonly InterlockEvent[];
  readonly sequenceEvents?: readonly SequenceEvent[];
  /** Control mode switches and lost manual permits. */
  readonly modeEvents?: readonly ModeEvent[];
  readonly commands?: readonly AppliedCommand[];
  readonly droppedEvents?: number;
  /** All devices, when a state changed or at the stats pace. */
  readonly devices?: readonly DeviceSnap[];
  readonly loop?: LoopSnap;
}

export interface StopRequest {
  readonly t: "stop";
  readonly timeoutMs: number;
}

export type ToWorker = CycleDelta | StopRequest;

export interface CommandRequest {
  readonly t: "cmd";
  readonly id: number;
  readonly command: Command;
  readonly caller: Caller;
}

export interface MqttStatus {
  readonly url: string | undefined;
  readonly connected: boolean;
  readonly reconnects: number;
  readonly published: number;
  readonly publishErrors: number;
  readonly queued: number;
  readonly commandsAccepted: number;
  readonly commandsRejected: number;
}

export interface OpcuaStatus {
  /** Set once the server listens. */
  readonly started: { readonly port: number; readonly endpointUrl: string; readonly namespaceUri: string; readonly pkiDir: string } | undefined;
  readonly sessions: number;
}

export interface NorthStatus {
  readonly phase: "starting" | "ready" | "stopping" | "stopped";
  /** Present when the config has an `mqtt:` block and MQTT started. */
  readonly mqtt?: MqttStatus | undefined;
  /** Present when the config has an `opcua:` block and the server was built. */
  readonly opcua?: OpcuaStatus | undefined;
  /** Deltas the worker applied. */
  readonly applied: number;
}

export interface StatusMessage {
  readonly t: "status";
  readonly status: NorthStatus;
}

export interface LogMessage {
  readonly t: "log";
  /** One pino JSON line. */
  readonly line: string;
}

export interface StoppedMessage {
  readonly t: "stopped";
}

export type FromWorker = CommandRequest | StatusMessage | LogMessage | StoppedMessage;

const T_NULL = 0;
const T_FALSE = 1;
const T_TRUE = 2;
const T_NUMBER = 3;
const T_STRING = 4;
const STATUS_INDEX = new Map<Status, number>(STATUSES.map((s, i) => [s, i]));

/** Encode image[idx[k]] for k < n (the changed points). */
export function encodeSamples(image: readonly Sample[], idx: Int32Array, n: number): EncodedSamples {
  const buf = new ArrayBuffer(22 * n);
  const values = new Float64Array(buf, 0, n);
  const ts = new Float64Array(buf, 8 * n, n);
  const index = new Int32Array(buf, 16 * n, n);
  const status = new Uint8Array(buf, 20 * n, n);
  const type = new Uint8Array(buf, 21 * n, n);
  const strings: string[] = [];
  for (let k = 0; k < n; k++) {
    const i = idx[k]!;
    const s = image[i]!;
    index[k] = i;
    ts[k] = s.sourceTs;
    status[k] = STATUS_INDEX.get(s.status) ?? 0;
    const v = s.value;
    if (v === null) type[k] = T_NULL;
    else if (typeof v === "boolean") type[k] = v ? T_TRUE : T_FALSE;
    else if (typeof v === "number") {
      type[k] = T_NUMBER;
      values[k] = v;
    } else {
      type[k] = T_STRING;
      strings.push(v);
    }
  }
  return { n, buf, strings };
}

/** Apply encoded samples to `image` (new frozen Sample objects for the changed points only). */
export function applySamples(e: EncodedSamples, image: Sample[]): void {
  const n = e.n;
  const values = new Float64Array(e.buf, 0, n);
  const ts = new Float64Array(e.buf, 8 * n, n);
  const index = new Int32Array(e.buf, 16 * n, n);
  const status = new Uint8Array(e.buf, 20 * n, n);
  const type = new Uint8Array(e.buf, 21 * n, n);
  let str = 0;
  for (let k = 0; k < n; k++) {
    let v: Value | null;
    switch (type[k]) {
      case T_FALSE:
        v = false;
        break;
      case T_TRUE:
        v = true;
        break;
      case T_NUMBER:
        v = values[k]!;
        break;
      case T_STRING:
        v = e.strings[str++] ?? "";
        break;
      default:
        v = null;
    }
    const i = index[k]!;
    if (i >= 0 && i < image.length) image[i] = sample(v, STATUSES[status[k]!] ?? "bad_config_error", ts[k]!);
  }
}
