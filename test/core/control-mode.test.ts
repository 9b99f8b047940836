/**
 * Manual mode through the pure middle of the cycle (CellLogic): the set_mode
 * command, roles, the key-switch permit, sequences halted and reset, outputs
 * from manual values or safe, interlocks still forcing, and back to auto.
 */
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/load.js";
import { MANUAL_CELL, manualCell } from "./manual-cell.js";

describe("manual mode: switching", () => {
  it("is refused where the config has no manual_mode block", () => {
    const { send } = manualCell(MANUAL_CELL.replace(/manual_mode:[\s\S]*$/, ""));
    expect(send({ kind: "set_mode", mode: "manual" })).toMatchObject({ accepted: false, code: "forbidden" });
  });

  it("is for engineers by default; manual_mode.roles can add operators; viewers never", () => {
    const c = manualCell();
    c.cycle();
    expect(c.send({ kind: "set_mode", mode: "manual" }, "operator")).toMatchObject({ accepted: false, code: "forbidden" });
    expect(c.send({ kind: "set_mode", mode: "manual" }, "viewer")).toMatchObject({ accepted: false, code: "forbidden" });
    expect(c.send({ kind: "set_mode", mode: "manual" })).toEqual({ accepted: true });
    const o = manualCell(MANUAL_CELL.replace('permit: "io1.key_manual"', 'permit: "io1.key_manual"\n  roles: [operator]'));
    o.cycle();
    expect(o.send({ kind: "set_mode", mode: "manual" }, "operator")).toEqual({ accepted: true });
  });

  it("takes effect at the next cycle, with a switch event naming who; a second switch to the same mode is refused", () => {
    const c = manualCell();
    expect(c.cycle().control).toBe("auto");
    c.send({ kind: "set_mode", mode: "manual" });
    const r = c.cycle();
    expect(r.control).toBe("manual");
    expect(r.modeEvents).toEqual([{ kind: "switch", from: "auto", to: "manual", cycle: 1, wallMs: 1_000_010, by: "engineer test", cause: "set_mode" }]);
    expect(r.commands[0]!.result).toEqual({ accepted: true });
    expect(c.send({ kind: "set_mode", mode: "manual" })).toMatchObject({ accepted: false, code: "not_ready", reason: "already in manual mode" });
    expect(c.cycle().modeEvents).toEqual([]);
  });
});

describe("manual mode: outputs", () => {
  it("stops what logic, latches and sequences drove: every output safe until it is set", () => {
    const c = manualCell();
    c.cycle({ start: true }); // horn latch sets; feed enters idle
    const auto = c.cycle({ part: false }); // feed idle -> run
    c.cycle({ part: false });
    expect(auto.out("io1.horn")).toBe(true);
    expect(c.cycle({ part: true }).out("io1.lamp")).toBe(true);
    c.send({ kind: "set_mode", mode: "manual" });
    const m = c.cycle({ part: true });
    expect([m.out("io1.lamp"), m.out("io1.horn"), m.out("io1.conveyor_run"), m.out("io1.speed")]).toEqual([false, false, false, 0]);
  });

  it("lets an engineer set outputs that logic or a sequence drives in auto; they take the value from the next cycle", () => {
    const c = manualCell();
    c.cycle();
    expect(c.send({ kind: "set_point", point: "io1.lamp", value: true })).toMatchObject({ accepted: false, code: "not_ready" });
    c.send({ kind: "set_mode", mode: "manual" });
    c.cycle();
    expect(c.send({ kind: "set_point", point: "io1.lamp", value: true })).toEqual({ accepted: true });
    expect(c.send({ kind: "set_point", point: "io1.conveyor_run", value: true })).toEqual({ accepted: true });
    expect(c.send({ kind: "set_point", point: "io1.speed", value: 20 })).toEqual({ accepted: true });
    const r = c.cycle({ part: false });
    expect([r.out("io1.lamp"), r.out("io1.conveyor_run"), r.out("io1.speed")]).toEqual([true, true, 20]);
  });

  it("still forces the outputs of a tripped interlock, drops their manual values, and refuses setting them", () => {
    const c = manualCell();
    c.cycle();
    c.send({ kind: "set_mode", mode: "manual" });
    c.cycle();
    c.send({ kind: "set_point", point: "io1.conveyor_run", value: true });
    c.send({ kind: "set_point", point: "io1.spare", value: true });
    expect(c.cycle().out("io1.conveyor_run")).toBe(true);
    const tripped = c.cycle({ door: false });
    expect(tripped.interlockEvents.map((e) => e.kind)).toEqual(["trip"]);
    expect(tripped.out("io1.conveyor_run")).toBe(false);
    expect(tripped.out("io1.spare")).toBe(true); // not forced by the interlock
    expect(c.send({ kind: "set_point", point: "io1.conveyor_run", value: true })).toMatchObject({ accepted: false, code: "interlocked" });
    c.cycle({ door: true });
    expect(c.send({ kind: "reset_interlock", id: "door" }, "operator")).toEqual({ accepted: true });
    // the manual value was dropped at the trip: nothing restarts by itself after the reset
    expect(c.cycle({ door: true }).out("io1.conveyor_run")).toBe(false);
  });
});

