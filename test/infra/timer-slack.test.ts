/**
 * Timer slack of the loop's thread: the decisions with a fake /proc file,
 * then the real one on Linux (vitest runs each test file in its own process,
 * on its main thread): set to 1 ns and read back, put back at stop; a cell
 * sets it while it runs.
 */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { SLACK_UNCHANGED, restoreTimerSlack, setTimerSlack, type TimerSlackSys } from "../../src/infra/timer-slack.js";
import { SimDevice, Teardown, startCell } from "../integration/helpers.js";

function fakeSys(over: Partial<TimerSlackSys> & { ignoreWrites?: boolean } = {}): TimerSlackSys & { writes: string[] } {
  const writes: string[] = [];
  let value = "50000\n";
  return {
    platform: "linux",
    mainThread: true,
    read: () => value,
    write: (t) => {
      writes.push(t);
      if (!over.ignoreWrites) value = `${t}\n`;
    },
    ...over,
    writes,
  };
}

describe("timer slack: decisions", () => {
  it("sets 1 ns, reads it back and remembers the previous value; restore writes that back", () => {
    const sys = fakeSys();
    const s = setTimerSlack(1, sys);
    expect(s).toEqual({ ns: 1, previous: 50000 });
    restoreTimerSlack(s, sys);
    expect(sys.writes).toEqual(["1", "50000"]);
  });

  it("does nothing off Linux or off the main thread, and says why", () => {
    const mac = fakeSys({ platform: "darwin" });
    expect(setTimerSlack(1, mac).reason).toMatch(/Linux only \(this is darwin\)/);
    const worker = fakeSys({ mainThread: false });
    expect(setTimerSlack(1, worker).reason).toMatch(/main thread only/);
    expect([...mac.writes, ...worker.writes]).toEqual([]);
  });

  it("reports a refused write or a value the kernel did not take, and restores nothing then", () => {
    const refused = fakeSys({
      write: () => {
        throw new Error("EACCES: permission denied, open '/proc/self/timerslack_ns'");
      },
    });
    const a = setTimerSlack(1, refused);
    expect(a.ns).toBeUndefined();
    expect(a.reason).toMatch(/EACCES/);
    const ignored = fakeSys({ ignoreWrites: true });
    const b = setTimerSlack(1, ignored);
    expect(b.ns).toBeUndefined();
    expect(b.reason).toMatch(/reports 50000 ns after writing 1/);
    restoreTimerSlack(b, ignored);
    restoreTimerSlack(SLACK_UNCHANGED, ignored);
    expect(ignored.writes).toEqual(["1"]);
  });

  it("refuses a /proc file it cannot read as a number", () => {
    expect(setTimerSlack(1, fakeSys({ read: () => "garbage" })).reason).toMatch(/unexpected .*timerslack_ns content/);
  });
});

const linux = process.platform === "linux";
const slackNow = (): number => Number(readFileSync("/proc/self/timerslack_ns", "utf8"));

describe.runIf(linux)("timer slack: the real /proc file", () => {
  const t = new Teardown();
  afterEach(() => t.run());

  it("sets this (main) thread's slack to 1 ns and puts the old value back", () => {
    const before = slackNow();
    const s = setTimerSlack();
    expect(s.ns).toBe(1);
    expect(slackNow()).toBe(1);
    restoreTimerSlack(s);
    expect(slackNow()).toBe(before);
  });

  it("a running cell has its loop thread at 1 ns; stopped, the slack is as before", async () => {
    const before = slackNow();
    const dev = await SimDevice.start(t);
    const cell = await startCell(
      `
version: 1
cell: { id: slack }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  d:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${dev.port}
    points:
      x: { address: "di:0" }
`,
      t,
    );
    expect(cell.app.timerSlack.ns).toBe(1);
    expect(slackNow()).toBe(1);
    await cell.app.stop(1000);
    expect(slackNow()).toBe(before);
  });
});
