/**
 * Alarms & Conditions: one AlarmConditionType instance per interlock (active
 * while tripped), per device (communication loss: active while the device is
 * bad) and one for the overrun fault (active while the loop is faulted).
 * Clients see them as events on Cell (and on the Server object), with
 * ConditionRefresh, and acknowledge them with the standard Acknowledge method
 * or with Cell.Acknowledge(Id).
 *
 * Alarm ids (the `acknowledge` command's id): `interlock.<id>`,
 * `device.<name>`, `overrun`, the same as the core's (core/alarms.ts). An
 * acknowledge goes through the CommandPort with the session's role (viewer:
 * BadUserAccessDenied), the one path MQTT's acknowledge takes too.
 *
 * When the view carries the core's alarm states (CellView.alarmStates), the
 * conditions mirror them: active and acked come from the core, so an alarm
 * acknowledged over MQTT shows acknowledged here. Otherwise active is derived
 * from the interlocks, devices and mode, and AckedState is the server's own
 * (and a router without alarms, answering unknown_target, still lets the
 * condition be acknowledged here).
 */
import {
  StatusCodes,
  type CallMethodResultOptions,
  type ISessionContext,
  type LocalizedText,
  type Namespace,
  type UAAlarmConditionEx,
  type UAObject,
  type UAVariable,
  type Variant,
} from "node-opcua";
import type { Logger } from "../../infra/logger.js";
import type { CellNodes } from "./address-space.js";
import { callerOf, roleOfContext, statusOf, type CommandDeps } from "./commands.js";
import type { AlarmView, CycleView, DeviceView, InterlockView } from "./ports.js";

interface Alarm {
  readonly id: string;
  readonly node: UAAlarmConditionEx;
  readonly severity: number;
  active: boolean;
}

const SEVERITY = { interlock: 700, device: 800, overrun: 900 } as const;

export class CellAlarms {
  private readonly byId = new Map<string, Alarm>();
  private readonly byNodeId = new Map<string, Alarm>();
  private readonly log: Logger;

  constructor(
    ns: Namespace,
    private readonly nodes: CellNodes,
    private readonly deps: CommandDeps,
  ) {
    this.log = deps.log;
    for (const [id, n] of nodes.interlocks) this.add(ns, `interlock.${id}`, n.object, n.tripped.node, SEVERITY.interlock);
    for (const [name, n] of nodes.devices) this.add(ns, `device.${name}`, n.status, n.connected.node, SEVERITY.device);
    this.add(ns, "overrun", nodes.diagnostics.object, nodes.diagnostics.faulted.node, SEVERITY.overrun);
    this.installAcknowledge(ns);
  }

