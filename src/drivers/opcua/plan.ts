/**
 * The device's plan, compiled at construction (pure, no node-opcua): every
 * point with its parsed address and monitoring settings, the monitored-item
 * groups (one per distinct settings), and the connection settings.
 */
import path from "node:path";
import { CellioError } from "../../infra/errors.js";
import { defaultStateDir } from "../../persist/config.js";
import type { PointDef, PointKind } from "../../core/points.js";
import { decimalTimes } from "../../core/duration.js";
import { parseAddress, type OpcuaAddress } from "./address.js";
import type { OpcuaDeviceConfig } from "./config.js";

export interface Monitoring {
  readonly samplingIntervalMs: number;
  readonly queueSize: number;
  readonly deadband: { readonly type: "absolute" | "percent"; readonly value: number } | undefined;
}

export interface PlannedPoint {
  readonly index: number;
  readonly id: string;
  readonly kind: PointKind;
  readonly direction: "input" | "output";
  readonly address: OpcuaAddress;
  readonly scale: PointDef["scale"];
  readonly monitoring: Monitoring;
}

export interface MonitorGroup {
  readonly monitoring: Monitoring;
  /** Positions in `OpcuaPlan.points`. */
  readonly members: readonly number[];
}

export interface OpcuaPlan {
  readonly points: readonly PlannedPoint[];
  /** Positions of the input points (read and monitored), in `points` order. */
  readonly inputs: readonly number[];
  readonly groups: readonly MonitorGroup[];
  readonly pkiDir: string;
  readonly policy: string;
  /** Subscription mode: no publish response for this long is a dead link. */
  readonly livenessMs: number;
}

/**
 * The subscription's keep-alive period: publishing_interval_ms × keepalive_count
 * as the decimal product (8.2 × 15 is 123 ms; in binary floating point
 * 122.99999999999999, which let a liveness_ms of 123 through).
 */
export function keepAlivePeriodMs(sub: { readonly publishing_interval_ms: number; readonly keepalive_count: number }): number {
  return decimalTimes(String(sub.publishing_interval_ms), sub.keepalive_count);
}

/**
 * Default PKI folder: `pki/` in the cell's state folder — the one the state
 * file uses (`stateDir`: cellio run's --state-dir, the config's state.dir,
 * $STATE_DIRECTORY, else `state/` next to the config file: persist/config.ts).
 */
export function defaultPkiDir(baseDir: string, env: NodeJS.ProcessEnv = process.env, stateDir?: string): string {
  return path.join(stateDir ?? defaultStateDir(baseDir, env), "pki");
}

export function planDevice(
  name: string,
  cfg: OpcuaDeviceConfig,
  points: readonly PointDef[],
  baseDir: string,
  env?: NodeJS.ProcessEnv,
  stateDir?: string,
): OpcuaPlan {
  const sub = cfg.subscription;
  const planned: PlannedPoint[] = [];
  for (const def of points) {
    if (def.direction === "memory") throw new CellioError("CELLIO_ERR_CONFIG", `${def.id}: memory points live in cellio, not on a device`);
    const parsed = parseAddress(def.address);
    if (!parsed.ok) throw new CellioError("CELLIO_ERR_CONFIG", `${def.id}: ${parsed.error}`);
    const pc = cfg.points[def.name];
    const deadband = pc?.server_deadband ?? (def.kind === "int" || def.kind === "float" ? sub.server_deadband : undefined);
    planned.push({
      index: def.index,
      id: def.id,
      kind: def.kind,
      direction: def.direction,
      address: parsed.address,
      scale: def.scale,
      monitoring: {
        samplingIntervalMs: pc?.sampling_interval_ms ?? sub.sampling_interval_ms ?? 0,
        queueSize: pc?.queue_size ?? sub.queue_size ?? 1,
        deadband,
      },
    });
  }
  const inputs = planned.flatMap((p, i) => (p.direction === "input" ? [i] : []));
  const byKey = new Map<string, { monitoring: Monitoring; members: number[] }>();
  for (const i of inputs) {
    const m = planned[i]!.monitoring;
    const key = JSON.stringify(m);
    const g = byKey.get(key) ?? { monitoring: m, members: [] };
    g.members.push(i);
    byKey.set(key, g);
  }
  const sec = cfg.security;
  const pkiDir = sec.pki_dir === undefined ? defaultPkiDir(baseDir, env, stateDir) : path.resolve(baseDir, sec.pki_dir);
  const keepAliveMs = keepAlivePeriodMs(sub);
  if (cfg.mode === "subscription" && cfg.liveness_ms !== undefined && cfg.liveness_ms <= keepAliveMs) {
    throw new CellioError("CELLIO_ERR_CONFIG", `${name}: liveness_ms (${cfg.liveness_ms}) must be longer than the keep-alive period (${keepAliveMs} ms)`);
  }
  return {
    points: planned,
    inputs,
    groups: [...byKey.values()],
    pkiDir,
    policy: sec.policy ?? (sec.mode === "None" ? "None" : "Basic256Sha256"),
    livenessMs: cfg.liveness_ms ?? 3 * keepAliveMs + cfg.timeout_ms,
  };
}
