/**
 * The north bridge without threads: samples through the encoding, the
 * main-side CycleBridge (only what changed, nothing for a lagging worker,
 * events bounded, the control mode when it changed and after a reset) and
 * the worker-side CellMirror.
 */
import { describe, expect, it } from "vitest";
import type { ModeEvent } from "../../../src/core/control-mode.js";
import type { InterlockState } from "../../../src/core/interlocks.js";
import { INITIAL_SAMPLE, goodSample, sample, type Sample } from "../../../src/core/sample.js";
import type { SequenceState } from "../../../src/core/sequences.js";
import { CycleBridge, type BridgeCycle, type BridgeSource } from "../../../src/north/host/bridge.js";
import { ControlTracker } from "../../../src/north/host/control.js";
import { CellMirror, type MirrorCycle } from "../../../src/north/host/mirror.js";
import { applySamples, encodeSamples, type CycleDelta, type NorthInit } from "../../../src/north/host/protocol.js";
import { createShared } from "../../../src/north/host/sync-call.js";
import { paceFor } from "../../../src/north/host/wiring.js";
import { pointTable } from "../../helpers/point-table.js";

const hist = { summary: () => ({ p50: 1, p99: 2, max: 3 }) };

function source(il: InterlockState[], sq: SequenceState[], dev: { state: "good" | "bad"; lastError: string }): BridgeSource {
  return {
    interlocks: () => il,
    sequences: () => sq,
    devices: () => [{ name: "io", ...dev, counters: { reads: 5, readFailures: 0, writes: 1, writeFailures: 0, deadlineMisses: 0, readLatency: hist } }],
    loop: () => ({ cycles: 10, skipped: 0, overruns: 0, inputMisses: 0, outputMisses: 0, lateness: { p50: 0.1, p99: 0.2, max: 0.3 }, duration: { p99: 1 } }),
  };
}

function cycle(k: number, image: Sample[], extra: Partial<BridgeCycle> = {}): BridgeCycle {
  return { cycle: k, dueMs: k * 10, wallMs: 1000 + k, mode: "running", latenessMs: 0.1, durationMs: 1, image, control: "auto", interlockEvents: [], sequenceEvents: [], modeEvents: [], commands: [], ...extra };
}

function clockAt(): { now: () => number; wall: () => number; t: number } {
  const c = { t: 0, now: () => c.t, wall: () => c.t };
  return c;
}

describe("sample encoding", () => {
  it("round-trips null, booleans, numbers, strings and every status", () => {
    const image: Sample[] = [
      INITIAL_SAMPLE,
      goodSample(true, 5),
      goodSample(false, 6),
      goodSample(-12.5, 7),
      goodSample("héllo", 8),
      sample(42, "bad_no_communication", 9),
      sample("x", "uncertain_last_usable", 10),
    ];
    const idx = Int32Array.from(image.map((_, i) => i));
    const e = encodeSamples(image, idx, image.length);
    const out = new Array<Sample>(image.length).fill(INITIAL_SAMPLE);
    applySamples(structuredClone(e), out);
    expect(out).toEqual(image);
  });
});