  get ids(): string[] {
    return [...this.byId.keys()];
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  private add(ns: Namespace, id: string, source: UAObject, input: UAVariable, severity: number): void {
    const node = ns.instantiateAlarmCondition("AlarmConditionType", {
      componentOf: source,
      conditionSource: source,
      browseName: "Alarm",
      nodeId: `s=${String(source.nodeId.value)}.Alarm`,
      conditionName: id,
      inputNode: input,
    });
    const a: Alarm = { id, node, severity, active: false };
    this.byId.set(id, a);
    this.byNodeId.set(node.nodeId.toString(), a);
  }

  /** Raise, clear (and, from the core, acknowledge) conditions from the latest published state. */
  sync(cycle: CycleView | undefined, devices: readonly DeviceView[], interlocks: readonly InterlockView[], core?: readonly AlarmView[]): void {
    if (core !== undefined) {
      for (const s of core) {
        this.set(s.id, s.active, s.active ? s.message || s.id : `${s.id} clear`);
        if (s.acked) this.acknowledge(s.id, "cellio", "acknowledged through the command path");
      }
      return;
    }
    for (const s of interlocks) {
      this.set(`interlock.${s.id}`, s.tripped, s.tripped ? `interlock ${s.id} tripped: ${s.lastCause}` : `interlock ${s.id} clear`);
    }
    for (const d of devices) {
      const lost = d.state === "bad";
      this.set(`device.${d.name}`, lost, lost ? `device ${d.name} lost: ${d.lastError}` : `device ${d.name} communicates`);
    }
    if (cycle !== undefined) {
      const faulted = cycle.mode === "faulted";
      this.set("overrun", faulted, faulted ? "overrun fault: every output is safe until ResetFault" : "no overrun fault");
    }
  }

  private set(id: string, active: boolean, message: string): void {
    const a = this.byId.get(id);
    if (a === undefined || a.active === active) return;
    a.active = active;
    const branch = a.node.currentBranch();
    if (active) {
      // A new raise needs a new acknowledge (ISA-18.2), also after an acknowledged one.
      branch.setAckedState(false);
      a.node.activateAlarm();
      a.node.raiseNewCondition({ message, severity: a.severity, retain: true });
    } else {
      const acked = branch.getAckedState();
      a.node.deactivateAlarm(!acked);
      a.node.raiseNewCondition({ message, severity: a.severity, retain: !acked });
    }
  }

  /** Acknowledge the condition of alarm `id` (after the command was accepted, or the core says it is acknowledged). */
  acknowledge(id: string, user: string, comment = ""): boolean {
    const a = this.byId.get(id);
    if (a === undefined) return false;
    const branch = a.node.currentBranch();
    if (branch.getAckedState()) return true;
    if (!a.active && !branch.getRetain()) return true; // nothing to acknowledge
    a.node.acknowledgeAndAutoConfirmBranch(branch, comment || `acknowledged by ${user}`);
    if (!a.active) a.node.raiseNewCondition({ message: `${id} acknowledged by ${user}`, severity: a.severity, retain: false });
    return true;
  }

  /**
   * The standard Acknowledge(EventId, Comment) of AcknowledgeableConditionType,
   * on the type and on each instance (clients call either), checked by role and
   * sent through the CommandPort first.
   */
  private installAcknowledge(ns: Namespace): void {
    const handler = async (args: Variant[], context: ISessionContext): Promise<CallMethodResultOptions> =>
      Promise.resolve(this.onAcknowledge(args, context));
    const type = ns.addressSpace.findEventType("AcknowledgeableConditionType");
    type?.getMethodByName("Acknowledge")?.bindMethod(handler);
    for (const a of this.byId.values()) a.node.acknowledge.bindMethod(handler);
  }

  private onAcknowledge(args: Variant[], context: ISessionContext): CallMethodResultOptions {
    const target = context.object;
    const a = target === undefined ? undefined : this.byNodeId.get(target.nodeId.toString());
    if (a === undefined) return { statusCode: StatusCodes.BadNodeIdInvalid };
    const eventId = args[0]?.value as Buffer | null | undefined;
    const comment = (args[1]?.value as LocalizedText | null | undefined)?.text ?? "";
    const branch = a.node.findBranchForEventId(eventId ?? null);
    if (branch === null) return { statusCode: StatusCodes.BadEventIdUnknown };
    if (branch.getAckedState()) return { statusCode: StatusCodes.BadConditionBranchAlreadyAcked };
    const user = context.getUserName();
    const role = roleOfContext(context, this.deps);
    if (role === undefined || role === "viewer") {
      this.log.warn({ alarm: a.id, user, role }, `OPC UA acknowledge of ${a.id} refused: role ${role ?? "none"}`);
      return { statusCode: StatusCodes.BadUserAccessDenied };
    }
    const port = this.deps.port;
    if (port !== undefined) {
      const r = port.submit({ kind: "acknowledge", id: a.id }, { role, caller: callerOf(context), nowMs: this.deps.clock.now() });
      // unknown_target: a router without alarms (the condition is the server's own).
      if (!r.accepted && r.code !== "unknown_target") {
        this.log.warn({ alarm: a.id, user, role, code: r.code, reason: r.reason }, `OPC UA acknowledge of ${a.id} refused: ${r.reason}`);
        return { statusCode: statusOf(r) };
      }
    }
    a.node.acknowledgeAndAutoConfirmBranch(branch, comment || `acknowledged by ${user}`);
    if (!a.active) a.node.raiseNewCondition({ message: `${a.id} acknowledged by ${user}`, severity: a.severity, retain: false });
    this.nodes.diagnostics.lastCommand.set(`acknowledge ${a.id} by ${user} (${role}): accepted`, Date.now());
    this.log.info({ alarm: a.id, user, role }, `OPC UA alarm ${a.id} acknowledged`);
    return { statusCode: StatusCodes.Good };
  }
}
