/**
 * The cell the northbound control-mode tests run (MQTT mqtt/mode.test.ts,
 * OPC UA opcua-server/control-mode.test.ts): one Modbus TCP device `io1` on
 * a simulator, its key switch (di:0, `io1.key_manual`) the permit of
 * `manual_mode`, one logic-driven output (coil:0). Each test appends its own
 * north block (`mqtt:`, `opcua:`).
 */
import type { SimDevice } from "../integration/helpers.js";

export interface ManualModeCell {
  readonly cellId: string;
  /** The simulator's Modbus TCP port. */
  readonly port: number;
  /** Cycle period; the input and output budgets are 40 % of it each. */
  readonly periodMs: number;
  /** YAML appended at the top level (the `mqtt:` or `opcua:` block). */
  readonly north: string;
}

export function manualModeCellYaml(c: ManualModeCell): string {
  const budget = Math.round(c.periodMs * 0.4);
  return `
version: 1
cell: { id: ${c.cellId} }
cycle: { period_ms: ${c.periodMs}, input_budget_ms: ${budget}, output_budget_ms: ${budget}, overrun: { fault_after: 1000 } }
devices:
  io1:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${c.port}
    timeout_ms: 500
    stale_after_ms: 3000
    points:
      key_manual: { address: "di:0" }
      lamp:       { address: "coil:0", direction: output, safe: false }
logic:
  io1.lamp: "false"
manual_mode:
  permit: "io1.key_manual"
${c.north.replace(/^\n/, "")}`;
}

/** Turns the simulated key switch to "manual allowed" (true) or away from it (false). */
export function setKeySwitch(sim: SimDevice, manualAllowed: boolean): void {
  sim.bank.setBit("di", 0, manualAllowed);
}