describe("CycleBridge + CellMirror", () => {
  const il: InterlockState[] = [{ id: "door", permitted: true, tripped: false, latched: true, tripCount: 0, lastCause: "", lastTripWallMs: 0 }];
  const sq: SequenceState[] = [{ id: "pick", step: "idle", stepElapsedMs: 0, lastFault: "", enteredAtMs: 0, faulted: false }];

  function setup(): { bridge: CycleBridge; mirror: CellMirror; clock: ReturnType<typeof clockAt>; dev: { state: "good" | "bad"; lastError: string } } {
    const clock = clockAt();
    const dev = { state: "good" as "good" | "bad", lastError: "" };
    const { points } = pointTable([
      ["io.a", "int", "input"],
      ["io.b", "int", "input"],
      ["io.c", "int", "input"],
    ]);
    const bridge = new CycleBridge(source(il, sq, dev), { points: 3, clock, paceMs: 10, maxEvents: 3 });
    const init: NorthInit = {
      cellId: "c",
      periodMs: 10,
      points,
      devices: ["io"],
      interlocks: [{ id: "door" }],
      sequences: [{ id: "pick" }],
      config: {},
      baseDir: "/",
      stateDir: "/state",
      logLevel: "silent",
      alarms: false,
      shared: createShared(),
      commandTimeoutMs: 100,
    };
    return { bridge, mirror: new CellMirror(init), clock, dev };
  }

  it("sends only the samples that changed, keeps unchanged Sample objects in the mirror", () => {
    const { bridge, mirror, clock } = setup();
    const a = goodSample(1, 1);
    const b = goodSample(2, 1);
    const c = goodSample(3, 1);
    const first = bridge.onCycle(cycle(0, [a, b, c]), 0)!;
    expect(first.delta.samples?.n).toBe(3);
    expect(first.delta.interlocks).toHaveLength(1);
    expect(first.delta.sequences).toHaveLength(1);
    expect(first.delta.devices).toHaveLength(1);
    expect(first.delta.loop?.cycles).toBe(10);
    const view = mirror.opcuaView();
    let latest: readonly Sample[] = [];
    mirror.cycles$.subscribe((x) => (latest = x.image));
    mirror.apply(structuredClone(first.delta));

    clock.t = 10;
    const b2 = goodSample(20, 2);
    const second = bridge.onCycle(cycle(1, [a, b2, c]), 1)!;
    expect(second.delta.samples?.n).toBe(1);
    expect(second.delta.interlocks).toBeUndefined(); // unchanged
    expect(second.delta.devices).toBeUndefined(); // no state change, not yet the stats pace
    const firstImage = latest;
    mirror.apply(structuredClone(second.delta));
    expect(latest).not.toBe(firstImage); // a new image per cycle
    expect(latest[1]).toEqual(b2);
    expect(latest[0]).toBe(firstImage[0]); // the same Sample object: unchanged
    expect(view.interlockStates()[0]).toMatchObject({ id: "door", permitted: true });
    expect(view.deviceStates()[0]!.counters.readLatency.summary().p99).toBe(2);
  });

  it("posts nothing to a worker that has not applied the last delta, then sends everything that changed meanwhile", () => {
    const { bridge, clock, dev } = setup();
    const s = [goodSample(1, 1), goodSample(2, 1), goodSample(3, 1)];
    expect(bridge.onCycle(cycle(0, s), 0)).toBeDefined();
    const lagging = [goodSample(9, 2), s[1]!, s[2]!];
    for (let k = 1; k <= 5; k++) {
      clock.t = k * 10;
      expect(bridge.onCycle(cycle(k, lagging, { interlockEvents: [{ kind: "trip", id: "door", cycle: k, wallMs: k, cause: "x" }] }), 0)).toBeUndefined();
    }
    expect(bridge.counters.lagged).toBe(5);
    dev.state = "bad";
    dev.lastError = "gone";
    clock.t = 60;
    const later = [lagging[0]!, lagging[1]!, goodSample(7, 3)];
    const out = bridge.onCycle(cycle(6, later), 1)!;
    expect(out.delta.cycle).toBe(6);
    expect(out.delta.samples?.n).toBe(2); // point 0 (changed while lagging) and point 2
    expect(out.delta.interlockEvents).toHaveLength(3); // bounded: the oldest two dropped
    expect(out.delta.droppedEvents).toBe(2);
    expect(out.delta.devices?.[0]).toMatchObject({ state: "bad", lastError: "gone" });
  });

  it("paces deltas: none within paceMs of the previous one", () => {
    const { bridge, clock } = setup();
    const s = [goodSample(1, 1), goodSample(2, 1), goodSample(3, 1)];
    expect(bridge.onCycle(cycle(0, s), 0)).toBeDefined();
    clock.t = 5;
    expect(bridge.onCycle(cycle(1, s, { dueMs: 5 }), 1)).toBeUndefined();
    clock.t = 10;
    const d = bridge.onCycle(cycle(2, s, { dueMs: 10 }), 1) as { delta: CycleDelta } | undefined;
    expect(d?.delta.samples).toBeUndefined();
  });
});

