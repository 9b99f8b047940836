/**
 * What to publish, decided at MQTT's own pace and never in the cycle: compare
 * the latest cycle's image against what was last queued (per-point deadband),
 * and queue the differences in a bounded Outbox.
 *
 * The Outbox keeps only the LATEST message per retained topic (a Map: a
 * newer value replaces an unsent older one), so while the broker is away it
 * holds at most one message per topic however long the outage. Events
 * (non-retained) go into a ring of `eventCap`; the oldest are dropped and
 * counted. Nothing here does I/O.
 */
import type { PointDef } from "../../core/points.js";
import type { Status, Value } from "../../core/sample.js";
import {
  iso,
  pointPayload,
  type EventPayload,
  type InterlockPayload,
  type ModePayload,
  type SequencePayload,
  type Topics,
} from "./contract.js";
import type {
  AppliedCommandView,
  ControlView,
  CycleView,
  DeviceView,
  InterlockEventView,
  InterlockView,
  ModeEventView,
  SequenceEventView,
  SequenceView,
} from "./ports.js";

export type QoS = 0 | 1;

export interface OutMessage {
  readonly topic: string;
  readonly payload: string;
  readonly retain: boolean;
  readonly qos: QoS;
}

export class Outbox {
  private readonly state = new Map<string, OutMessage>();
  private events: OutMessage[] = [];
  droppedEvents = 0;

  constructor(private readonly eventCap: number) {}

  /**
   * Queue retained state; replaces an unsent message for the same topic IN
   * PLACE (Map.set keeps the key's position), so a topic that changes all the
   * time cannot push others back: when the broker is slower than the changes,
   * every topic still gets its turn.
   */
  putState(m: OutMessage): void {
    this.state.set(m.topic, m);
  }

  putEvent(m: OutMessage): void {
    if (this.events.length >= this.eventCap) {
      this.events.shift();
      this.droppedEvents++;
    }
    this.events.push(m);
  }

  has(topic: string): boolean {
    return this.state.has(topic);
  }

  get size(): number {
    return this.state.size + this.events.length;
  }

  /** Take up to `n` messages: events first (they are time-ordered), then state in queue order. */
  take(n: number): OutMessage[] {
    const out: OutMessage[] = [];
    if (n <= 0) return out;
    if (this.events.length > 0) {
      const k = Math.min(n, this.events.length);
      out.push(...this.events.slice(0, k));
      this.events = this.events.slice(k);
    }
    for (const [topic, m] of this.state) {
      if (out.length >= n) break;
      out.push(m);
      this.state.delete(topic);
    }
    return out;
  }

  /** Forget queued state (before queueing the complete state again on reconnect). Events stay. */
  clearState(): void {
    this.state.clear();
  }
}

export interface PublisherOptions {
  readonly topics: Topics;
  readonly points: readonly PointDef[];
  readonly cellId: string;
  readonly stateQos: QoS;
  readonly eventQos: QoS;
}

/**
 * Remembers what was last queued per topic and queues only differences.
 * Allocation per collect() is proportional to what changed.
 */
export class StatePublisher {
  private readonly pointTopics: readonly string[];
  private readonly lastValue: (Value | null | undefined)[];
  private readonly lastStatus: (Status | undefined)[];
  private readonly lastJson = new Map<string, string>();
  private readonly seqSince = new Map<string, { step: string; since: string | null }>();
  private readonly deviceStates = new Map<string, string>();
  private lastMode: string | undefined;

  constructor(private readonly o: PublisherOptions) {
    this.pointTopics = o.points.map((p) => o.topics.point(p.device, p.name));
    this.lastValue = new Array<Value | null | undefined>(o.points.length).fill(undefined);
    this.lastStatus = new Array<Status | undefined>(o.points.length).fill(undefined);
  }

  /**
   * Queue every point, interlock, sequence and the control mode whose published
   * state changed (all of them when `all`: after a (re)connect). Returns how many were queued.
   */
  collect(c: CycleView, out: Outbox, all = false): number {
    const q = this.queued;
    this.collectPoints(c, out, all, 0, () => true);
    this.collectOthers(c.interlocks ?? [], c.sequences ?? [], c.wallMs, out, all, c.controlState);
    return this.queued - q;
  }

  /** Messages queued so far (a counter). */
  queued = 0;

  /**
   * Points from index `from` on, while `more()` (asked every 32 points) says
   * there is time left. Returns the index to continue from (points.length: done).
   */
  collectPoints(c: CycleView, out: Outbox, all: boolean, from: number, more: () => boolean): number {
    const { points } = this.o;
    let i = from;
    for (; i < points.length; i++) {
      if ((i - from) % 32 === 31 && !more()) return i;
      const s = c.image[i];
      if (s === undefined) continue;
      if (!all && !this.pointChanged(points[i]!, s.value, s.status)) continue;
      this.lastValue[i] = s.value;
      this.lastStatus[i] = s.status;
      out.putState(this.msg(this.pointTopics[i]!, JSON.stringify(pointPayload(s))));
      this.queued++;
    }
    return i;
  }

