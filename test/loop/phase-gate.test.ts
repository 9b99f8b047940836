import { VirtualTimeScheduler } from "rxjs";
import { describe, expect, it } from "vitest";
import { PhaseGate } from "../../src/loop/phase-gate.js";

/**
 * The loop's clock beside scheduler `s` whose 4 ms timer comes 0.9 ms early: libuv counts whole
 * milliseconds, so a phase that starts 0.9 ms into one has its timer due 0.9 ms early.
 */
function clockOfEarlyTimer(s: VirtualTimeScheduler): () => number {
  return () => s.now() + (s.now() < 4 ? 0.9 : 0);
}

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

  it("keeps its whole budget when the scheduler fires early (setTimeout may, by up to 1 ms)", () => {
    const s = new VirtualTimeScheduler();
    const g = new PhaseGate(s, clockOfEarlyTimer(s));
    const log: string[] = [];
    g.begin();
    g.add();
    const token = g.phase;
    g.await(4, () => log.push(`ended at ${s.now()}`));
    s.schedule(() => {
      log.push("answer");
      g.ioDone(token);
    }, 4.5); // 3.6 ms into the phase on the loop's clock: in time
    s.flush();
    expect(log).toEqual(["answer", "ended at 4.5"]);
  });

  it("ends at its budget on the loop's clock when nothing answers", () => {
    const s = new VirtualTimeScheduler();
    const g = new PhaseGate(s, clockOfEarlyTimer(s));
    let endedAt = -1;
    g.begin();
    g.add();
    g.await(4, () => (endedAt = s.now()));
    s.flush();
    expect(endedAt).toBeCloseTo(4.9, 9); // 4 ms after the phase began at 0.9 on the loop's clock
  });

  it("after a stall of its thread, ends one turn later, so the answers read in that turn count", () => {
    const s = new VirtualTimeScheduler();
    let stalled = 0;
    const g = new PhaseGate(s, () => s.now() + stalled);
    const log: string[] = [];
    g.begin();
    g.add();
    const token = g.phase;
    g.await(4, () => log.push(`ended, running ${g.running}`));
    s.schedule(() => (stalled = 10), 2); // the thread stalls 10 ms: the deadline runs 8 ms late
    s.schedule(() => {
      log.push(`answer while running: ${g.running}`);
      g.ioDone(token); // read in the same turn as the late deadline
    }, 4);
    s.flush();
    expect(log).toEqual(["answer while running: true", "ended, running false"]);
  });

  it("puts its deadline off for a stall once, and not for a timer only a little late", () => {
    const s = new VirtualTimeScheduler();
    let skew = 0;
    const g = new PhaseGate(s, () => s.now() + skew);
    const log: string[] = [];
    g.begin();
    g.add();
    g.await(4, () => log.push(`ended at ${s.now()}`));
    skew = 10; // stalled, and still stalled when the put-off deadline runs
    s.flush();
    expect(log).toEqual(["ended at 4"]); // the same instant: one turn later, not one budget
    skew = 0;
    g.begin();
    g.add();
    g.await(4, () => log.push(`second ended at ${s.now()}`));
    skew = 2; // 2 ms late: on time enough (LATE_TIMER_MS is 3)
    let turns = 0;
    const count = (): void => {
      turns++;
    };
    s.schedule(count, 4); // an action queued after the deadline at the same instant
    s.flush();
    expect(log.at(-1)).toBe("second ended at 8");
    expect(turns).toBe(1);
  });

  it("with an afterIo hook (setImmediate in the daemon) ends a stalled phase there, not on a timer, and only once", () => {
    const s = new VirtualTimeScheduler();
    let skew = 0;
    const hooked: Array<() => void> = [];
    const g = new PhaseGate(s, () => s.now() + skew, (fn) => hooked.push(fn));
    const log: string[] = [];
    g.begin();
    g.add();
    g.await(4, () => log.push("ended"));
    skew = 10; // the deadline runs 10 ms late
    s.flush();
    expect(log).toEqual([]); // put off to after the turn's I/O: nothing left on the scheduler
    expect(hooked).toHaveLength(1);
    hooked.shift()!();
    expect(log).toEqual(["ended"]);

    // The last answer, read in that turn, ends the phase first: the hook's call then does nothing.
    skew = 0;
    g.begin();
    g.add();
    const token = g.phase;
    g.await(4, () => log.push("second ended"));
    skew = 10;
    s.flush();
    g.ioDone(token);
    expect(log).toEqual(["ended", "second ended"]);
    hooked.shift()!();
    expect(log).toEqual(["ended", "second ended"]);
    expect(g.running).toBe(false);
  });
});