describe("pacing on the cycles' schedule", () => {
  /** Deltas posted for cycles k = 0..ends.length-1 due every `periodMs`, the bridge called at clock `ends[k]`. */
  function posted(paceMs: number, periodMs: number, ends: readonly number[]): number[] {
    const clock = clockAt();
    const bridge = new CycleBridge(source([], [], { state: "good", lastError: "" }), { points: 1, clock, paceMs });
    const out: number[] = [];
    let applied = 0;
    ends.forEach((t, k) => {
      clock.t = t;
      const d = bridge.onCycle(cycle(k, [goodSample(k, 1)], { dueMs: 1000 + k * periodMs }), applied);
      if (d) {
        applied = d.delta.seq;
        out.push(k);
      }
    });
    return out;
  }

  it("a pace of one period posts every cycle, though the cycles end a little earlier or later than one period apart", () => {
    // the bridge runs at the end of a cycle, which moves with the devices' answer times
    expect(posted(100, 100, [0, 100.4, 199.9, 300.2, 399.6])).toEqual([0, 1, 2, 3, 4]);
  });

  it("a pace of five periods posts every 5th cycle, not the 6th when the 5th ended early", () => {
    const ends = Array.from({ length: 16 }, (_, k) => k * 10 + (k % 5 === 0 ? -0.3 : 0.2));
    expect(posted(50, 10, ends)).toEqual([0, 5, 10, 15]);
  });
});

describe("paceFor", () => {
  it("is half the fastest publish interval, at least one period, at most 50 ms", () => {
    const mqtt = { publish_interval_ms: 100 } as never;
    const opcua = { publish_interval_ms: 50 } as never;
    expect(paceFor(10, { mqtt, opcua })).toBe(25);
    expect(paceFor(10, { mqtt })).toBe(50);
    expect(paceFor(100, { opcua })).toBe(100);
    expect(paceFor(10, { mqtt: { publish_interval_ms: 1000 } as never })).toBe(50);
    expect(paceFor(10, {})).toBe(10);
  });
});

describe("alarms through the bridge", () => {
  it("sends the core's alarm states when they change; the mirror offers them to the OPC UA server", () => {
    const clock = clockAt();
    const alarms = [{ id: "interlock.door", active: true, acked: false, message: "tripped" }];
    const src = { ...source([], [], { state: "good", lastError: "" }), alarms: () => alarms };
    const bridge = new CycleBridge(src, { points: 1, clock, paceMs: 10 });
    const { points } = pointTable([["io.a", "int", "input"]]);
    const mirror = new CellMirror({ cellId: "c", periodMs: 10, points, devices: ["io"], interlocks: [], sequences: [], config: {}, baseDir: "/", stateDir: "/state", logLevel: "silent", alarms: true, shared: createShared(), commandTimeoutMs: 100 });
    const img = [goodSample(1, 1)];
    const d1 = bridge.onCycle(cycle(0, img), 0)!.delta;
    expect(d1.alarms).toEqual(alarms);
    mirror.apply(structuredClone(d1));
    expect(mirror.opcuaView().alarmStates?.()).toEqual(alarms);
    clock.t = 10;
    expect(bridge.onCycle(cycle(1, img), 1)!.delta.alarms).toBeUndefined();
    alarms[0] = { ...alarms[0]!, acked: true };
    clock.t = 20;
    const d3 = bridge.onCycle(cycle(2, img), 2)!.delta;
    expect(d3.alarms).toEqual([{ id: "interlock.door", active: true, acked: true, message: "tripped" }]);
    mirror.apply(structuredClone(d3));
    expect(mirror.opcuaView().alarmStates?.()[0]?.acked).toBe(true);
  });
});

