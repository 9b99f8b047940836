/**
 * Alarms, pure: which alarms the cell has, the state of each (active, acked)
 * and acknowledge through the one command path.
 *
 * API (for OPC UA Alarms & Conditions, MQTT events, the HMI):
 * - Alarm ids are fixed by the config: `interlock.<id>` per interlock (active
 *   while it is tripped), `device.<name>` per device (active while the device
 *   is lost: DeviceRunner state "bad"), and `overrun` (active while the loop is
 *   in its overrun fault). alarmDefs() lists them; AlarmBank.states() gives
 *   the live state of each, in that order.
 * - Acknowledge with the command `{ kind: "acknowledge", id }` through
 *   CommandRouter.submit() (MQTT `ack`, OPC UA Acknowledge / Cell.Acknowledge).
 *   Any role but viewer may acknowledge. Accepted only while the alarm is
 *   unacknowledged (active, or cleared but not yet acknowledged); otherwise
 *   refused `not_ready`. An unknown id is `unknown_target`.
 * - Every cycle the loop calls update() with what is active; it returns the
 *   events of that cycle: `ack` (acknowledges applied at the start of the
 *   cycle) first, then `raise` and `clear`, in alarmDefs() order. They show in
 *   CycleResult.alarmEvents. Nothing is returned when nothing changed.
 *
 * State model (ISA-18.2): normal (inactive, acked) → raise → active unacked;
 * ack → active acked; clear → normal. Cleared before an ack: inactive unacked
 * ("returned") until acknowledged. A raise always needs a new ack, and a
 * raise of a returned alarm keeps it unacked.
 */
import type { CommandResult, Role } from "./commands.js";

export type AlarmSource = "interlock" | "device" | "overrun";

export interface AlarmDef {
  /** `interlock.<id>`, `device.<name>` or `overrun`. */
  readonly id: string;
  readonly source: AlarmSource;
  /** The interlock id or device name ("" for overrun). */
  readonly target: string;
  /** OPC UA severity, 1..1000. */
  readonly severity: number;
}

export const ALARM_SEVERITY: Readonly<Record<AlarmSource, number>> = Object.freeze({ interlock: 700, device: 800, overrun: 900 });

/** The alarms of a cell with these interlocks and devices, in the order AlarmBank reports them. */
export function alarmDefs(interlockIds: readonly string[], deviceNames: readonly string[]): AlarmDef[] {
  return [
    ...interlockIds.map((id) => ({ id: `interlock.${id}`, source: "interlock" as const, target: id, severity: ALARM_SEVERITY.interlock })),
    ...deviceNames.map((name) => ({ id: `device.${name}`, source: "device" as const, target: name, severity: ALARM_SEVERITY.device })),
    { id: "overrun", source: "overrun", target: "", severity: ALARM_SEVERITY.overrun },
  ];
}

/** What is active now: each returns the cause while active, undefined while not. Must not allocate when nothing is active. */
export interface AlarmInputs {
  interlock(id: string): string | undefined;
  device(name: string): string | undefined;
  overrun(): string | undefined;
}

export interface AlarmEvent {
  readonly kind: "raise" | "clear" | "ack";
  readonly id: string;
  readonly cycle: number;
  readonly wallMs: number;
  /** raise: why it is active; clear: "cleared"; ack: "acknowledged by <role> <caller>". */
  readonly cause: string;
}

/** Live state of one alarm, updated in place; copy it to keep it. */
export interface AlarmState {
  readonly id: string;
  readonly source: AlarmSource;
  readonly target: string;
  readonly severity: number;
  readonly active: boolean;
  readonly acked: boolean;
  /** Cause of the latest raise ("" before the first). */
  readonly message: string;
  /** Wall clock (epoch ms) of the latest raise, 0 before the first. */
  readonly raisedAtWallMs: number;
  readonly raiseCount: number;
}

type Mutable = { -readonly [K in keyof AlarmState]: AlarmState[K] };

const NO_EVENTS: readonly AlarmEvent[] = Object.freeze([]);
const reject = (code: "unknown_target" | "not_ready" | "forbidden", reason: string): CommandResult => ({ accepted: false, code, reason });

export class AlarmBank {
  private readonly st: Mutable[];
  private readonly byId = new Map<string, number>();
  private readonly pendingAcks: Array<{ k: number; by: string }> = [];

  constructor(private readonly defs: readonly AlarmDef[]) {
    this.st = defs.map((d, k) => {
      if (this.byId.has(d.id)) throw new Error(`duplicate alarm id ${d.id}`);
      this.byId.set(d.id, k);
      return { id: d.id, source: d.source, target: d.target, severity: d.severity, active: false, acked: true, message: "", raisedAtWallMs: 0, raiseCount: 0 };
    });
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Would acknowledge(id, role) be accepted now? No side effect. */
  checkAcknowledge(id: string, role: Role): CommandResult {
    const k = this.byId.get(id);
    if (k === undefined) return reject("unknown_target", `no alarm "${id}" (ids: interlock.<id>, device.<name>, overrun)`);
    if (role === "viewer") return reject("forbidden", "role viewer may not acknowledge alarms");
    const s = this.st[k]!;
    if (s.acked) return reject("not_ready", s.active ? `alarm ${id} is already acknowledged` : `alarm ${id} is not active`);
    return { accepted: true };
  }

  /** Acknowledge now; the `ack` event comes out of the next update(). */
  acknowledge(id: string, role: Role, caller = ""): CommandResult {
    const r = this.checkAcknowledge(id, role);
    if (!r.accepted) return r;
    const k = this.byId.get(id)!;
    this.st[k]!.acked = true;
    this.pendingAcks.push({ k, by: caller === "" ? role : `${role} ${caller}` });
    return r;
  }

  /** Take this cycle's active set; returns the cycle's events (acks first). */
  update(inputs: AlarmInputs, cycle: number, wallMs: number): readonly AlarmEvent[] {
    let events: AlarmEvent[] | undefined;
    if (this.pendingAcks.length > 0) {
      events = this.pendingAcks.map(({ k, by }) => ({ kind: "ack" as const, id: this.defs[k]!.id, cycle, wallMs, cause: `acknowledged by ${by}` }));
      this.pendingAcks.length = 0;
    }
    for (let k = 0; k < this.defs.length; k++) {
      const d = this.defs[k]!;
      const s = this.st[k]!;
      const cause = d.source === "interlock" ? inputs.interlock(d.target) : d.source === "device" ? inputs.device(d.target) : inputs.overrun();
      if (cause !== undefined && !s.active) {
        s.active = true;
        s.acked = false;
        s.message = cause;
        s.raisedAtWallMs = wallMs;
        s.raiseCount++;
        (events ??= []).push({ kind: "raise", id: d.id, cycle, wallMs, cause });
      } else if (cause === undefined && s.active) {
        s.active = false;
        (events ??= []).push({ kind: "clear", id: d.id, cycle, wallMs, cause: "cleared" });
      }
    }
    return events ?? NO_EVENTS;
  }

  state(id: string): AlarmState | undefined {
    const k = this.byId.get(id);
    return k === undefined ? undefined : this.st[k];
  }

  /** Live states, in alarmDefs() order. */
  states(): readonly AlarmState[] {
    return this.st;
  }
}
