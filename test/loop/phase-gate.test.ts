import { VirtualTimeScheduler } from "rxjs";
import { describe, expect, it } from "vitest";
import { PhaseGate } from "../../src/loop/phase-gate.js";

describe("PhaseGate", () => {
  it("ends when the last read is done, before its deadline", () => {
    const s = new VirtualTimeScheduler();
    const g = new PhaseGate(s);
    let ended = 0;
    g.begin();
    g.add();
    g.add();
    const token = g.phase;
    g.await(4, () => ended++);
    expect(g.running).toBe(true);
    g.ioDone(token);
    expect(ended).toBe(0);
    g.ioDone(token);
    expect(ended).toBe(1);
    expect(g.running).toBe(false);
    s.flush(); // the cancelled deadline does not end it twice
    expect(ended).toBe(1);
  });

  it("ends at its deadline, and a straggler's late answer does not touch the next phase", () => {
    const s = new VirtualTimeScheduler();
    const g = new PhaseGate(s);
    const log: string[] = [];
    g.begin();
    g.add();
    const first = g.phase;
    g.await(4, () => log.push(`first ended at ${s.now()}`));
    s.flush();
    expect(log).toEqual(["first ended at 4"]);
    g.begin();
    g.add();
    const second = g.phase;
    g.await(4, () => log.push("second ended"));
    g.ioDone(first); // the straggler of the first phase
    expect(log).toEqual(["first ended at 4"]);
    g.ioDone(second);
    expect(log).toEqual(["first ended at 4", "second ended"]);
  });

  it("runs what follows at once when nothing started, and not at all once abandoned", () => {
    const s = new VirtualTimeScheduler();
    const g = new PhaseGate(s);
    let ran = 0;
    g.begin();
    g.add();
    g.notStarted(); // the device was busy: nothing in flight
    g.await(4, () => ran++);
    expect(ran).toBe(1);
    g.begin();
    g.add();
    const token = g.phase;
    g.await(4, () => ran++);
    g.abandon();
    g.ioDone(token);
    s.flush();
    expect(ran).toBe(1);
    expect(g.running).toBe(false);
  });

  it("is not ended by an answer that comes back while the phase is still starting", () => {
    const s = new VirtualTimeScheduler();
    const g = new PhaseGate(s);
    let ended = 0;
    g.begin();
    g.add();
    g.ioDone(g.phase); // a device that is not connected answers at once
    g.add();
    const token = g.phase;
    g.await(4, () => ended++);
    expect(ended).toBe(0);
    g.ioDone(token);
    expect(ended).toBe(1);
  });
});
