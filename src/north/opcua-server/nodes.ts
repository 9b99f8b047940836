/**
 * The nodes of the address space as the rest of the server holds them: the
 * scalar status variables (StatusVar), the one DataValue setter, and the
 * node groups per device, interlock, sequence, the diagnostics and the
 * control mode.
 */
import { DataType, DataValue, StatusCodes, Variant, type Namespace, type UAObject, type UAVariable } from "node-opcua";
import type { PointType } from "./data-types.js";

/**
 * A variable holding one scalar that cellio computes (status, diagnostics):
 * `set()` pushes a new Good value only when it differs.
 */
export class StatusVar {
  private last: unknown = undefined;
  private lastSourceMs = 0;

  constructor(
    readonly node: UAVariable,
    private readonly dataType: DataType,
  ) {}

  set(value: boolean | number | string | Date, sourceMs: number): void {
    const key = value instanceof Date ? value.getTime() : value;
    if (key === this.last) return;
    this.push(key, value, sourceMs);
  }

  /**
   * Like set(), but also pushes a new source timestamp of the same value (a
   * state left and entered again between two publish steps is a new state).
   */
  setDated(value: boolean | number | string, sourceMs: number): void {
    if (value === this.last && sourceMs === this.lastSourceMs) return;
    this.push(value, value, sourceMs);
  }

  private push(key: unknown, value: boolean | number | string | Date, sourceMs: number): void {
    this.last = key;
    this.lastSourceMs = sourceMs;
    setDataValue(
      this.node,
      new DataValue({
        value: new Variant({ dataType: this.dataType, value }),
        statusCode: StatusCodes.Good,
        sourceTimestamp: new Date(sourceMs),
        serverTimestamp: new Date(),
      }),
    );
  }
}

/**
 * The one setter of node-opcua that takes a whole DataValue. setValueFromSource
 * would stamp the serverTimestamp with the source time, and cannot leave the
 * source timestamp null for a value never read.
 */
interface DataValueSink {
  _internal_set_dataValue(dataValue: DataValue, indexRange?: null): void;
}

export function setDataValue(node: UAVariable, dv: DataValue): void {
  // node-opcua 2.182.2: UAVariableImpl._internal_set_dataValue is declared in its impl typings only.
  (node as unknown as DataValueSink)._internal_set_dataValue(dv, null);
}

export interface DeviceNodes {
  readonly object: UAObject;
  readonly status: UAObject;
  readonly connected: StatusVar;
  readonly state: StatusVar;
  readonly lastError: StatusVar;
  readonly latencyP99: StatusVar;
  readonly reads: StatusVar;
  readonly readFailures: StatusVar;
  readonly writes: StatusVar;
  readonly writeFailures: StatusVar;
  readonly deadlineMisses: StatusVar;
}

export interface InterlockNodes {
  readonly object: UAObject;
  readonly permitted: StatusVar;
  readonly tripped: StatusVar;
  readonly latched: StatusVar;
  readonly tripCount: StatusVar;
  readonly lastCause: StatusVar;
  readonly lastTripTime: StatusVar;
}

export interface SequenceNodes {
  readonly object: UAObject;
  readonly step: StatusVar;
  readonly stepElapsedMs: StatusVar;
  readonly lastFault: StatusVar;
  readonly faulted: StatusVar;
}

export interface DiagnosticsNodes {
  readonly object: UAObject;
  readonly periodMs: StatusVar;
  readonly latenessP50: StatusVar;
  readonly latenessP99: StatusVar;
  readonly latenessMax: StatusVar;
  readonly inputMisses: StatusVar;
  readonly outputMisses: StatusVar;
  readonly overruns: StatusVar;
  readonly skipped: StatusVar;
  readonly mode: StatusVar;
  readonly faulted: StatusVar;
  readonly uptimeS: StatusVar;
  readonly cycleCount: StatusVar;
  readonly lastCommand: StatusVar;
}

/** The control mode, directly under Cell (next to the SetMode method). */
export interface ControlNodes {
  /** "auto" | "manual"; source timestamp: the cycle that applied the switch. */
  readonly mode: StatusVar;
  /** Who switched into the mode ("" when it never switched); source timestamp: the switch's cycle. */
  readonly by: StatusVar;
  /** Wall time of the cycle that applied the switch (of the first cycle when it never switched). */
  readonly since: StatusVar;
  /** manual_mode configured and its permit true now. */
  readonly manualAllowed: StatusVar;
}

export interface CellNodes {
  readonly ns: Namespace;
  readonly cell: UAObject;
  /** By point index. */
  readonly points: readonly UAVariable[];
  /** The OPC UA type of each point, by point index. */
  readonly pointTypes: readonly PointType[];
  readonly devices: ReadonlyMap<string, DeviceNodes>;
  readonly interlocks: ReadonlyMap<string, InterlockNodes>;
  readonly sequences: ReadonlyMap<string, SequenceNodes>;
  readonly diagnostics: DiagnosticsNodes;
  readonly control: ControlNodes;
}
