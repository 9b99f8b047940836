/**
 * The probes as pure functions: what makes /healthz and /readyz fail, and
 * that they say why.
 */
import { describe, expect, it } from "vitest";
import { healthz, readyz, stallAfterMs, type ProbeInput } from "../../../src/north/http/health.js";

const base: ProbeInput = {
  lastCycleAgeMs: 5,
  cycles: 100,
  periodMs: 20,
  mode: "running",
  devices: [
    { name: "io1", state: "good", required: true, lastError: "" },
    { name: "scale", state: "bad", required: false, lastError: "timeout" },
  ],
};

describe("healthz", () => {
  it("is ok while cycles complete, stalled past max(3 periods, 1 s), starting before the first", () => {
    expect(healthz(base).ok).toBe(true);
    expect(stallAfterMs(20)).toBe(1000);
    expect(stallAfterMs(1000)).toBe(3000);
    expect(healthz({ ...base, lastCycleAgeMs: 999 }).ok).toBe(true);
    const stalled = healthz({ ...base, lastCycleAgeMs: 1500 });
    expect(stalled).toEqual({ ok: false, body: expect.objectContaining({ status: "stalled" }) as unknown });
    expect(String(stalled.body.reason)).toBe("no cycle completed for 1500 ms (limit 1000 ms)");
    expect(healthz({ ...base, lastCycleAgeMs: undefined, cycles: 0 }).body.status).toBe("starting");
  });
});

describe("readyz", () => {
  it("is ready when every required device is good, whatever the optional ones do", () => {
    const r = readyz(base);
    expect(r.ok).toBe(true);
    expect(r.body.devices).toEqual({ io1: { state: "good", required: true }, scale: { state: "bad", required: false } });
  });

  it("lists every reason it is not ready: a required device not good, an overrun fault, a stalled loop", () => {
    const r = readyz({
      ...base,
      mode: "faulted",
      lastCycleAgeMs: 5000,
      devices: [
        { name: "io1", state: "stale", required: true, lastError: "" },
        { name: "robot", state: "bad", required: true, lastError: "connect ECONNREFUSED" },
      ],
    });
    expect(r.ok).toBe(false);
    expect(r.body.reasons).toEqual([
      "no cycle completed for 5000 ms (limit 1000 ms)",
      "overrun fault: every output is held safe until reset",
      "required device io1 is stale",
      "required device robot is bad: connect ECONNREFUSED",
    ]);
    expect(readyz({ ...base, devices: [{ name: "io1", state: "waiting", required: true, lastError: "" }] }).ok).toBe(false);
  });
});