  /** Interlocks, sequences (few) and the control mode; `wallMs` dates a new sequence step. */
  collectOthers(
    interlocks: readonly InterlockView[],
    sequences: readonly SequenceView[],
    wallMs: number,
    out: Outbox,
    all: boolean,
    control?: ControlView,
  ): void {
    for (const il of interlocks) this.queued += this.putIfChanged(this.o.topics.interlock(il.id), interlockPayload(il), out, all);
    for (const sq of sequences) this.queued += this.putIfChanged(this.o.topics.sequence(sq.id), this.sequencePayload(sq, wallMs), out, all);
    if (control !== undefined) this.queued += this.putIfChanged(this.o.topics.mode, modePayload(control), out, all);
  }

  private pointChanged(p: PointDef, v: Value | null, status: Status): boolean {
    const i = p.index;
    if (this.lastStatus[i] !== status) return true;
    const last = this.lastValue[i];
    if (last === v) return false;
    if (typeof v === "number" && typeof last === "number" && p.deadband > 0 && Number.isFinite(v) && Number.isFinite(last)) {
      return Math.abs(v - last) >= p.deadband;
    }
    return !(typeof v === "number" && typeof last === "number" && Number.isNaN(v) && Number.isNaN(last));
  }

  private putIfChanged(topic: string, payload: object, out: Outbox, all: boolean): number {
    const json = JSON.stringify(payload);
    if (!all && this.lastJson.get(topic) === json) return 0;
    this.lastJson.set(topic, json);
    out.putState(this.msg(topic, json));
    return 1;
  }

  private sequencePayload(s: SequenceView, wallMs: number): SequencePayload {
    let since = this.seqSince.get(s.id);
    if (since?.step !== s.step) {
      since = { step: s.step, since: iso(wallMs) };
      this.seqSince.set(s.id, since);
    }
    return { step: s.step, faulted: s.faulted, last_fault: s.lastFault, since: since.since };
  }

  /** Queue the events of cycles (interlock and sequence transitions, applied or refused commands). */
  collectEvents(
    interlocks: readonly InterlockEventView[],
    sequences: readonly SequenceEventView[],
    out: Outbox,
    commands: readonly AppliedCommandView[] = [],
    wallMs = 0,
  ): void {
    for (const e of interlocks) {
      this.event(out, { ts: iso(e.wallMs) ?? "", type: "interlock", id: e.id, event: e.kind, cause: e.cause, cycle: e.cycle });
    }
    for (const e of sequences) {
      this.event(out, { ts: iso(e.wallMs) ?? "", type: "sequence", id: e.id, event: e.kind, cause: e.cause, from: e.from, to: e.to, cycle: e.cycle });
    }
    for (const c of commands) {
      const r = c.result;
      this.event(out, {
        ts: iso(wallMs) ?? "",
        type: "command",
        id: c.command.kind,
        event: r.accepted ? "applied" : "refused",
        cause: r.accepted ? "" : `${r.code}: ${r.reason}`,
        caller: c.caller,
        cycle: c.cycle,
      });
    }
  }

  /** Queue control mode switches and lost manual permits (type `mode`, id: the cell id). */
  collectModeEvents(events: readonly ModeEventView[], out: Outbox): void {
    for (const e of events) {
      this.event(out, { ts: iso(e.wallMs) ?? "", type: "mode", id: this.o.cellId, event: e.kind, cause: e.cause, from: e.from, to: e.to, by: e.by, cycle: e.cycle });
    }
  }

  /** Queue device lost / stale / recovered and cell mode changes seen since the last call. */
  collectTransitions(devices: readonly DeviceView[], mode: string, wallMs: number, out: Outbox): void {
    const ts = iso(wallMs) ?? "";
    for (const d of devices) {
      const before = this.deviceStates.get(d.name);
      if (before === d.state) continue;
      this.deviceStates.set(d.name, d.state);
      const event = deviceEvent(before, d.state);
      if (event) this.event(out, { ts, type: "device", id: d.name, event, cause: d.lastError });
    }
    if (mode !== this.lastMode) {
      const first = this.lastMode === undefined;
      this.lastMode = mode;
      if (!first || mode === "faulted") this.event(out, { ts, type: "cell", id: this.o.cellId, event: mode, cause: `mode ${mode}` });
    }
  }

  private event(out: Outbox, e: EventPayload): void {
    out.putEvent({ topic: this.o.topics.events, payload: JSON.stringify(e), retain: false, qos: this.o.eventQos });
  }

  private msg(topic: string, payload: string): OutMessage {
    return { topic, payload, retain: true, qos: this.o.stateQos };
  }
}

function deviceEvent(before: string | undefined, now: string): "lost" | "stale" | "recovered" | undefined {
  if (now === "bad") return "lost";
  if (now === "stale") return "stale";
  if (now === "good" && (before === "bad" || before === "stale")) return "recovered";
  return undefined;
}

export function modePayload(c: ControlView): ModePayload {
  return { mode: c.mode, since: iso(c.sinceWallMs), by: c.by, manual_permitted: c.manualPermitted };
}

function interlockPayload(il: InterlockView): InterlockPayload {
  return {
    tripped: il.tripped,
    permitted: il.permitted,
    latched: il.latched,
    trip_count: il.tripCount,
    last_cause: il.lastCause,
    last_trip: iso(il.lastTripWallMs),
  };
}
