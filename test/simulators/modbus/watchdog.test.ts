import { afterEach, describe, expect, it } from "vitest";
import { CommWatchdog, RegisterBank } from "../../../simulators/modbus/index.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await sleep(2);
  }
}

const stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
});

function setup(): { bank: RegisterBank; wd: CommWatchdog } {
  const bank = new RegisterBank({ coils: 16, discreteInputs: 16, holdingRegisters: 32, inputRegisters: 4 });
  const wd = new CommWatchdog(bank, { register: 20, unitMs: 10, coils: [0, 4], registers: [2, 2], flagInput: 7 });
  stops.push(() => wd.stop());
  bank.clientWriteCoils(0, [1, 1, 1, 1, 1]);
  bank.clientWriteRegisters(2, [11, 22, 33]);
  return { bank, wd };
}

describe("CommWatchdog", () => {
  it("is off until a client writes its register; test helpers do not arm it", () => {
    const { bank, wd } = setup();
    bank.setRegister("hr", 20, 5);
    expect(wd.armedMs).toBe(0);
    bank.clientWriteRegisters(19, [0, 5]);
    expect(wd.armedMs).toBe(50);
  });

  it("expires without requests: its coils and registers go to 0, the others stay, the flag rises", async () => {
    const { bank, wd } = setup();
    bank.clientWriteRegisters(20, [3]);
    await until(() => wd.expired, 2000);
    expect(bank.getBits("coil", 0, 5)).toEqual([false, false, false, false, true]);
    expect([2, 3, 4].map((a) => bank.getRegister("hr", a))).toEqual([0, 0, 33]);
    expect(bank.getBit("di", 7)).toBe(true);
    expect(wd.expiries).toBe(1);
    // Re-armed by the next write of its register: the flag drops.
    bank.clientWriteRegisters(20, [3]);
    expect(wd.expired).toBe(false);
    expect(bank.getBit("di", 7)).toBe(false);
  });

  it("kicks keep it from expiring; writing 0 switches it off", async () => {
    const { bank, wd } = setup();
    bank.clientWriteRegisters(20, [50]); // 500 ms: kicks every ~5 ms keep it well inside
    const end = performance.now() + 300;
    while (performance.now() < end) {
      wd.kick();
      await sleep(5);
    }
    expect(wd.expired).toBe(false);
    bank.clientWriteRegisters(20, [0]);
    expect(wd.armedMs).toBe(0);
    await sleep(100);
    expect(wd.expired).toBe(false);
    expect(bank.getBit("coil", 0)).toBe(true);
  });

  it("refuses a register outside the bank", () => {
    const bank = new RegisterBank({ holdingRegisters: 4 });
    expect(() => new CommWatchdog(bank, { register: 4 })).toThrow(/watchdog register 4 is outside/);
  });
});
