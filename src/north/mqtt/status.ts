/**
 * The payloads of `<prefix>/status` (birth, offline) and
 * `<prefix>/diagnostics`, built from what the service knows. Pure.
 */
import { CONTRACT_VERSION, iso, type BirthPayload, type DiagnosticsPayload, type OfflinePayload } from "./contract.js";
import type { CellView, CycleView } from "./ports.js";

export function birthPayload(version: string, configHash: string, startedWall: number): BirthPayload {
  return { state: "online", version, config_hash: configHash, started: iso(startedWall) ?? "", contract: CONTRACT_VERSION };
}

/** `shutdown` (published by cellio, with the time) or `connection lost` (the Will, registered at connect). */
export function offlinePayload(reason: OfflinePayload["reason"], startedWall: number, nowWall: number): OfflinePayload {
  const base = { state: "offline" as const, reason, started: iso(startedWall) ?? "" };
  return reason === "shutdown" ? { ...base, ts: iso(nowWall) } : base;
}

export interface DiagnosticsInput {
  readonly view: CellView;
  readonly latest: CycleView | undefined;
  readonly nowWall: number;
  readonly uptimeMs: number;
  readonly mqtt: DiagnosticsPayload["mqtt"];
}

export function diagnosticsPayload(i: DiagnosticsInput): DiagnosticsPayload {
  const c = i.latest;
  const loop = i.view.loop();
  const devices: Record<string, { state: string; error: string }> = {};
  for (const d of i.view.devices()) devices[d.name] = { state: d.state, error: d.lastError };
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    ts: iso(i.nowWall),
    uptime_s: Math.round(i.uptimeMs / 1000),
    mode: c?.mode ?? "starting",
    control_mode: c?.controlState?.mode ?? null,
    cycle: c?.cycle ?? 0,
    period_ms: i.view.periodMs,
    loop: loop
      ? {
          cycles: loop.cycles,
          skipped: loop.skipped,
          overruns: loop.overruns,
          input_misses: loop.inputMisses,
          lateness_p99_ms: r(loop.latenessP99Ms),
          lateness_max_ms: r(loop.latenessMaxMs),
          cycle_p99_ms: r(loop.cycleP99Ms),
        }
      : null,
    devices,
    mqtt: i.mqtt,
  };
}
