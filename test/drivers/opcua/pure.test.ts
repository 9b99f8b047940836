/**
 * The pure parts of the OPC UA driver: address parsing, StatusCode mapping,
 * value conversion, DataValue → sample, and the device plan.
 */
import { describe, expect, it } from "vitest";
import { parseAddress } from "../../../src/drivers/opcua/address.js";
import { SC, severityOf, statusOfCode } from "../../../src/drivers/opcua/status.js";
import { BUILTIN, fromVariant, kindFits, toVariant, writableAs } from "../../../src/drivers/opcua/codec.js";
import { applyValue, pointValue } from "../../../src/drivers/opcua/values.js";
import { defaultPkiDir } from "../../../src/drivers/opcua/plan.js";
import { OPCUA_STATUS_CODE, type Status, type Value } from "../../../src/core/sample.js";

describe("parseAddress", () => {
  it.each([
    ["ns=2;s=Robot.ServoOn", { kind: "node", ns: 2, idType: "s", id: "Robot.ServoOn" }],
    ["ns=3;i=1001", { kind: "node", ns: 3, idType: "i", id: "1001" }],
    ["i=2258", { kind: "node", ns: 0, idType: "i", id: "2258" }],
    ["nsu=urn:vendor:robot;s=A;B", { kind: "node-uri", uri: "urn:vendor:robot", idType: "s", id: "A;B" }],
    ["ns=1;g=72962b91-fa75-4ae6-8d28-b404dc7daf63", { kind: "node", ns: 1, idType: "g" }],
    ["/2:Robot/2:ServoOn", { kind: "browse", path: "/2:Robot/2:ServoOn" }],
  ])("%s", (text, want) => {
    const r = parseAddress(text);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.address).toMatchObject(want);
  });

  it.each([
    ["Robot.ServoOn", /neither a NodeId/],
    ["ns=2;x=1", /identifier must be/],
    ["ns=2;i=abc", /i= needs an integer/],
    ["ns=70000;i=1", /above 65535/],
    ["ns=1;g=nope", /GUID/],
    ["/2:Robot//x", /each step/],
    ["nsu=urn:x;s=", /empty identifier/],
  ])("refuses %s", (text, msg) => {
    const r = parseAddress(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(msg);
  });
});

describe("StatusCode → cellio status", () => {
  it("maps every status cellio names onto exactly its own OPC UA StatusCode (1:1 both ways)", () => {
    for (const [status, code] of Object.entries(OPCUA_STATUS_CODE) as [Status, number][]) expect(statusOfCode(code)).toBe(status === "uncertain_last_usable" ? "uncertain_last_usable" : status);
  });
  it("maps others by severity and meaning, ignoring the info bits", () => {
    expect(statusOfCode(0x00000000)).toBe("good");
    expect(statusOfCode(0x00a00000)).toBe("good"); // GoodLocalOverride
    expect(statusOfCode(0x408f0000)).toBe("uncertain_last_usable"); // Uncertain_NoCommunicationLastUsableValue
    expect(statusOfCode(SC.BadSensorFailure)).toBe("bad_device_failure");
    expect(statusOfCode(SC.BadNodeIdUnknown)).toBe("bad_config_error");
    expect(statusOfCode(SC.BadNotConnected)).toBe("bad_no_communication");
    expect(statusOfCode(SC.BadTimeout | 0x0400)).toBe("bad_timeout");
    expect(statusOfCode(0x80ab0000)).toBe("bad_device_failure"); // any other Bad
    expect(severityOf(0xc0000000)).toBe("bad");
  });
});

