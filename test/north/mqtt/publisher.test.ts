/**
 * What gets published, without a broker: per-point change detection with
 * deadband and quality, the bounded Outbox (latest per topic, capped events,
 * no starvation), interlock/sequence state, the control mode, and
 * device/cell/mode events.
 */
import { describe, expect, it } from "vitest";
import { goodSample, sample, INITIAL_SAMPLE } from "../../../src/core/sample.js";
import { topics, pointPayloadSchema, interlockPayloadSchema, sequencePayloadSchema, eventPayloadSchema, modePayloadSchema } from "../../../src/north/mqtt/contract.js";
import { Outbox, StatePublisher, type OutMessage } from "../../../src/north/mqtt/publisher.js";
import type { CycleView } from "../../../src/north/mqtt/ports.js";
import { POINTS } from "./helpers.js";

const T = topics("cellio/t1");
const TS = Date.UTC(2026, 0, 1);

function publisher(): StatePublisher {
  return new StatePublisher({ topics: T, points: POINTS, cellId: "t1", stateQos: 1, eventQos: 1 });
}

function cycle(image = POINTS.map(() => INITIAL_SAMPLE), extra: Partial<CycleView> = {}): CycleView {
  return { cycle: 0, wallMs: TS, mode: "running", image, ...extra };
}

const msg = (topic: string, payload = "x"): OutMessage => ({ topic, payload, retain: true, qos: 1 });
const json = (m: OutMessage): Record<string, unknown> => JSON.parse(m.payload) as Record<string, unknown>;

describe("StatePublisher: points", () => {
  it("publishes every point the first time, retained, as {v,q,s,ts}", () => {
    const p = publisher();
    const out = new Outbox(100);
    const image = [goodSample(true, TS), goodSample(5.5, TS + 1), INITIAL_SAMPLE, goodSample(7, TS + 2)];
    expect(p.collect(cycle(image), out)).toBe(4);
    const sent = out.take(100);
    expect(sent.map((m) => m.topic)).toEqual([
      "cellio/t1/points/io1/door_closed",
      "cellio/t1/points/io1/pressure",
      "cellio/t1/points/io1/conveyor_run",
      "cellio/t1/points/robot/speed",
    ]);
    expect(sent.every((m) => m.retain && m.qos === 1)).toBe(true);
    expect(sent.map((m) => pointPayloadSchema.parse(json(m)))).toEqual([
      { v: true, q: "good", s: "good", ts: "2026-01-01T00:00:00.000Z" },
      { v: 5.5, q: "good", s: "good", ts: "2026-01-01T00:00:00.001Z" },
      { v: null, q: "bad", s: "bad_waiting_for_initial_data", ts: null },
      { v: 7, q: "good", s: "good", ts: "2026-01-01T00:00:00.002Z" },
    ]);
  });

  it("then only what changed: a re-read of the same value (new source time) is not a change", () => {
    const p = publisher();
    const out = new Outbox(100);
    p.collect(cycle([goodSample(true, TS), goodSample(5.5, TS), INITIAL_SAMPLE, goodSample(7, TS)]), out);
    out.take(100);
    expect(p.collect(cycle([goodSample(true, TS + 10), goodSample(5.5, TS + 10), INITIAL_SAMPLE, goodSample(7, TS + 10)]), out)).toBe(0);
    expect(p.collect(cycle([goodSample(false, TS + 20), goodSample(5.5, TS + 20), INITIAL_SAMPLE, goodSample(8, TS + 20)]), out)).toBe(2);
    expect(out.take(100).map((m) => [m.topic, json(m)["v"]])).toEqual([
      ["cellio/t1/points/io1/door_closed", false],
      ["cellio/t1/points/robot/speed", 8],
    ]);
  });

  it("applies the point's deadband against the last PUBLISHED value, so a slow drift is still reported", () => {
    const p = publisher(); // io1.pressure has deadband 0.1
    const out = new Outbox(100);
    const at = (v: number) => cycle([goodSample(true, TS), goodSample(v, TS), INITIAL_SAMPLE, goodSample(7, TS)]);
    p.collect(at(5.0), out);
    out.take(100);
    const published: number[] = [];
    for (const v of [5.04, 5.08, 5.12, 5.13, 5.2, 5.23, 4.9]) {
      p.collect(at(v), out);
      for (const m of out.take(100)) published.push(json(m)["v"] as number);
    }
    expect(published).toEqual([5.12, 5.23, 4.9]);
  });

  it("a quality change is published even when the value did not change (and inside the deadband)", () => {
    const p = publisher();
    const out = new Outbox(100);
    const good = goodSample(5.5, TS);
    p.collect(cycle([goodSample(true, TS), good, INITIAL_SAMPLE, goodSample(7, TS)]), out);
    out.take(100);
    p.collect(cycle([sample(true, "bad_timeout", TS), sample(5.5, "uncertain_last_usable", TS), INITIAL_SAMPLE, goodSample(7, TS)]), out);
    expect(out.take(100).map((m) => json(m))).toEqual([
      { v: true, q: "bad", s: "bad_timeout", ts: "2026-01-01T00:00:00.000Z" },
      { v: 5.5, q: "uncertain", s: "uncertain_last_usable", ts: "2026-01-01T00:00:00.000Z" },
    ]);
  });

  it("collect(all) queues every topic again (after a reconnect)", () => {
    const p = publisher();
    const out = new Outbox(100);
    const c = cycle([goodSample(true, TS), goodSample(5.5, TS), INITIAL_SAMPLE, goodSample(7, TS)], {
      interlocks: [{ id: "door", permitted: true, tripped: false, latched: true, tripCount: 0, lastCause: "", lastTripWallMs: 0 }],
    });
    p.collect(c, out);
    out.take(100);
    expect(p.collect(c, out)).toBe(0);
    expect(p.collect(c, out, true)).toBe(5);
  });
});

