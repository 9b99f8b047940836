/**
 * Semantic checks and compilation of a schema-valid config into the frozen
 * cell model: the point table, device list and compiled logic. Everything a
 * cycle needs is decided here, at load, never in cycle 4,000.
 */
import type { CellConfig, DeviceConfig } from "./schema.js";
import type { ConfigIssue, PathKey, SourceMap } from "./issues.js";
import { defaultSafe, valueFits, type PointDef, type WireType } from "../core/points.js";
import type { Value } from "../core/sample.js";
import { compileModbusPoints } from "../drivers/modbus/points.js";
import type { ModbusTcpDeviceConfig } from "../drivers/modbus/config.js";
import { checkRtuBuses } from "../drivers/modbus/rtu-config.js";
import { compileOpcuaPoints } from "../drivers/opcua/points.js";
import { compileExpression, type CompiledExpr, type ExprEnv } from "../core/expr/index.js";
import type { InterlockDef } from "../core/interlocks.js";
import type { LatchDef, SequenceDef } from "../core/sequences.js";
import { checkSingleDriver, compileInterlocks, compileLatches, compileSequences } from "./logic-schema.js";
import { compileManualMode } from "./mode-schema.js";
import type { ManualModeDef } from "../core/control-mode.js";
import { closest } from "../core/expr/check.js";
import { opcuaConfigIssues } from "../north/opcua-server/config.js";

export interface CycleModel {
  readonly periodMs: number;
  readonly inputBudgetMs: number;
  readonly outputBudgetMs: number;
  readonly warnPct: number;
  readonly faultAfter: number;
  /** SCHED_FIFO priority for the loop's thread (undefined: normal scheduling). */
  readonly realtimePriority: number | undefined;
}

export interface DeviceModel {
  readonly name: string;
  readonly config: DeviceConfig;
  /** Indices of this device's points in the point table. */
  readonly points: readonly number[];
  readonly staleAfterMs: number;
}

export interface LogicRule {
  readonly target: number;
  readonly expr: CompiledExpr;
}

export interface CellModel {
  readonly cellId: string;
  readonly cycle: CycleModel;
  readonly points: readonly PointDef[];
  readonly pointIndex: ReadonlyMap<string, number>;
  readonly devices: readonly DeviceModel[];
  readonly logic: readonly LogicRule[];
  readonly latches: readonly LatchDef[];
  readonly sequences: readonly SequenceDef[];
  readonly interlocks: readonly InterlockDef[];
  /** Manual mode (config manual_mode); undefined: not allowed. */
  readonly manualMode?: ManualModeDef | undefined;
}

/** What a driver's point compiler returns for one point (after profile expansion). */
export interface PointDraft {
  readonly name: string;
  readonly kind: PointDef["kind"];
  readonly direction: PointDef["direction"];
  readonly address: string;
  readonly config: PointConfigBase;
  /** Encoding on the device, when the protocol has one. */
  readonly wire?: WireType | undefined;
}

/** The protocol-independent fields of a point's config. */
export interface PointConfigBase {
  readonly safe?: Value | undefined;
  readonly unit?: string | undefined;
  readonly description?: string | undefined;
  readonly scale?: { gain: number; offset: number; clamp?: { min: number; max: number } | undefined } | undefined;
  readonly deadband?: number | undefined;
  readonly operator_writable?: boolean | undefined;
  readonly heartbeat?: "toggle" | "counter" | undefined;
}

export type CompileResult = { ok: true; model: CellModel } | { ok: false; issues: ConfigIssue[] };

function compileDevicePoints(name: string, dev: DeviceConfig, map: SourceMap, issues: ConfigIssue[]): PointDraft[] {
  switch (dev.protocol) {
    case "modbus-tcp":
      return compileModbusPoints(name, dev, map, issues);
    case "modbus-rtu":
      // compileModbusPoints reads only what both Modbus device kinds share (points, profile, address_base).
      return compileModbusPoints(name, dev as unknown as ModbusTcpDeviceConfig, map, issues);
    case "opcua":
      return compileOpcuaPoints(name, dev, map, issues);
  }
}