describe("codec", () => {
  it("fits kinds to built-in types", () => {
    expect(kindFits("bool", BUILTIN.Boolean)).toBe(true);
    expect(kindFits("bool", BUILTIN.UInt16)).toBe(false);
    expect(kindFits("int", BUILTIN.Int64)).toBe(true);
    expect(kindFits("int", BUILTIN.Double)).toBe(false);
    expect(kindFits("float", BUILTIN.UInt16)).toBe(true);
    expect(kindFits("string", BUILTIN.LocalizedText)).toBe(true);
    expect(writableAs("string", BUILTIN.LocalizedText)).toBe(false);
  });
  it("reads variants", () => {
    expect(fromVariant(BUILTIN.Int64, [0xffffffff, 0xfffffffe])).toEqual({ ok: true, value: -2 });
    expect(fromVariant(BUILTIN.UInt64, [1, 0])).toEqual({ ok: true, value: 2 ** 32 });
    expect(fromVariant(BUILTIN.LocalizedText, { text: "hi" })).toEqual({ ok: true, value: "hi" });
    expect(fromVariant(BUILTIN.Boolean, 1).ok).toBe(false);
  });
  it("writes variants with range checks", () => {
    expect(toVariant(BUILTIN.UInt16, 65535)).toEqual({ ok: true, value: 65535 });
    expect(toVariant(BUILTIN.UInt16, 65536)).toMatchObject({ ok: false, error: expect.stringMatching(/out of range for UInt16/) as unknown });
    expect(toVariant(BUILTIN.SByte, -129).ok).toBe(false);
    expect(toVariant(BUILTIN.Int64, -2)).toEqual({ ok: true, value: [0xffffffff, 0xfffffffe] });
    expect(toVariant(BUILTIN.Boolean, 1).ok).toBe(false);
    expect(toVariant(BUILTIN.Double, Number.NaN).ok).toBe(false);
  });
});

describe("DataValue → process image", () => {
  const src = new Date(1_700_000_000_000);
  it("keeps the source timestamp, scales, and ignores the value of a Bad status", () => {
    expect(pointValue({ code: 0, variantType: BUILTIN.UInt16, value: 7, sourceTs: src, serverTs: null }, { gain: 2, offset: 1 }, 5)).toEqual({ status: "good", value: 15, sourceTs: src.getTime() });
    expect(pointValue({ code: SC.BadSensorFailure, variantType: BUILTIN.UInt16, value: 7, sourceTs: null, serverTs: src }, undefined, 5)).toEqual({ status: "bad_device_failure", value: undefined, sourceTs: src.getTime() });
    expect(pointValue({ code: 0, variantType: 0, value: null, sourceTs: null, serverTs: null }, undefined, 5)).toMatchObject({ status: "bad_device_failure", sourceTs: 5 });
  });
  it("puts good values, marks other statuses, and marks a point without fresh data Bad_NoCommunication", () => {
    const calls: unknown[] = [];
    const sink = { put: (i: number, v: Value, ts: number) => void calls.push(["put", i, v, ts]), mark: (ix: readonly number[], s: Status) => void calls.push(["mark", ix[0], s]) };
    applyValue(sink, 1, { status: "good", value: 3, sourceTs: 9 });
    applyValue(sink, 2, { status: "uncertain_last_usable", value: 4, sourceTs: 9 });
    applyValue(sink, 3, { status: "bad_timeout", value: undefined, sourceTs: 9 });
    applyValue(sink, 4, undefined);
    expect(calls).toEqual([["put", 1, 3, 9], ["put", 2, 4, 9], ["mark", 2, "uncertain_last_usable"], ["mark", 3, "bad_timeout"], ["mark", 4, "bad_no_communication"]]);
  });
});

describe("PKI folder", () => {
  it("defaults to $STATE_DIRECTORY/pki, else state/pki next to the config file", () => {
    expect(defaultPkiDir("/etc/cellio", { STATE_DIRECTORY: "/var/lib/cellio" })).toBe("/var/lib/cellio/pki");
    expect(defaultPkiDir("/etc/cellio", {})).toBe("/etc/cellio/state/pki");
  });

  it("is pki/ in the cell's state folder when one is resolved (--state-dir, state.dir), whatever $STATE_DIRECTORY says", () => {
    expect(defaultPkiDir("/etc/cellio", { STATE_DIRECTORY: "/var/lib/cellio" }, "/srv/cell-7")).toBe("/srv/cell-7/pki");
    expect(defaultPkiDir("/etc/cellio", {}, "/srv/cell-7")).toBe("/srv/cell-7/pki");
  });
});
