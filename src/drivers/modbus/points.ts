/**
 * Modbus points: address text → kind and direction, checked at load.
 */
import type { ConfigIssue, SourceMap } from "../../config/issues.js";
import type { PointDraft } from "../../config/compile.js";
import type { ModbusTcpDeviceConfig } from "./config.js";
import { parseAddress, valueKind, type ModbusAddress } from "./address.js";

const WRITABLE = new Set(["coil", "hr"]);

export function compileModbusPoints(
  device: string,
  dev: ModbusTcpDeviceConfig,
  map: SourceMap,
  issues: ConfigIssue[],
): PointDraft[] {
  const out: PointDraft[] = [];
  for (const [name, pc] of Object.entries(dev.points)) {
    const path = ["devices", device, "points", name];
    const parsed = parseAddress(pc.address, dev.address_base);
    if (!parsed.ok) {
      issues.push(map.issue([...path, "address"], parsed.error));
      continue;
    }
    const addr: ModbusAddress = parsed.address;
    const natural = valueKind(addr);
    let kind = natural;
    if (pc.scale && natural === "int") kind = "float";
    if (pc.type !== undefined) {
      const ok =
        pc.type === kind ||
        (pc.type === "float" && natural === "int") ||
        (pc.type === "int" && natural === "int");
      if (!ok) {
        issues.push(map.issue([...path, "type"], `type ${pc.type} does not fit address ${pc.address} (a ${natural} value)`));
        continue;
      }
      kind = pc.type;
    }
    if (pc.direction === "output" && !WRITABLE.has(addr.area)) {
      issues.push(
        map.issue([...path, "direction"], `${addr.area} is read-only in Modbus; outputs must be coils or holding registers`),
      );
      continue;
    }
    if (pc.direction === "memory") {
      issues.push(map.issue([...path, "direction"], "memory points live in cellio, not on a device"));
      continue;
    }
    out.push({ name, kind, direction: pc.direction, address: pc.address });
  }
  return out;
}
