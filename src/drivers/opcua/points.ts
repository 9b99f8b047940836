/**
 * OPC UA points at load: the device profile's points merged with the
 * config's, addresses parsed, types required (the server is not asked until
 * start, where every node is resolved and its data type checked).
 */
import type { ConfigIssue, SourceMap } from "../../config/issues.js";
import type { PointDraft } from "../../config/compile.js";
import type { OpcuaDeviceConfig, OpcuaPointConfig } from "./config.js";
import { parseAddress } from "./address.js";
import { keepAlivePeriodMs } from "./plan.js";
import { motomanOpcuaPoints } from "../../profiles/motoman-yrc1000-opcua.js";

type Merged = OpcuaPointConfig & { fromProfile: boolean };

function profilePoints(dev: OpcuaDeviceConfig): Map<string, OpcuaPointConfig> {
  const out = new Map<string, OpcuaPointConfig>();
  switch (dev.profile) {
    case undefined:
      return out;
    case "motoman-yrc1000": {
      const o = dev.profile_options;
      for (const p of motomanOpcuaPoints({ namespaceUri: o.namespace_uri, folder: o.folder, axes: o.axes })) {
        out.set(p.name, { address: p.address, type: p.type, direction: p.direction, safe: p.safe, description: p.description, unit: p.unit });
      }
      return out;
    }
  }
}

/** Profile points overlaid with the config's own entries (which win field by field). */
export function mergedOpcuaPoints(dev: OpcuaDeviceConfig): Map<string, Merged> {
  const merged = new Map<string, Merged>();
  const prof = profilePoints(dev);
  for (const [n, p] of prof) merged.set(n, { ...p, fromProfile: true });
  for (const [n, p] of Object.entries(dev.points)) {
    const base = prof.get(n);
    const defined = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as Partial<OpcuaPointConfig>;
    // `direction` has a schema default: keep the profile's unless the config set it explicitly.
    const direction = base && p.direction === "input" && base.direction !== "input" ? base.direction : p.direction;
    merged.set(n, { ...(base ?? {}), ...defined, direction, fromProfile: base !== undefined });
  }
  return merged;
}

export function compileOpcuaPoints(device: string, dev: OpcuaDeviceConfig, map: SourceMap, issues: ConfigIssue[]): PointDraft[] {
  const out: PointDraft[] = [];
  const sec = dev.security;
  if (sec.mode === "None" && sec.policy !== undefined && sec.policy !== "None") {
    issues.push(map.issue(["devices", device, "security", "policy"], `mode None goes with policy None, not ${sec.policy}`));
  }
  if (sec.mode !== "None" && sec.policy === "None") {
    issues.push(map.issue(["devices", device, "security", "policy"], `mode ${sec.mode} needs a security policy other than None`));
  }
  if ((sec.user === undefined) !== (sec.password_env === undefined)) {
    issues.push(map.issue(["devices", device, "security"], "user and password_env go together"));
  }
  const keepAliveMs = keepAlivePeriodMs(dev.subscription);
  if (dev.mode === "subscription" && dev.liveness_ms !== undefined && dev.liveness_ms <= keepAliveMs) {
    issues.push(map.issue(["devices", device, "liveness_ms"], `liveness_ms (${dev.liveness_ms}) must be longer than the keep-alive period (publishing_interval_ms × keepalive_count = ${keepAliveMs} ms)`));
  }
  if (dev.reconnect.min_ms > dev.reconnect.max_ms) {
    issues.push(map.issue(["devices", device, "reconnect", "min_ms"], "reconnect.min_ms is larger than reconnect.max_ms"));
  }
  let merged: Map<string, Merged>;
  try {
    merged = mergedOpcuaPoints(dev);
  } catch (e) {
    issues.push(map.issue(["devices", device, "profile_options"], e instanceof Error ? e.message : String(e)));
    return out;
  }
  for (const [name, pc] of merged) {
    const path = ["devices", device, "points", name];
    if (pc.address === undefined) {
      issues.push(map.issue(path, `point "${name}" needs an address (it is not a point of ${dev.profile ? `profile ${dev.profile}` : "a profile"})`));
      continue;
    }
    const parsed = parseAddress(pc.address);
    if (!parsed.ok) {
      issues.push(map.issue([...path, "address"], parsed.error));
      continue;
    }
    if (pc.type === undefined) {
      issues.push(map.issue(path, `point "${name}" needs a type (bool, int, float or string); it is checked against the node's DataType at start`));
      continue;
    }
    if (pc.direction === "memory") {
      issues.push(map.issue([...path, "direction"], "memory points live in cellio, not on a device"));
      continue;
    }
    if (pc.server_deadband && pc.type !== "int" && pc.type !== "float") {
      issues.push(map.issue([...path, "server_deadband"], "a deadband needs a numeric point"));
      continue;
    }
    out.push({ name, kind: pc.type, direction: pc.direction, address: parsed.address.text, config: pc });
  }
  return out;
}
