import { afterEach, describe, expect, it, vi } from "vitest";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { FaultInjector, OrderedSender, newStats, serveRequest } from "../../../simulators/modbus/faults.js";

const kinds = (f: FaultInjector, unit: number, n: number): string[] =>
  Array.from({ length: n }, () => {
    const a = f.decide(unit).action;
    return a.type === "exception" ? `ex${a.code}` : a.type;
  });

describe("FaultInjector.decide", () => {
  it("answers normally with no faults", () => {
    expect(new FaultInjector().decide(1)).toEqual({ action: { type: "answer" }, delayMs: 0 });
  });

  it("applies a fault for the next N requests, then expires", () => {
    const f = new FaultInjector();
    f.set({ kind: "busy" }, { count: 2 });
    expect(kinds(f, 1, 3)).toEqual(["ex6", "ex6", "answer"]);
    expect(f.active()).toEqual([]);
  });

  it("keeps a fault without count until cleared", () => {
    const f = new FaultInjector();
    f.set({ kind: "noAnswer" });
    expect(kinds(f, 1, 3)).toEqual(["drop", "drop", "drop"]);
    f.clear();
    expect(kinds(f, 1, 1)).toEqual(["answer"]);
  });

  it("scopes a fault to one unit id, and unit rules win over server-wide ones", () => {
    const f = new FaultInjector();
    f.set({ kind: "noAnswer" }, { unit: 2 });
    f.set({ kind: "exception", code: 4 });
    expect(kinds(f, 1, 1)).toEqual(["ex4"]);
    expect(kinds(f, 2, 1)).toEqual(["drop"]);
    f.clear({ unit: 2 });
    expect(kinds(f, 2, 1)).toEqual(["ex4"]);
  });

  it("lets the most recently set fault win within a scope, and replaces a fault of the same kind", () => {
    const f = new FaultInjector();
    f.set({ kind: "busy" });
    f.set({ kind: "garbage" });
    expect(kinds(f, 1, 1)).toEqual(["garbage"]);
    f.set({ kind: "exception", code: 2 });
    f.set({ kind: "exception", code: 3 });
    expect(f.active().filter((a) => a.fault.kind === "exception")).toHaveLength(1);
    expect(kinds(f, 1, 1)).toEqual(["ex3"]);
    f.clear({ kind: "exception" });
    expect(kinds(f, 1, 1)).toEqual(["garbage"]);
  });

  it("drops every Nth request with dropEvery and lets the others through to other rules", () => {
    const f = new FaultInjector();
    f.set({ kind: "busy" }, { count: 1 });
    f.set({ kind: "dropEvery", n: 3 });
    expect(kinds(f, 1, 7)).toEqual(["ex6", "answer", "drop", "answer", "answer", "drop", "answer"]);
  });

  it("adds latency with jitter alongside an action, and counts latency separately", () => {
    const f = new FaultInjector({ random: () => 0.5 });
    f.set({ kind: "latency", ms: 10, jitterMs: 4 }, { count: 2 });
    f.set({ kind: "malform", malformation: "truncated" });
    expect(f.decide(1)).toEqual({ action: { type: "malform", malformation: "truncated" }, delayMs: 12 });
    expect(f.decide(1).delayMs).toBe(12);
    expect(f.decide(1).delayMs).toBe(0);
  });

  it("refuses the next N connections", () => {
    const f = new FaultInjector();
    f.set({ kind: "refuseConnections" }, { count: 2 });
    expect([f.shouldRefuse(), f.shouldRefuse(), f.shouldRefuse()]).toEqual([true, true, false]);
    expect(kinds(f, 1, 1)).toEqual(["answer"]);
  });

  it("calls disconnect listeners until they unsubscribe", () => {
    const f = new FaultInjector();
    let n = 0;
    const off = f.onDisconnect(() => n++);
    f.disconnect();
    off();
    f.disconnect();
    expect(n).toBe(1);
  });

  it("rejects invalid faults", () => {
    const f = new FaultInjector();
    expect(() => f.set({ kind: "exception", code: 0x0c })).toThrow(/exception code/);
    expect(() => f.set({ kind: "latency", ms: -1 })).toThrow(/latency/);
    expect(() => f.set({ kind: "dropEvery", n: 0 })).toThrow(/dropEvery/);
    expect(() => f.set({ kind: "busy" }, { count: 0 })).toThrow(/count/);
    expect(() => f.set({ kind: "busy" }, { unit: 256 })).toThrow(/unit/);
  });

  it("produces random bytes from the injected source", () => {
    const f = new FaultInjector({ random: () => 0.999 });
    expect(f.randomBytes(3).toString("hex")).toBe("ffffff");
  });
});

describe("serveRequest", () => {
  it("does not touch the bank for dropped or refused requests, but does for malformed answers", () => {
    const bank = new RegisterBank({ holdingRegisters: 10 });
    const f = new FaultInjector();
    const stats = newStats();
    const write = Buffer.from([0x06, 0, 1, 0, 42]);
    f.set({ kind: "noAnswer" }, { count: 1 });
    expect(serveRequest(f, bank, 1, write, stats)).toBeNull();
    f.set({ kind: "busy" }, { count: 1 });
    expect(serveRequest(f, bank, 1, write, stats)?.pdu.toString("hex")).toBe("8606");
    expect(bank.getRegister("hr", 1)).toBe(0);
    f.set({ kind: "garbage" }, { count: 1 });
    expect(serveRequest(f, bank, 1, write, stats)?.pdu.toString("hex")).toBe("060001002a");
    expect(bank.getRegister("hr", 1)).toBe(42);
    expect(stats).toMatchObject({ dropped: 1, exceptions: 1 });
  });
});

describe("OrderedSender", () => {
  afterEach(() => vi.useRealTimers());

  it("sends synchronously without delay, and keeps order with delays and jitter", () => {
    vi.useFakeTimers();
    const sent: string[] = [];
    const s = new OrderedSender((f) => sent.push(f.toString()), () => Date.now());
    s.push(Buffer.from("a"), 0);
    expect(sent).toEqual(["a"]);
    s.push(Buffer.from("b"), 30);
    s.push(Buffer.from("c"), 5); // due earlier, must still go after b
    s.push(Buffer.from("d"), 0); // queued behind the delayed ones
    expect(sent).toEqual(["a"]);
    vi.advanceTimersByTime(29);
    expect(sent).toEqual(["a"]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual(["a", "b", "c", "d"]);
    s.push(Buffer.from("e"), 0);
    expect(sent).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("drops what is queued on cancel", () => {
    vi.useFakeTimers();
    const sent: string[] = [];
    const s = new OrderedSender((f) => sent.push(f.toString()), () => Date.now());
    s.push(Buffer.from("x"), 10);
    s.cancel();
    vi.advanceTimersByTime(20);
    expect(sent).toEqual([]);
  });
});