describe("the control mode through the bridge", () => {
  const sw = (k: number, to: "auto" | "manual", by = "engineer mqtt:erin"): ModeEvent => ({
    kind: "switch",
    from: to === "manual" ? "auto" : "manual",
    to,
    cycle: k,
    wallMs: 1000 + k,
    by,
    cause: "set_mode",
  });

  function setup(permitted: { v: boolean }, maxEvents = 1000) {
    const clock = clockAt();
    const src: BridgeSource = { ...source([], [], { state: "good", lastError: "" }), manualPermitted: () => permitted.v };
    const bridge = new CycleBridge(src, { points: 1, clock, paceMs: 10, maxEvents });
    const { points } = pointTable([["io.a", "int", "input"]]);
    const mirror = new CellMirror({ cellId: "c", periodMs: 10, points, devices: ["io"], interlocks: [], sequences: [], config: {}, baseDir: "/", stateDir: "/state", logLevel: "silent", alarms: false, shared: createShared(), commandTimeoutMs: 100 });
    const seen: MirrorCycle[] = [];
    mirror.cycles$.subscribe((c) => seen.push(c));
    let applied = 0;
    /** One cycle due (and run) at time `t`; the delta (if posted) is applied by the mirror. */
    const step = (t: number, c: BridgeCycle): CycleDelta | undefined => {
      clock.t = t;
      const out = bridge.onCycle({ ...c, dueMs: t }, applied);
      if (out === undefined) return undefined;
      mirror.apply(structuredClone(out.delta));
      applied = out.delta.seq;
      return out.delta;
    };
    return { bridge, mirror, seen, step, resetWorker: () => (applied = 0) };
  }

  it("carries the mode in the first delta, then only when it changed; its events always, in order", () => {
    const permitted = { v: true };
    const { seen, step } = setup(permitted);
    const img = [goodSample(1, 1)];
    const d0 = step(0, cycle(0, img))!;
    expect(d0.control).toEqual({ mode: "auto", sinceWallMs: 1000, by: "", manualPermitted: true, permitSinceWallMs: 1000 });
    expect(step(10, cycle(1, img))!.control).toBeUndefined();
    expect(step(20, cycle(2, img))!.control).toBeUndefined();

    const d3 = step(30, cycle(3, img, { control: "manual", modeEvents: [sw(3, "manual")] }))!;
    expect(d3.control).toEqual({ mode: "manual", sinceWallMs: 1003, by: "engineer mqtt:erin", manualPermitted: true, permitSinceWallMs: 1000 });
    expect(d3.modeEvents).toEqual([sw(3, "manual")]);
    expect(seen.at(-1)!.controlState).toEqual(d3.control);
    expect(seen.at(-1)!.modeEvents).toEqual([sw(3, "manual")]);
    expect(step(40, cycle(4, img, { control: "manual" }))!.control).toBeUndefined();
    expect(seen.at(-1)!.controlState?.mode).toBe("manual"); // the mirror keeps it
    expect(seen.at(-1)!.modeEvents).toEqual([]);

    // The permit drops in manual: the state changes (manualPermitted), the event comes along.
    permitted.v = false;
    const lost: ModeEvent = { kind: "permit_lost", from: "manual", to: "manual", cycle: 5, wallMs: 1005, by: "cellio", cause: "panel.key_manual is false" };
    const d5 = step(50, cycle(5, img, { control: "manual", modeEvents: [lost] }))!;
    expect(d5.control).toEqual({ mode: "manual", sinceWallMs: 1003, by: "engineer mqtt:erin", manualPermitted: false, permitSinceWallMs: 1005 });
    expect(d5.modeEvents).toEqual([lost]);
  });

  it("a switch in a cycle that is not posted (pace, lagging worker) still dates the mode and names who switched", () => {
    const { step, bridge } = setup({ v: true });
    const img = [goodSample(1, 1)];
    step(0, cycle(0, img));
    expect(step(5, cycle(1, img, { control: "manual", modeEvents: [sw(1, "manual", "engineer opcua:eve@s1")] }))).toBeUndefined(); // within paceMs
    expect(step(7, cycle(2, img, { control: "manual" }))).toBeUndefined();
    const d = step(10, cycle(3, img, { control: "manual" }))!;
    expect(d.control).toMatchObject({ mode: "manual", sinceWallMs: 1001, by: "engineer opcua:eve@s1" });
    expect(d.modeEvents).toEqual([sw(1, "manual", "engineer opcua:eve@s1")]);
    expect(bridge.counters.droppedEvents).toBe(0);
  });

  it("after reset() (a new worker) the first delta carries the whole mode again, with the original switch's time and author", () => {
    const { step, bridge, resetWorker } = setup({ v: true });
    const img = [goodSample(1, 1)];
    step(0, cycle(0, img));
    step(10, cycle(1, img, { control: "manual", modeEvents: [sw(1, "manual")] }));
    expect(step(20, cycle(2, img, { control: "manual" }))!.control).toBeUndefined();
    bridge.reset();
    resetWorker();
    // While no worker runs, the host only lets the bridge observe: the mode follows, events are kept.
    bridge.observe(cycle(3, img, { control: "auto", modeEvents: [sw(3, "auto", "engineer mqtt:bob")] }));
    bridge.observe(cycle(4, img, { control: "manual", modeEvents: [sw(4, "manual")] }));
    const d = step(100, cycle(5, img, { control: "manual" }))!;
    expect(d.seq).toBe(1);
    expect(d.samples?.n).toBe(1); // everything again
    expect(d.control).toEqual({ mode: "manual", sinceWallMs: 1004, by: "engineer mqtt:erin", manualPermitted: true, permitSinceWallMs: 1000 });
    expect(d.modeEvents?.map((e) => `${e.to} ${e.by}`)).toEqual(["auto engineer mqtt:bob", "manual engineer mqtt:erin"]);
  });

  it("bounds the mode events for a lagging worker: the oldest are dropped and counted, never silently", () => {
    const { step, bridge, mirror } = setup({ v: true }, 2);
    const img = [goodSample(1, 1)];
    step(0, cycle(0, img));
    // The worker has not applied delta 1: nothing is posted, events pile up.
    for (let k = 1; k <= 4; k++) {
      expect(bridge.onCycle(cycle(k, img, { control: k % 2 === 1 ? "manual" : "auto", modeEvents: [sw(k, k % 2 === 1 ? "manual" : "auto")] }), 0)).toBeUndefined();
    }
    const d = step(100, cycle(5, img))!;
    expect(d.modeEvents?.map((e) => e.cycle)).toEqual([3, 4]);
    expect(d.droppedEvents).toBe(2);
    expect(bridge.counters.droppedEvents).toBe(2);
    expect(mirror.mqttView().droppedEvents?.()).toBe(2); // MQTT diagnostics count them (dropped_events)
    expect(d.control).toMatchObject({ mode: "auto", sinceWallMs: 1004 });
  });
});

