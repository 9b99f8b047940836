/**
 * The MQTT mapping of set_mode and of alarm acknowledge: `<prefix>/cmd/set_mode/<user>`
 * with `{"mode": "manual" | "auto"}`, and `cmd/ack/<user>` with an alarm id,
 * through MqttCommandHandler into a real CellLogic's command router.
 */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/infra/logger.js";
import { MqttCommandHandler, type IncomingCommand } from "../../../src/north/mqtt/commands.js";
import { topics } from "../../../src/north/mqtt/contract.js";
import { manualCell } from "../../core/manual-cell.js";

const clock = { now: () => 1000, wall: () => Date.UTC(2026, 0, 1) };
const msg = (topic: string, payload: unknown): IncomingCommand => ({ topic, payload: Buffer.from(JSON.stringify(payload)), retain: false });

function setup() {
  const cell = manualCell();
  const h = new MqttCommandHandler({
    topics: topics("cellio/t1"),
    roles: { alice: "operator", erin: "engineer" },
    port: cell.logic.commands,
    rateLimit: { burst: 100, perSecond: 1 },
    clock,
    log: silentLogger(),
  });
  cell.cycle();
  return { cell, h };
}

describe("MQTT set_mode", () => {
  it("switches the mode for an engineer; the cell is in manual from the next cycle", () => {
    const { cell, h } = setup();
    expect(h.handle(msg("cellio/t1/cmd/set_mode/erin", { mode: "manual" }))?.payload).toEqual({ accepted: true });
    const r = cell.cycle();
    expect(r.control).toBe("manual");
    expect(r.modeEvents[0]).toMatchObject({ kind: "switch", to: "manual", by: "engineer mqtt:erin" });
  });

  it("refuses an operator (default roles), a bad mode and unknown fields, each with a reply", () => {
    const { h } = setup();
    expect(h.handle(msg("cellio/t1/cmd/set_mode/alice", { mode: "manual" }))?.payload).toMatchObject({ accepted: false, code: "forbidden" });
    expect(h.handle(msg("cellio/t1/cmd/set_mode/erin", { mode: "hand" }))?.payload).toMatchObject({ accepted: false, code: "bad_command" });
    expect(h.handle(msg("cellio/t1/cmd/set_mode/erin", { mode: "auto", force: true }))?.payload).toMatchObject({ accepted: false, code: "bad_command" });
    expect(h.handle(msg("cellio/t1/cmd/set_mode/erin", { mode: "auto" }))?.payload).toMatchObject({ accepted: false, code: "not_ready", reason: "already in auto mode" });
  });

  it("acknowledges a core alarm through the router (no longer unknown_target)", () => {
    const { cell, h } = setup();
    cell.cycle({ door: false });
    cell.logic.updateAlarms({ interlock: (id) => (cell.logic.interlocks.state(id)?.tripped ? "tripped" : undefined), device: () => undefined, overrun: () => undefined }, 1, 0);
    expect(h.handle(msg("cellio/t1/cmd/ack/alice", { id: "interlock.door" }))?.payload).toEqual({ accepted: true });
    cell.cycle({ door: false });
    expect(cell.logic.alarms.state("interlock.door")!.acked).toBe(true);
  });
});