describe("manual mode: sequences", () => {
  it("halts and resets every sequence on entry, holds it in its initial step while manual, and restarts it afresh in auto", () => {
    const c = manualCell();
    c.cycle();
    c.cycle({ part: false }); // idle -> run
    expect(c.logic.sequences.state("feed")!.step).toBe("run");
    c.send({ kind: "set_mode", mode: "manual" });
    const m = c.cycle({ part: false });
    expect(m.sequenceEvents).toEqual([expect.objectContaining({ kind: "reset", id: "feed", from: "run", to: "idle", cause: "manual mode" })]);
    expect(c.logic.sequences.state("feed")!.step).toBe("idle");
    for (let i = 0; i < 5; i++) expect(c.cycle({ part: false }).sequenceEvents).toEqual([]); // idle's transition is true, but not taken
    c.send({ kind: "set_mode", mode: "auto" });
    const back = c.cycle({ part: false }); // entered afresh: a transition never fires in its entry cycle
    expect(back.control).toBe("auto");
    expect(back.sequenceEvents).toEqual([]);
    expect(c.cycle({ part: false }).sequenceEvents).toEqual([expect.objectContaining({ kind: "step", from: "idle", to: "run" })]);
  });
});

describe("manual mode: back to auto", () => {
  it("clears every manual value; logic drives again; an output latch needs a fresh set", () => {
    const c = manualCell();
    c.cycle({ start: true }); // horn set in auto
    c.send({ kind: "set_mode", mode: "manual" });
    c.cycle();
    c.send({ kind: "set_point", point: "io1.spare", value: true });
    c.send({ kind: "set_point", point: "io1.lamp", value: true });
    expect(c.cycle().out("io1.spare")).toBe(true);
    c.send({ kind: "set_mode", mode: "auto" });
    const a = c.cycle({ part: false });
    expect(a.modeEvents).toEqual([expect.objectContaining({ kind: "switch", from: "manual", to: "auto" })]);
    expect([a.out("io1.spare"), a.out("io1.lamp"), a.out("io1.horn")]).toEqual([false, false, false]);
    expect(c.cycle({ part: true }).out("io1.lamp")).toBe(true);
    expect(c.cycle({ start: true }).out("io1.horn")).toBe(true);
  });
});

describe("manual mode: the permit (key switch)", () => {
  it("refuses manual while the permit is false or its input is not good, naming why", () => {
    const c = manualCell();
    c.cycle({ key: false });
    const refused = c.send({ kind: "set_mode", mode: "manual" });
    expect(refused).toMatchObject({ accepted: false, code: "interlocked" });
    expect(!refused.accepted && refused.reason).toBe("manual permit is false: io1.key_manual");
    c.cycle({ keyBad: true });
    expect(c.send({ kind: "set_mode", mode: "manual" })).toMatchObject({ accepted: false, code: "interlocked" });
    c.cycle({ key: true });
    expect(c.send({ kind: "set_mode", mode: "manual" })).toEqual({ accepted: true });
  });

  it("when it drops in manual: a permit_lost event, every manual value cleared, set_point refused, and the cell stays in manual", () => {
    const c = manualCell();
    c.cycle();
    c.send({ kind: "set_mode", mode: "manual" });
    c.cycle();
    c.send({ kind: "set_point", point: "io1.spare", value: true });
    expect(c.cycle().out("io1.spare")).toBe(true);
    const lost = c.cycle({ key: false });
    expect(lost.modeEvents).toEqual([expect.objectContaining({ kind: "permit_lost", from: "manual", to: "manual", by: "cellio", cause: "io1.key_manual" })]);
    expect(lost.out("io1.spare")).toBe(false);
    expect(lost.control).toBe("manual");
    const blocked = c.send({ kind: "set_point", point: "io1.spare", value: true });
    expect(blocked).toMatchObject({ accepted: false, code: "interlocked" });
    expect(!blocked.accepted && blocked.reason).toBe("io1.spare cannot be set: manual permit is false: io1.key_manual");
    c.cycle({ key: true });
    expect(c.cycle({ key: true }).out("io1.spare")).toBe(false); // nothing comes back by itself
    expect(c.send({ kind: "set_point", point: "io1.spare", value: true })).toEqual({ accepted: true });
    expect(c.cycle({ key: true }).control).toBe("manual");
  });

  it("is a config error with path and line when it names an unknown point or is not bool", () => {
    expect(() => loadConfigText(MANUAL_CELL.replace('permit: "io1.key_manual"', 'permit: "io1.key_manul"'))).toThrow(/:\d+:\d+: manual_mode\.permit: unknown point 'io1\.key_manul'/);
    expect(() => loadConfigText(MANUAL_CELL.replace('permit: "io1.key_manual"', 'permit: "io1.speed"'))).toThrow(/manual_mode\.permit/);
  });
});
