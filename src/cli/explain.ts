/**
 * A human-readable account of what a config compiles to: every point with its
 * address, type and safe value, and the Modbus requests each device will send.
 */
import type { LoadedConfig } from "../config/load.js";
import { ModbusTcpDriver } from "../drivers/modbus/driver.js";
import { describeLine } from "../drivers/modbus/rtu-config.js";
import { RtuBusRegistry } from "../drivers/modbus/transport-rtu.js";
import { silentLogger } from "../infra/logger.js";
import { systemClock } from "../infra/clock.js";

const FC_NAMES: Record<number, string> = { 1: "read coils", 2: "read discrete inputs", 3: "read holding registers", 4: "read input registers" };

export function explainCell(loaded: LoadedConfig): string {
  const m = loaded.model;
  const lines: string[] = [];
  // Every RTU device first, so each bus shows the gap it will really use (the largest asked for).
  const buses = new RtuBusRegistry();
  const transports = new Map(m.devices.flatMap((d) => (d.config.protocol === "modbus-rtu" ? [[d.name, buses.transportFor(d.config)] as const] : [])));
  // Modbus TCP devices naming the same host, port and framing share one connection (drivers/modbus/links.ts).
  const tcpKey = (c: { host: string; port: number; framing: string }): string => `${c.host}:${c.port} (${c.framing} framing)`;
  const sharing = new Map<string, string[]>();
  for (const d of m.devices) {
    if (d.config.protocol === "modbus-tcp") sharing.set(tcpKey(d.config), [...(sharing.get(tcpKey(d.config)) ?? []), d.name]);
  }
  for (const d of m.devices) {
    lines.push(`\ndevice ${d.name} (${d.config.protocol}, stale after ${d.staleAfterMs} ms)`);
    for (const i of d.points) {
      const p = m.points[i]!;
      const safe = p.safe === null ? "" : `  safe=${JSON.stringify(p.safe)}`;
      const unit = p.unit ? ` [${p.unit}]` : "";
      lines.push(`  ${p.id.padEnd(28)} ${p.direction.padEnd(6)} ${p.kind.padEnd(6)} ${p.address}${unit}${safe}`);
    }
    switch (d.config.protocol) {
      case "modbus-tcp":
      case "modbus-rtu": {
        const transport = transports.get(d.name);
        if (transport) {
          const bus = transport.bus;
          lines.push(`  unit ${transport.unit} on serial bus ${bus.path} (${describeLine(bus.settings)}, inter-frame gap ${bus.interFrameGapMs.toFixed(2)} ms)`);
        }
        if (d.config.protocol === "modbus-tcp") {
          const key = tcpKey(d.config);
          const others = (sharing.get(key) ?? []).filter((n) => n !== d.name);
          lines.push(`  unit ${d.config.unit_id} on ${key}${others.length > 0 ? `, one connection shared with ${others.join(", ")}` : ""}`);
        }
        const driver = new ModbusTcpDriver(d.name, d.config, d.points.map((i) => m.points[i]!), systemClock, silentLogger(), transport);
        lines.push(`  read plan: ${driver.plan.length} request(s) per poll`);
        for (const r of driver.plan) {
          const names = r.items.map((it) => m.points[it.index]!.name).join(", ");
          lines.push(`    FC${r.fc} ${FC_NAMES[r.fc]} start ${r.start} count ${r.count}: ${names}`);
        }
        break;
      }
      case "opcua": {
        const c = d.config;
        const sec = c.security;
        lines.push(`  endpoint ${c.endpoint}, security ${sec.mode}${sec.policy ? `/${sec.policy}` : ""}, ${sec.user ? `user ${sec.user}` : "anonymous"}`);
        lines.push(
          c.mode === "subscription"
            ? `  read plan: one subscription, publishing every ${c.subscription.publishing_interval_ms} ms, ${d.points.length} monitored item(s)`
            : `  read plan: one Read of ${d.points.length} node(s) per poll (every ${c.poll_every} cycle(s))`,
        );
        break;
      }
    }
  }
  if (m.logic.length > 0) {
    lines.push("\nlogic");
    for (const rule of m.logic) lines.push(`  ${m.points[rule.target]!.id} := ${rule.expr.source}`);
  }
  return `${lines.join("\n")}\n`;
}
