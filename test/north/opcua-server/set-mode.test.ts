/** The OPC UA SetMode method's argument mapping (the method itself calls the same submit() as the other Cell methods). */
import { describe, expect, it } from "vitest";
import { setModeCommand } from "../../../src/north/opcua-server/commands.js";

describe("OPC UA Cell.SetMode(Mode)", () => {
  it('maps "auto" and "manual" onto set_mode and nothing else', () => {
    expect(setModeCommand("manual")).toEqual({ kind: "set_mode", mode: "manual" });
    expect(setModeCommand("auto")).toEqual({ kind: "set_mode", mode: "auto" });
    for (const bad of ["Manual", "", "hand", 1, null, undefined, true]) expect(setModeCommand(bad)).toBeUndefined();
  });
});
