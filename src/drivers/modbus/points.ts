/**
 * Modbus points: the device profile's points merged with the config's, then
 * address text → kind and direction, checked at load.
 */
import type { ConfigIssue, SourceMap } from "../../config/issues.js";
import type { PointDraft } from "../../config/compile.js";
import type { ModbusPointConfig, ModbusTcpDeviceConfig } from "./config.js";
import { isWritable, parseAddress, valueKind } from "./address.js";
import { checkWatchdog } from "./watchdog.js";
import { motomanPoints } from "../../profiles/motoman-yrc1000-map.js";

/** The profile's points as point configs, by name. */
function profilePoints(dev: ModbusTcpDeviceConfig): Map<string, ModbusPointConfig> {
  const out = new Map<string, ModbusPointConfig>();
  switch (dev.profile) {
    case undefined:
      return out;
    case "motoman-yrc1000":
      for (const p of motomanPoints(dev.profile_options.base, { axes: dev.profile_options.axes })) {
        out.set(p.name, {
          address: p.address,
          type: p.type,
          direction: p.direction,
          safe: p.safe,
          description: p.description,
          unit: p.unit,
          scale: p.scale ? { gain: p.scale.gain, offset: 0 } : undefined,
        });
      }
      return out;
  }
}

/** Profile points overlaid with the config's own entries (which win field by field). */
export function mergedPoints(dev: ModbusTcpDeviceConfig): Map<string, ModbusPointConfig & { fromProfile: boolean }> {
  const merged = new Map<string, ModbusPointConfig & { fromProfile: boolean }>();
  const prof = profilePoints(dev);
  for (const [n, p] of prof) merged.set(n, { ...p, fromProfile: true });
  for (const [n, p] of Object.entries(dev.points)) {
    const base = prof.get(n);
    const defined = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as Partial<ModbusPointConfig>;
    // `direction` has a schema default: keep the profile's unless the config set it explicitly.
    const direction = base && p.direction === "input" && base.direction !== "input" ? base.direction : p.direction;
    merged.set(n, { ...(base ?? {}), ...defined, direction, fromProfile: base !== undefined });
  }
  return merged;
}

export function compileModbusPoints(
  device: string,
  dev: ModbusTcpDeviceConfig,
  map: SourceMap,
  issues: ConfigIssue[],
): PointDraft[] {
  const out: PointDraft[] = [];
  checkWatchdog(device, dev.watchdog, dev.address_base, map, issues);
  let merged: Map<string, ModbusPointConfig & { fromProfile: boolean }>;
  try {
    merged = mergedPoints(dev);
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
    const parsed = parseAddress(pc.address, dev.address_base);
    if (!parsed.ok) {
      issues.push(map.issue([...path, "address"], parsed.error));
      continue;
    }
    const addr = parsed.address;
    const natural = valueKind(addr);
    let kind = natural;
    if (pc.scale && natural === "int") kind = "float";
    if (pc.type !== undefined) {
      const ok = pc.type === kind || (pc.type === "float" && natural === "int") || (pc.type === "int" && natural === "int");
      if (!ok) {
        issues.push(map.issue([...path, "type"], `type ${pc.type} does not fit address ${pc.address} (its value is ${natural})`));
        continue;
      }
      kind = pc.type;
    }
    if (pc.direction === "output" && !isWritable(addr.area)) {
      issues.push(map.issue([...path, "direction"], `${addr.area} is read-only in Modbus; outputs must be coils or holding registers`));
      continue;
    }
    if (pc.verify === true && pc.direction !== "output") {
      issues.push(map.issue([...path, "verify"], "verify (read back after writing) is for outputs; this point is an input"));
      continue;
    }
    if (pc.direction === "memory") {
      issues.push(map.issue([...path, "direction"], "memory points live in cellio, not on a device"));
      continue;
    }
    out.push({ name, kind, direction: pc.direction, address: pc.address, config: pc, wire: addr.type });
  }
  return out;
}
