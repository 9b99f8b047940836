/**
 * The probes, as pure functions of the cell's state.
 *
 * /healthz: the process is alive and the control loop advances (a cycle
 * completed recently). A stalled loop with a live event loop answers 503 here,
 * as it stops the systemd watchdog pings.
 *
 * /readyz: the cell does its job: cycles run, no overrun fault, and every
 * device marked `required` (the default) is good.
 */
import type { LoopMode } from "../../loop/control-loop.js";
import type { DeviceState } from "../../loop/device-runner.js";

export interface ProbeInput {
  /** Monotonic ms since the last completed cycle; undefined before the first. */
  readonly lastCycleAgeMs: number | undefined;
  readonly cycles: number;
  readonly periodMs: number;
  readonly mode: LoopMode;
  readonly devices: readonly { readonly name: string; readonly state: DeviceState; readonly required: boolean; readonly lastError: string }[];
}

export interface ProbeResult {
  readonly ok: boolean;
  readonly body: Record<string, unknown>;
}

/** How long the loop may go without a completed cycle before /healthz fails: 3 periods, at least 1 s (a loaded machine). */
export function stallAfterMs(periodMs: number): number {
  return Math.max(3 * periodMs, 1000);
}

export function healthz(p: ProbeInput): ProbeResult {
  const limit = stallAfterMs(p.periodMs);
  if (p.lastCycleAgeMs === undefined) {
    return { ok: false, body: { status: "starting", reason: "no cycle completed yet", cycles: p.cycles } };
  }
  const ageMs = Math.round(p.lastCycleAgeMs);
  if (p.lastCycleAgeMs > limit) {
    return { ok: false, body: { status: "stalled", reason: `no cycle completed for ${ageMs} ms (limit ${limit} ms)`, cycles: p.cycles, lastCycleAgeMs: ageMs } };
  }
  return { ok: true, body: { status: "ok", cycles: p.cycles, lastCycleAgeMs: ageMs, mode: p.mode } };
}

export function readyz(p: ProbeInput): ProbeResult {
  const reasons: string[] = [];
  const h = healthz(p);
  if (!h.ok) reasons.push(String(h.body.reason));
  if (p.mode === "faulted") reasons.push("overrun fault: every output is held safe until reset");
  const notGood = p.devices.filter((d) => d.required && d.state !== "good");
  for (const d of notGood) reasons.push(`required device ${d.name} is ${d.state}${d.lastError ? `: ${d.lastError}` : ""}`);
  const devices = Object.fromEntries(p.devices.map((d) => [d.name, { state: d.state, required: d.required }]));
  return {
    ok: reasons.length === 0,
    body: { status: reasons.length === 0 ? "ready" : "not ready", reasons, mode: p.mode, devices },
  };
}