export function compileCell(config: CellConfig, map: SourceMap): CompileResult {
  const issues: ConfigIssue[] = [];
  const period = config.cycle.period_ms;
  if (config.cycle.input_budget_ms + config.cycle.output_budget_ms > period) {
    issues.push(
      map.issue(
        ["cycle", "input_budget_ms"],
        `input_budget_ms + output_budget_ms (${config.cycle.input_budget_ms} + ${config.cycle.output_budget_ms}) is larger than period_ms (${period})`,
      ),
    );
  }

  const points: PointDef[] = [];
  const pointIndex = new Map<string, number>();
  const devices: DeviceModel[] = [];
  for (const [devName, dev] of Object.entries(config.devices)) {
    const drafts = compileDevicePoints(devName, dev, map, issues);
    const indices: number[] = [];
    for (const d of drafts) {
      const pc = d.config;
      const path: PathKey[] = ["devices", devName, "points", d.name];
      let safe = null;
      if (d.direction !== "input") {
        safe = pc.safe ?? defaultSafe(d.kind);
        if (!valueFits(d.kind, safe)) {
          issues.push(map.issue([...path, "safe"], `safe value ${JSON.stringify(pc.safe)} does not fit the point's type ${d.kind}`));
        }
      } else if (pc.safe !== undefined) {
        issues.push(map.issue([...path, "safe"], "only outputs and memory points have a safe value"));
      }
      if (pc.heartbeat !== undefined) {
        const want = pc.heartbeat === "toggle" ? "bool" : "int";
        if (d.direction !== "output") issues.push(map.issue([...path, "heartbeat"], "only outputs can be heartbeats"));
        else if (d.kind !== want) issues.push(map.issue([...path, "heartbeat"], `a ${pc.heartbeat} heartbeat needs a ${want} point, this one is ${d.kind}`));
      }
      if (pc.scale?.gain === 0) issues.push(map.issue([...path, "scale", "gain"], "gain must not be 0"));
      if (pc.scale?.clamp && pc.scale.clamp.min > pc.scale.clamp.max) {
        issues.push(map.issue([...path, "scale", "clamp"], "clamp.min is larger than clamp.max"));
      }
      const index = points.length;
      const id = `${devName}.${d.name}`;
      points.push(
        Object.freeze({
          index,
          id,
          device: devName,
          name: d.name,
          kind: d.kind,
          direction: d.direction,
          safe,
          unit: pc.unit,
          description: pc.description,
          scale: pc.scale,
          deadband: pc.deadband ?? 0,
          address: d.address,
          operatorWritable: pc.operator_writable === true,
          heartbeat: pc.heartbeat,
          wireType: d.wire,
        }),
      );
      pointIndex.set(id, index);
      indices.push(index);
    }
    const staleAfterMs = dev.stale_after_ms ?? Math.max(3 * dev.poll_every * period, 3 * dev.timeout_ms);
    devices.push(Object.freeze({ name: devName, config: dev, points: Object.freeze(indices), staleAfterMs }));
  }
  checkRtuBuses(config.devices, map, issues);

  const env: ExprEnv = {
    resolve(name) {
      const i = pointIndex.get(name);
      const p = i === undefined ? undefined : points[i];
      return p ? { index: p.index, type: p.kind } : undefined;
    },
    names: () => pointIndex.keys(),
  };

  const logic: LogicRule[] = [];
  for (const [target, source] of Object.entries(config.logic)) {
    const i = pointIndex.get(target);
    const p = i === undefined ? undefined : points[i];
    if (!p) {
      const hint = closest(target, pointIndex.keys());
      const message = `unknown point "${target}"${hint === undefined ? "" : ` (did you mean "${hint}"?)`}`;
      issues.push({ path: `logic.${target}`, ...map.locateKey(["logic"], target), message });
      continue;
    }
    if (p.direction === "input") {
      issues.push({
        path: `logic.${target}`,
        ...map.locateKey(["logic"], target),
        message: `"${target}" is an input; logic can only drive outputs and memory points`,
      });
      continue;
    }
    if (p.heartbeat !== undefined) {
      issues.push({ path: `logic.${target}`, ...map.locateKey(["logic"], target), message: `"${target}" is a heartbeat; cellio drives it` });
      continue;
    }
    const res = compileExpression(source, env, { expect: p.kind, allowStateful: true });
    if (!res.ok) {
      for (const e of res.errors) {
        issues.push({ path: `logic.${target}`, ...map.locateInString(["logic", target], e.offset), message: e.message });
      }
      continue;
    }
    logic.push(Object.freeze({ target: p.index, expr: res.expr }));
  }

  const latches = compileLatches(config.latches, env, points, map, issues);
  const sequences = compileSequences(config.sequences, env, points, map, issues);
  const interlocks = compileInterlocks(config.interlocks, env, points, map, issues);
  const manualMode = compileManualMode(config.manual_mode, env, map, issues);
  checkSingleDriver(Object.keys(config.logic), config.sequences, config.latches, map, issues);
  if (config.opcua !== undefined) issues.push(...opcuaConfigIssues(config.opcua, points, Object.keys(config.devices), map));

  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    model: Object.freeze({
      cellId: config.cell.id,
      cycle: Object.freeze({
        periodMs: period,
        inputBudgetMs: config.cycle.input_budget_ms,
        outputBudgetMs: config.cycle.output_budget_ms,
        warnPct: config.cycle.overrun.warn_pct,
        faultAfter: config.cycle.overrun.fault_after,
        realtimePriority: config.cycle.realtime_priority,
      }),
      points: Object.freeze(points),
      pointIndex: frozenMap(pointIndex),
      devices: Object.freeze(devices),
      logic: Object.freeze(logic),
      latches: Object.freeze(latches),
      sequences: Object.freeze(sequences),
      interlocks: Object.freeze(interlocks),
      manualMode,
    }),
  };
}

/** A Map that refuses changes at run time, not only in the type system. */
function frozenMap<K, V>(m: Map<K, V>): ReadonlyMap<K, V> {
  const refuse = (): never => {
    throw new TypeError("the cell model is frozen");
  };
  return Object.freeze(Object.assign(m, { set: refuse, delete: refuse, clear: refuse }));
}