describe("StatePublisher: interlocks, sequences, events", () => {
  it("publishes interlock and sequence state on change, retained", () => {
    const p = publisher();
    const out = new Outbox(100);
    const il = { id: "door", permitted: false, tripped: true, latched: true, tripCount: 3, lastCause: "permit false: io1.door_closed", lastTripWallMs: TS };
    const sq = { id: "main", step: "idle", lastFault: "", faulted: false };
    p.collect(cycle(undefined, { interlocks: [il], sequences: [sq] }), out);
    const byTopic = new Map(out.take(100).map((m) => [m.topic, json(m)]));
    expect(interlockPayloadSchema.parse(byTopic.get("cellio/t1/interlocks/door"))).toEqual({
      tripped: true,
      permitted: false,
      latched: true,
      trip_count: 3,
      last_cause: "permit false: io1.door_closed",
      last_trip: "2026-01-01T00:00:00.000Z",
    });
    expect(sequencePayloadSchema.parse(byTopic.get("cellio/t1/sequences/main"))).toEqual({ step: "idle", faulted: false, last_fault: "", since: "2026-01-01T00:00:00.000Z" });
    // Same state again: nothing. A new step: published with its own since.
    expect(p.collect(cycle(undefined, { interlocks: [il], sequences: [sq], wallMs: TS + 5 }), out)).toBe(0);
    out.take(100);
    p.collect(cycle(undefined, { interlocks: [il], sequences: [{ ...sq, step: "pick" }], wallMs: TS + 50 }), out);
    const seq = out.take(100).find((m) => m.topic === "cellio/t1/sequences/main")!;
    expect(json(seq)).toMatchObject({ step: "pick", since: "2026-01-01T00:00:00.050Z" });
  });

  it("turns interlock/sequence transitions, device state changes and cell mode changes into events", () => {
    const p = publisher();
    const out = new Outbox(100);
    p.collectEvents(
      [{ kind: "trip", id: "door", cycle: 7, wallMs: TS, cause: "permit false: io1.door_closed" }],
      [{ kind: "fault", id: "main", from: "pick", to: "fault", cycle: 8, wallMs: TS + 10, cause: "step pick timed out after 2000 ms" }],
      out,
    );
    p.collectTransitions([{ name: "io1", state: "good", lastError: "" }], "running", TS, out); // first look: no event
    p.collectTransitions([{ name: "io1", state: "bad", lastError: "timeout" }], "faulted", TS + 20, out);
    p.collectTransitions([{ name: "io1", state: "good", lastError: "" }], "faulted", TS + 30, out);
    const events = out.take(100).map((m) => {
      expect(m).toMatchObject({ topic: "cellio/t1/events", retain: false, qos: 1 });
      return eventPayloadSchema.parse(json(m));
    });
    expect(events.map((e) => [e.type, e.id, e.event])).toEqual([
      ["interlock", "door", "trip"],
      ["sequence", "main", "fault"],
      ["device", "io1", "lost"],
      ["cell", "t1", "faulted"],
      ["device", "io1", "recovered"],
    ]);
    expect(events[0]).toMatchObject({ ts: "2026-01-01T00:00:00.000Z", cause: "permit false: io1.door_closed", cycle: 7 });
    expect(events[1]).toMatchObject({ from: "pick", to: "fault" });
    expect(events[2]).toMatchObject({ cause: "timeout" });
  });
});

