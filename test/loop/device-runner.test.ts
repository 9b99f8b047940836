/**
 * DeviceRunner with drivers whose read or write Observable ends in an error
 * instead of an outcome: the operation still ends (regression: the error only
 * set the outcome, completion never came, and the device stayed busy for
 * good: never polled again, every cycle waiting for the input deadline).
 */
import { Observable, of, throwError } from "rxjs";
import { describe, expect, it } from "vitest";
import { InputTable } from "../../src/core/input-table.js";
import type { DevicePort, OutputChange, ReadOutcome, WriteOutcome } from "../../src/loop/device-port.js";
import { DeviceRunner } from "../../src/loop/device-runner.js";
import { silentLogger } from "../../src/infra/logger.js";
import type { Clock } from "../../src/infra/clock.js";

const clock: Clock = { now: () => 0, wall: () => 1_700_000_000_000 };

class ErroringPort implements DevicePort {
  readonly name = "dev";
  reads = 0;
  writes = 0;
  fail = true;
  read(): Observable<ReadOutcome> {
    this.reads++;
    return this.fail ? throwError(() => new Error("session gone")) : of({ ok: true } as const);
  }
  write(_changes: readonly OutputChange[]): Observable<WriteOutcome> {
    this.writes++;
    return this.fail ? throwError(() => new Error("write rejected")) : of({ ok: true } as const);
  }
}

function runner(port: DevicePort): { r: DeviceRunner; table: InputTable } {
  const table = new InputTable(2);
  const r = new DeviceRunner(port, { pollEvery: 1, staleAfterMs: 100, failAfter: 2, points: [0, 1], outputs: [1], heartbeatWrites: false }, table, clock, silentLogger());
  return { r, table };
}

describe("DeviceRunner: a driver Observable that errors", () => {
  it("ends the read: counted as a failure, the next read starts, the device goes bad after fail_after and recovers", () => {
    const port = new ErroringPort();
    const { r } = runner(port);
    const done: number[] = [];
    expect(r.startRead((p) => done.push(p), 1)).toBe(true);
    expect(done).toEqual([1]);
    expect(r.busy).toBe(false);
    expect(r.counters.readFailures).toBe(1);
    expect(r.startRead((p) => done.push(p), 2)).toBe(true); // not refused as busy
    expect(r.counters.busySkips).toBe(0);
    expect(r.state).toBe("bad");
    expect(r.lastError).toMatch(/session gone/);
    port.fail = false;
    r.startRead((p) => done.push(p), 3);
    expect(r.state).toBe("good");
    expect(done).toEqual([1, 2, 3]);
  });

  it("ends the write: the outputs are marked failed and written again next time", () => {
    const port = new ErroringPort();
    const { r } = runner(port);
    const done: number[] = [];
    expect(r.startWrite([{ index: 1, value: true }], (p) => done.push(p), 7)).toBe(true);
    expect(done).toEqual([7]);
    expect(r.writing).toBe(false);
    expect(r.counters.writeFailures).toBe(1);
    expect(r.changes([null, true])).toEqual([{ index: 1, value: true }]); // not remembered as written
    port.fail = false;
    r.startWrite([{ index: 1, value: true }], (p) => done.push(p), 8);
    expect(r.changes([null, true])).toEqual([]);
  });
});