describe("ControlTracker", () => {
  it("returns the same object while nothing changed, a new one on a switch or a permit change", () => {
    const t = new ControlTracker();
    expect(t.update({ wallMs: 5 }, true)).toBeUndefined(); // a cycle without the mode
    const a = t.update({ wallMs: 10, control: "auto", modeEvents: [] }, false)!;
    expect(a).toEqual({ mode: "auto", sinceWallMs: 10, by: "", manualPermitted: false, permitSinceWallMs: 10 });
    expect(t.update({ wallMs: 20, control: "auto" }, false)).toBe(a);
    const b = t.update({ wallMs: 30, control: "auto" }, true)!;
    expect(b).toEqual({ ...a, manualPermitted: true, permitSinceWallMs: 30 });
    // Two switches in one cycle: the last one counts.
    const c = t.update({ wallMs: 40, control: "auto", modeEvents: [{ kind: "switch", wallMs: 40, by: "x" }, { kind: "switch", wallMs: 40, by: "y" }] }, true)!;
    expect(c).toMatchObject({ mode: "auto", sinceWallMs: 40, by: "y" });
    expect(t.update({ wallMs: 40, control: "auto", modeEvents: [{ kind: "switch", wallMs: 40, by: "y" }] }, true)).toBe(c); // idempotent per cycle
    // A permit_lost does not date the mode.
    expect(t.update({ wallMs: 50, control: "auto", modeEvents: [{ kind: "permit_lost", wallMs: 50, by: "cellio" }] }, true)).toBe(c);
    // A change without its event (not produced by the core) is dated by its cycle, with no author.
    expect(t.update({ wallMs: 60, control: "manual" }, true)).toMatchObject({ mode: "manual", sinceWallMs: 60, by: "" });
  });
});
