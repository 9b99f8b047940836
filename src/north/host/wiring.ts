/**
 * The NorthHost of a CellApp (structural, so this file does not import
 * app.ts): what the worker is told at start, what the bridge reads each cycle,
 * and the one command path.
 */
import path from "node:path";
import type { Observable } from "rxjs";
import type { Caller, Command, CommandResult } from "../../core/commands.js";
import type { InterlockState } from "../../core/interlocks.js";
import type { PointDef } from "../../core/points.js";
import type { SequenceState } from "../../core/sequences.js";
import type { Clock } from "../../infra/clock.js";
import type { Logger } from "../../infra/logger.js";
import type { MqttConfig } from "../mqtt/config.js";
import type { OpcuaConfig } from "../opcua-server/config.js";
import type { BridgeCycle, BridgeSource } from "./bridge.js";
import { NorthHost, type NorthMode } from "./host.js";

export interface NorthOptions {
  /** "worker" (default, the daemon) or "in-thread" (tests running TypeScript sources). */
  readonly mode?: NorthMode;
  /** The compiled worker entry (default: dist/src/north/host/worker.js next to host.js). */
  readonly workerEntry?: string | URL;
  /** Least time between two deltas to the worker (default: paceFor(), half the fastest publish interval). */
  readonly paceMs?: number;
}

/** The parts of a CellApp the host reads. */
export interface NorthAppLike {
  /** The cell's state folder (the OPC UA server's default PKI lives in it). */
  readonly stateDir: string;
  readonly loaded: {
    readonly file: string;
    readonly config: { readonly mqtt?: MqttConfig | undefined; readonly opcua?: OpcuaConfig | undefined };
    readonly model: {
      readonly cellId: string;
      readonly cycle: { readonly periodMs: number };
      readonly points: readonly PointDef[];
      readonly devices: readonly { readonly name: string }[];
      readonly interlocks: readonly { readonly id: string; readonly description?: string | undefined }[];
      readonly sequences: readonly { readonly id: string; readonly description?: string | undefined }[];
    };
  };
  readonly loop: {
    readonly cycles$: Observable<BridgeCycle>;
    readonly stats: { summary(): ReturnType<BridgeSource["loop"]> };
    readonly logic: {
      readonly interlocks: { states(): readonly InterlockState[] };
      readonly sequences: { states(): readonly SequenceState[] };
      readonly alarms?: { states(): ReturnType<NonNullable<BridgeSource["alarms"]>> } | undefined;
      /** The control mode switch (core/control-mode.ts ModeSwitch). */
      readonly mode?: { readonly manualPermitted: boolean } | undefined;
      readonly commands: { submit(command: Command, from: Caller): CommandResult };
    };
  };
  readonly runners: ReturnType<BridgeSource["devices"]>;
}

/**
 * Default pace of the deltas: half the fastest publish interval of MQTT and the
 * OPC UA server (they only ever publish the latest image), at least one cycle
 * and at most 50 ms. Fewer deltas, less main-thread time; events are never
 * lost by it (they accumulate), values reach the publishers at most one pace later.
 */
export function paceFor(periodMs: number, config: NorthAppLike["loaded"]["config"]): number {
  const intervals = [config.mqtt?.publish_interval_ms, config.opcua?.publish_interval_ms].filter((x): x is number => typeof x === "number");
  const half = intervals.length > 0 ? Math.min(...intervals) / 2 : periodMs;
  return Math.max(periodMs, Math.min(50, half));
}

/** A NorthHost when the config has `mqtt:` or `opcua:`, else undefined. */
export function northHostOf(app: NorthAppLike, log: Logger, clock: Clock, opts: NorthOptions = {}): NorthHost | undefined {
  const { config, model, file } = app.loaded;
  if (!config.mqtt && !config.opcua) return undefined;
  const logic = app.loop.logic;
  return new NorthHost({
    init: {
      cellId: model.cellId,
      periodMs: model.cycle.periodMs,
      points: model.points,
      devices: model.devices.map((d) => d.name),
      interlocks: model.interlocks.map((i) => ({ id: i.id, description: i.description })),
      sequences: model.sequences.map((s) => ({ id: s.id, description: s.description })),
      mqtt: config.mqtt,
      opcua: config.opcua,
      config,
      baseDir: path.dirname(path.resolve(file)),
      stateDir: app.stateDir,
    },
    cycles$: app.loop.cycles$,
    source: {
      interlocks: () => logic.interlocks.states(),
      sequences: () => logic.sequences.states(),
      ...(logic.alarms === undefined ? {} : { alarms: () => logic.alarms!.states() }),
      manualPermitted: () => logic.mode?.manualPermitted ?? false,
      devices: () => app.runners,
      loop: () => app.loop.stats.summary(),
    },
    commands: logic.commands,
    log,
    clock,
    paceMs: paceFor(model.cycle.periodMs, config),
    ...opts,
  });
}
