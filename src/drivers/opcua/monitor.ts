/**
 * The subscription of one session (node-opcua; subscription mode): one
 * subscription, one monitored-item group per distinct monitoring settings.
 * Every publish response (data or keep-alive) counts as a sign of life;
 * anything that says the subscription is gone is reported as dead, and the
 * link rebuilds everything.
 */
import {
  AttributeIds,
  DataChangeFilter,
  DataChangeTrigger,
  DeadbandType,
  TimestampsToReturn,
  type ClientSession,
  type ClientSubscription,
  type DataValue,
} from "node-opcua";
import type { OpcuaDeviceConfig } from "./config.js";
import type { Monitoring, OpcuaPlan } from "./plan.js";
import type { ResolvedNode } from "./resolve.js";

export interface MonitorHandlers {
  /** A value (or status) for the point at `pos` in plan.points. */
  value(pos: number, dv: DataValue): void;
  /** The server answered a publish request (data or keep-alive). */
  contact(): void;
  /** The subscription is gone or broken. */
  dead(why: string): void;
}

function filterOf(m: Monitoring): DataChangeFilter | undefined {
  if (!m.deadband) return undefined;
  return new DataChangeFilter({
    trigger: DataChangeTrigger.StatusValue,
    deadbandType: m.deadband.type === "absolute" ? DeadbandType.Absolute : DeadbandType.Percent,
    deadbandValue: m.deadband.value,
  });
}

/** Create the subscription and its monitored items; resolves once every item is created. Errors name the point. */
export async function subscribe(
  session: ClientSession,
  cfg: OpcuaDeviceConfig,
  plan: OpcuaPlan,
  nodes: readonly ResolvedNode[],
  h: MonitorHandlers,
): Promise<{ subscription: ClientSubscription; errors: string[] }> {
  const s = cfg.subscription;
  const subscription = await session.createSubscription2({
    requestedPublishingInterval: s.publishing_interval_ms,
    requestedLifetimeCount: s.lifetime_count,
    requestedMaxKeepAliveCount: s.keepalive_count,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
    priority: 10,
  });
  subscription.on("keepalive", () => h.contact());
  subscription.on("received_notifications", () => h.contact());
  subscription.on("status_changed", (sc) => h.dead(`the server ended the subscription (${sc.name})`));
  subscription.on("terminated", () => h.dead("subscription terminated"));
  subscription.on("internal_error", (e: Error) => h.dead(`subscription error: ${e.message}`));
  subscription.on("error", (e: Error) => h.dead(`subscription error: ${e.message}`));
  const errors: string[] = [];
  for (const g of plan.groups) {
    const group = await subscription.monitorItems(
      g.members.map((pos) => ({ nodeId: nodes[pos]!.nodeId, attributeId: AttributeIds.Value })),
      { samplingInterval: g.monitoring.samplingIntervalMs, queueSize: g.monitoring.queueSize, discardOldest: true, filter: filterOf(g.monitoring) },
      TimestampsToReturn.Both,
    );
    group.on("changed", (_item, dv, k) => {
      const pos = g.members[k];
      if (pos !== undefined) h.value(pos, dv);
    });
    group.on("err", (msg: string) => h.dead(`monitored items: ${msg}`));
    group.monitoredItems.forEach((item, k) => {
      const p = plan.points[g.members[k]!]!;
      if (item.statusCode.isNotGood()) {
        const hint = g.monitoring.deadband && /Filter/.test(item.statusCode.name) ? "; the server refuses the deadband: remove server_deadband" : "";
        errors.push(`${p.id}: the server refused the monitored item for ${p.address.text} (${item.statusCode.name})${hint}`);
      }
    });
  }
  return { subscription, errors };
}
