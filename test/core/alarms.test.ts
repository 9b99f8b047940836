/**
 * Alarms in core: the ids a cell has, raise / clear / ack (ISA-18.2 states),
 * and acknowledge through the one command path (CommandRouter), as the MQTT
 * `ack` and the OPC UA Acknowledge both reach it.
 */
import { describe, expect, it } from "vitest";
import { AlarmBank, alarmDefs, type AlarmInputs } from "../../src/core/alarms.js";
import { manualCell } from "./manual-cell.js";

function inputs(active: { interlock?: string[]; device?: string[]; overrun?: boolean }): AlarmInputs {
  return {
    interlock: (id) => (active.interlock?.includes(id) ? `tripped ${id}` : undefined),
    device: (name) => (active.device?.includes(name) ? `lost ${name}` : undefined),
    overrun: () => (active.overrun ? "overrun fault" : undefined),
  };
}

describe("AlarmBank", () => {
  it("has one alarm per interlock, per device and the overrun fault, with fixed ids", () => {
    const defs = alarmDefs(["door", "curtain"], ["io1", "robot"]);
    expect(defs.map((d) => d.id)).toEqual(["interlock.door", "interlock.curtain", "device.io1", "device.robot", "overrun"]);
    const bank = new AlarmBank(defs);
    expect(bank.states().every((s) => !s.active && s.acked)).toBe(true);
    expect(bank.has("device.io1")).toBe(true);
    expect(bank.has("door")).toBe(false);
  });

  it("raise → active unacked; ack → acked; clear → normal; events only on transitions, acks first", () => {
    const bank = new AlarmBank(alarmDefs(["door"], ["io1"]));
    expect(bank.update(inputs({ interlock: ["door"] }), 1, 1000)).toEqual([{ kind: "raise", id: "interlock.door", cycle: 1, wallMs: 1000, cause: "tripped door" }]);
    expect(bank.update(inputs({ interlock: ["door"] }), 2, 1010)).toEqual([]);
    expect(bank.state("interlock.door")).toMatchObject({ active: true, acked: false, message: "tripped door", raisedAtWallMs: 1000, raiseCount: 1 });
    expect(bank.acknowledge("interlock.door", "operator", "mqtt:tom")).toEqual({ accepted: true });
    expect(bank.update(inputs({ interlock: ["door"], device: ["io1"] }), 3, 1020)).toEqual([
      { kind: "ack", id: "interlock.door", cycle: 3, wallMs: 1020, cause: "acknowledged by operator mqtt:tom" },
      { kind: "raise", id: "device.io1", cycle: 3, wallMs: 1020, cause: "lost io1" },
    ]);
    expect(bank.update(inputs({ device: ["io1"] }), 4, 1030)).toEqual([{ kind: "clear", id: "interlock.door", cycle: 4, wallMs: 1030, cause: "cleared" }]);
    expect(bank.state("interlock.door")).toMatchObject({ active: false, acked: true });
  });

  it("a cleared alarm that was never acknowledged stays unacked until it is; a new raise needs a new ack", () => {
    const bank = new AlarmBank(alarmDefs([], ["io1"]));
    bank.update(inputs({ device: ["io1"] }), 1, 0);
    bank.update(inputs({}), 2, 0);
    expect(bank.state("device.io1")).toMatchObject({ active: false, acked: false });
    expect(bank.acknowledge("device.io1", "engineer")).toEqual({ accepted: true });
    bank.update(inputs({ device: ["io1"] }), 3, 0);
    expect(bank.state("device.io1")).toMatchObject({ active: true, acked: false, raiseCount: 2 });
  });

  it("refuses an ack that means nothing: unknown id, viewer, already acknowledged, not active", () => {
    const bank = new AlarmBank(alarmDefs(["door"], []));
    expect(bank.checkAcknowledge("interlock.nope", "engineer")).toMatchObject({ accepted: false, code: "unknown_target" });
    expect(bank.checkAcknowledge("overrun", "engineer")).toMatchObject({ accepted: false, code: "not_ready", reason: "alarm overrun is not active" });
    bank.update(inputs({ overrun: true }), 1, 0);
    expect(bank.acknowledge("overrun", "viewer")).toMatchObject({ accepted: false, code: "forbidden" });
    expect(bank.acknowledge("overrun", "operator")).toEqual({ accepted: true });
    expect(bank.acknowledge("overrun", "operator")).toMatchObject({ accepted: false, code: "not_ready", reason: "alarm overrun is already acknowledged" });
  });
});

describe("alarms through CellLogic and the command router", () => {
  it("an interlock trip raises interlock.<id>; acknowledge goes through the router and shows as an event in the next cycle", () => {
    const c = manualCell();
    const inputsOf = () => ({
      interlock: (id: string) => (c.logic.interlocks.state(id)?.tripped ? "tripped" : undefined),
      device: () => undefined,
      overrun: () => undefined,
    });
    c.cycle();
    expect(c.logic.updateAlarms(inputsOf(), 0, 0)).toEqual([]);
    expect(c.send({ kind: "acknowledge", id: "interlock.door" }, "operator")).toMatchObject({ accepted: false, code: "not_ready" });
    c.cycle({ door: false });
    expect(c.logic.updateAlarms(inputsOf(), 1, 10)).toEqual([expect.objectContaining({ kind: "raise", id: "interlock.door" })]);
    expect(c.send({ kind: "acknowledge", id: "interlock.door" }, "viewer")).toMatchObject({ accepted: false, code: "forbidden" });
    expect(c.send({ kind: "acknowledge", id: "interlock.nope" }, "operator")).toMatchObject({ accepted: false, code: "unknown_target" });
    expect(c.send({ kind: "acknowledge", id: "interlock.door" }, "operator")).toEqual({ accepted: true });
    expect(c.logic.alarms.state("interlock.door")!.acked).toBe(false); // applied at the next cycle, not in submit()
    const r = c.cycle({ door: false });
    expect(r.commands.map((x) => x.result)).toEqual([{ accepted: true }]);
    expect(c.logic.updateAlarms(inputsOf(), 2, 20)).toEqual([expect.objectContaining({ kind: "ack", id: "interlock.door", cause: "acknowledged by operator test" })]);
    expect(c.logic.alarms.state("interlock.door")).toMatchObject({ active: true, acked: true });
  });
});
