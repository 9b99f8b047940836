import { afterEach, describe, expect, it, vi } from "vitest";
import { DeviceRequester } from "../../../src/drivers/modbus/requester.js";
import type { ModbusTransport } from "../../../src/drivers/modbus/transport.js";
import { roundMs } from "../../../src/infra/clock.js";

/** A transport that answers every request at once and records the timeout it was given. */
function recordingTransport(timeouts: number[]): ModbusTransport {
  return {
    isOpen: true,
    connect: () => Promise.resolve(),
    close: () => Promise.resolve(),
    read: (_u, _fc, _s, count, timeoutMs) => {
      timeouts.push(timeoutMs);
      return Promise.resolve(new Array<number>(count).fill(0));
    },
    write: (_u, _fc, _s, _v, timeoutMs) => {
      timeouts.push(timeoutMs);
      return Promise.resolve();
    },
    onClose: () => undefined,
  };
}

// a monotonic reading at which (now + 60) - now is not 60 in binary floating point
const AWKWARD_NOW = 262123.6849535087;

describe("DeviceRequester: the first attempt's timeout", () => {
  afterEach(() => vi.restoreAllMocks());

  it("is the configured timeout exactly, whatever the clock reads (regression: 59.999999999970896 ms)", async () => {
    expect(AWKWARD_NOW + 60 - AWKWARD_NOW).not.toBe(60); // the trap this guards against
    vi.spyOn(performance, "now").mockReturnValue(AWKWARD_NOW);
    const timeouts: number[] = [];
    const r = new DeviceRequester(recordingTransport(timeouts), { unit: 1, timeoutMs: 60, busyRetries: 0, busyPauseMs: 0 });
    await r.read(3, 0, 2);
    await r.write(6, 0, [1]);
    await r.read(3, 0, 2, 25); // a smaller budget wins
    await r.write(6, 0, [1], 500); // a larger one does not
    expect(timeouts).toEqual([60, 60, 25, 60]);
  });
});

describe("roundMs", () => {
  it.each([
    [59.999999999970896, 60],
    [60.000000000007276, 60],
    [0.125, 0.13],
    [12.344, 12.34],
    [0, 0],
  ])("%s ms reads as %s ms", (ms, shown) => {
    expect(roundMs(ms)).toBe(shown);
  });
});