describe("StatePublisher: the control mode", () => {
  const auto = { mode: "auto" as const, sinceWallMs: TS, by: "", manualPermitted: true };

  it("publishes <prefix>/mode retained when it changes, nothing while it does not, all again after a reconnect", () => {
    const p = publisher();
    const out = new Outbox(100);
    expect(p.collect(cycle(undefined), out)).toBe(4); // no control state: no mode topic
    expect(out.take(100).some((m) => m.topic === T.mode)).toBe(false);
    expect(p.collect(cycle(undefined, { controlState: auto }), out)).toBe(1);
    const first = out.take(100);
    expect(first).toEqual([{ topic: "cellio/t1/mode", payload: expect.any(String) as string, retain: true, qos: 1 }]);
    expect(modePayloadSchema.parse(json(first[0]!))).toEqual({ mode: "auto", since: "2026-01-01T00:00:00.000Z", by: "", manual_permitted: true });
    expect(p.collect(cycle(undefined, { controlState: { ...auto }, wallMs: TS + 10 }), out)).toBe(0);
    const manual = { mode: "manual" as const, sinceWallMs: TS + 20, by: "engineer mqtt:erin", manualPermitted: true };
    expect(p.collect(cycle(undefined, { controlState: manual }), out)).toBe(1);
    expect(json(out.take(100)[0]!)).toEqual({ mode: "manual", since: "2026-01-01T00:00:00.020Z", by: "engineer mqtt:erin", manual_permitted: true });
    expect(p.collect(cycle(undefined, { controlState: { ...manual, manualPermitted: false } }), out)).toBe(1); // the permit is part of it
    out.take(100);
    p.collect(cycle(undefined, { controlState: { ...manual, manualPermitted: false } }), out, true);
    expect(out.take(100).filter((m) => m.topic === T.mode).map((m) => json(m)["manual_permitted"])).toEqual([false]);
  });

  it("turns switches and a lost permit into `mode` events of the cell", () => {
    const p = publisher();
    const out = new Outbox(100);
    p.collectModeEvents(
      [
        { kind: "switch", from: "auto", to: "manual", cycle: 3, wallMs: TS + 3, by: "engineer mqtt:erin", cause: "set_mode" },
        { kind: "permit_lost", from: "manual", to: "manual", cycle: 9, wallMs: TS + 9, by: "cellio", cause: "panel.key_manual is false" },
      ],
      out,
    );
    const events = out.take(100).map((m) => {
      expect(m).toMatchObject({ topic: "cellio/t1/events", retain: false, qos: 1 });
      return eventPayloadSchema.parse(json(m));
    });
    expect(events).toEqual([
      { ts: "2026-01-01T00:00:00.003Z", type: "mode", id: "t1", event: "switch", cause: "set_mode", from: "auto", to: "manual", by: "engineer mqtt:erin", cycle: 3 },
      { ts: "2026-01-01T00:00:00.009Z", type: "mode", id: "t1", event: "permit_lost", cause: "panel.key_manual is false", from: "manual", to: "manual", by: "cellio", cycle: 9 },
    ]);
  });
});

describe("Outbox", () => {
  it("keeps only the latest message per retained topic", () => {
    const o = new Outbox(10);
    for (let i = 0; i < 1000; i++) o.putState(msg(`t/${i % 3}`, String(i)));
    expect(o.size).toBe(3);
    expect(o.take(10).map((m) => m.payload)).toEqual(["999", "997", "998"]);
  });

  it("caps events, dropping the oldest and counting them", () => {
    const o = new Outbox(5);
    for (let i = 0; i < 12; i++) o.putEvent({ topic: "e", payload: String(i), retain: false, qos: 1 });
    expect(o.size).toBe(5);
    expect(o.droppedEvents).toBe(7);
    expect(o.take(100).map((m) => m.payload)).toEqual(["7", "8", "9", "10", "11"]);
  });

  it("does not starve topics when the broker takes fewer than change: a replaced topic keeps its place", () => {
    const o = new Outbox(10);
    const sent = new Set<string>();
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 10; i++) o.putState(msg(`t/${i}`, String(round)));
      for (const m of o.take(4)) sent.add(m.topic);
    }
    expect(sent.size).toBe(10);
  });

  it("sends events before state, and clearState() keeps events", () => {
    const o = new Outbox(10);
    o.putState(msg("s"));
    o.putEvent({ topic: "e", payload: "1", retain: false, qos: 1 });
    o.clearState();
    expect(o.take(10).map((m) => m.topic)).toEqual(["e"]);
    o.putState(msg("s"));
    o.putEvent({ topic: "e", payload: "2", retain: false, qos: 1 });
    expect(o.take(10).map((m) => m.topic)).toEqual(["e", "s"]);
  });
});
