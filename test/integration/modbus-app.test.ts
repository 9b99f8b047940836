/**
 * The whole cell over real sockets: CellApp → ModbusTcpDriver → 127.0.0.1 →
 * the Modbus TCP simulator. Values set in the simulator's banks arrive in
 * the process image decoded and scaled; logic-driven outputs arrive in the
 * simulator's coils and registers; outputs stay safe until the first
 * complete good scan.
 */
import { afterEach, describe, expect, it } from "vitest";
import { SimDevice, Teardown, startCell, sleep, waitFor } from "./helpers.js";

const t = new Teardown();
afterEach(() => t.run());

const PERIOD = 20;

function twoDeviceCell(a: SimDevice, b: SimDevice): string {
  return `
version: 1
cell: { id: itest-values }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${a.port}
    timeout_ms: 200
    points:
      sensor:   { address: "di:3" }
      count:    { address: "hr:10:int16" }
      level:    { address: "hr:11:uint16" }
      temp:     { address: "ir:20:float32:abcd" }
      flow:     { address: "ir:22:float32:cdab" }
      pressure: { address: "ir:30", scale: { gain: 0.1, offset: -5 }, unit: bar }
      flag3:    { address: "hr:40.3" }
      flag4:    { address: "hr:40.4" }
  b:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${b.port}
    timeout_ms: 200
    points:
      ready:    { address: "di:0" }
      run:      { address: "coil:5", direction: output, safe: false }
      stopped:  { address: "coil:6", direction: output, safe: true }
      speed:    { address: "hr:100:int16", direction: output, safe: 0 }
      valve:    { address: "hr:101", direction: output, scale: { gain: 0.5, offset: 10 }, safe: 10 }
      setpoint: { address: "hr:102:float32:cdab", direction: output, safe: 0.0 }
      bit2:     { address: "hr:50.2", direction: output, safe: false }
      bit9:     { address: "hr:50.9", direction: output, safe: false }
logic:
  b.run: "a.sensor and a.temp > 20"
  b.stopped: "not (a.sensor and a.temp > 20)"
  b.speed: "a.count"
  b.valve: "a.temp * 2 + 10"
  b.setpoint: "a.flow * 2"
  b.bit2: "a.sensor"
  b.bit9: "not a.sensor"
`;
}

describe("values end to end over Modbus TCP", () => {
  it("decodes every type and order, scales, and writes logic outputs to coils and registers", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.bank.setBit("di", 3, true);
    a.bank.setInt16("hr", 10, -1234);
    a.bank.setRegister("hr", 11, 54321);
    a.bank.setFloat32("ir", 20, 21.5, "ABCD");
    a.bank.setFloat32("ir", 22, -3.25, "CDAB");
    a.bank.setRegister("ir", 30, 1234); // 1234 * 0.1 - 5 = 118.4 bar
    a.bank.setRegister("hr", 40, 0b1000); // bit 3 set, bit 4 clear
    b.bank.setBit("di", 0, true);
    // Bits of register 50 that cellio does not own: they must survive its writes.
    b.bank.setRegister("hr", 50, 0x8011);

    const before = Date.now();
    const cell = await startCell(twoDeviceCell(a, b), t);
    const c = await cell.waitCycle((x) => x.mode === "running", 3000, "the first complete good scan");

    for (const id of ["a.sensor", "a.count", "a.level", "a.temp", "a.flow", "a.pressure", "a.flag3", "a.flag4", "b.ready"]) {
      const s = cell.sample(c, id);
      expect(s.quality, id).toBe("good");
      expect(s.status, id).toBe("good");
      expect(s.sourceTs, id).toBeGreaterThanOrEqual(before);
      expect(s.sourceTs, id).toBeLessThanOrEqual(Date.now());
    }
    expect(cell.sample(c, "a.sensor").value).toBe(true);
    expect(cell.sample(c, "a.count").value).toBe(-1234);
    expect(cell.sample(c, "a.level").value).toBe(54321);
    expect(cell.sample(c, "a.temp").value).toBe(21.5);
    expect(cell.sample(c, "a.flow").value).toBe(-3.25);
    expect(cell.sample(c, "a.pressure").value as number).toBeCloseTo(118.4, 9);
    expect(cell.sample(c, "a.flag3").value).toBe(true);
    expect(cell.sample(c, "a.flag4").value).toBe(false);

    // Outputs, as commanded and as they arrive in the simulator.
    const commanded = (id: string) => c.commanded[cell.idx(id)];
    expect(commanded("b.run")).toBe(true);
    expect(commanded("b.speed")).toBe(-1234);
    await waitFor(() => b.bank.getBit("coil", 5) && !b.bank.getBit("coil", 6), 2000, "coil 5 on and coil 6 off");
    await waitFor(() => b.bank.getInt16("hr", 100) === -1234, 2000, "hr 100 = -1234");
    expect(b.bank.getRegister("hr", 101)).toBe((21.5 * 2 + 10 - 10) / 0.5); // raw 86
    expect(b.bank.getFloat32("hr", 102, "CDAB")).toBe(-6.5);
    expect(b.bank.getRegister("hr", 102)).toBe(0x0000); // CDAB: low word first
    expect(b.bank.getRegister("hr", 103)).toBe(0xc0d0); // -6.5 = 0xC0D00000
    // Written outputs appear in the image as good with the written value.
    const after = await cell.waitCycle((x) => x.image[cell.idx("b.valve")]!.value === 53, 1000, "b.valve = 53 written");
    expect(cell.sample(after, "b.valve").quality).toBe("good");
  });

  it("follows changes in the simulator, cycle after cycle", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.bank.setFloat32("ir", 20, 10, "ABCD");
    const cell = await startCell(twoDeviceCell(a, b), t);
    await cell.waitCycle((x) => x.mode === "running", 3000, "the first complete good scan");
    expect(b.bank.getBit("coil", 5)).toBe(false);

    a.bank.setBit("di", 3, true);
    a.bank.setFloat32("ir", 20, 25.25, "ABCD");
    a.bank.setInt16("hr", 10, 32767);
    // One read is several requests (di, hr, ir here): a change may land between them,
    // so wait for the cycle that has all three.
    const c = await cell.waitCycle(
      (x) => x.image[cell.idx("a.temp")]!.value === 25.25 && x.image[cell.idx("a.sensor")]!.value === true,
      1000,
      "a.temp = 25.25 and a.sensor on",
    );
    expect(cell.sample(c, "a.count").value).toBe(32767);
    await waitFor(() => b.bank.getBit("coil", 5), 1000, "coil 5 on");
    await waitFor(() => b.bank.getInt16("hr", 100) === 32767, 1000, "hr 100 = 32767");

    a.bank.setInt16("hr", 10, -32768);
    a.bank.setBit("di", 3, false);
    await waitFor(() => !b.bank.getBit("coil", 5) && b.bank.getBit("coil", 6), 1000, "coil 5 off, coil 6 on");
    await waitFor(() => b.bank.getInt16("hr", 100) === -32768, 1000, "hr 100 = -32768");
  });

  it("writes register bits by read-modify-write and leaves the other bits of the register alone", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    b.bank.setRegister("hr", 50, 0x8011);
    const writes: string[] = [];
    b.bank.onWrite((area, addr, count) => {
      if (area === "hr" && addr <= 50 && addr + count > 50) writes.push(`hr${addr}+${count}=${b.bank.getRegister("hr", 50).toString(16)}`);
    });
    a.bank.setBit("di", 3, true);
    const cell = await startCell(twoDeviceCell(a, b), t);
    await cell.waitCycle((x) => x.mode === "running", 3000, "the first complete good scan");
    // bit 2 on, bit 9 off; 0x8011 untouched.
    await waitFor(() => b.bank.getRegister("hr", 50) === 0x8015, 1000, () => `hr 50 = 0x8015 (is 0x${b.bank.getRegister("hr", 50).toString(16)})`);

    // The device changes bits of its own meanwhile; cellio flips its two bits.
    b.bank.setRegister("hr", 50, 0x4005); // device: bit 15 off, bit 14 on, bit 0 on (bit 2 still cellio's)
    a.bank.setBit("di", 3, false);
    await waitFor(
      () => b.bank.getRegister("hr", 50) === 0x4201,
      1000,
      () => `hr 50 = 0x4201 (is 0x${b.bank.getRegister("hr", 50).toString(16)})`,
    );
    // Every write to register 50 was a single-register write (FC06), never a block that would clobber it.
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(w).toMatch(/^hr50\+1=/);
    // Nothing further gets written while nothing changes.
    const n = writes.length;
    await sleep(10 * PERIOD);
    expect(writes.length).toBe(n);
  });
});

describe("an output that cannot be written", () => {
  it("does not hold back the other outputs of its device", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.bank.setBit("di", 3, true);
    a.bank.setFloat32("ir", 20, 0, "ABCD"); // valve = temp * 2 = 0 -> raw (0 - 10) / 0.5 = -20: not a uint16
    const yaml = twoDeviceCell(a, b).replace('b.valve: "a.temp * 2 + 10"', 'b.valve: "a.temp * 2"');
    const cell = await startCell(yaml, t);
    await cell.waitCycle((x) => x.mode === "running", 3000, "the first complete good scan");
    // Everything else on b is written...
    a.bank.setInt16("hr", 10, 77);
    await waitFor(() => b.bank.getInt16("hr", 100) === 77, 1000, "b.speed = 77 written");
    await waitFor(() => (b.bank.getRegister("hr", 50) & 0b100) === 0b100, 1000, "b.bit2 written");
    expect(b.bank.getFloat32("hr", 102, "CDAB")).toBe(0);
    // ...and only the valve is flagged: bad (bad_config_error once it had been written,
    // e.g. its safe value before the first good scan; still waiting_for_initial_data if
    // it never was), with the reason on the device.
    const c = await cell.waitCycle((x) => x.image[cell.idx("b.speed")]!.value === 77, 1000, "b.speed in the image");
    expect(["bad_config_error", "bad_waiting_for_initial_data"]).toContain(cell.sample(c, "b.valve").status);
    expect(cell.sample(c, "b.speed").quality).toBe("good");
    expect(cell.app.runners.find((r) => r.name === "b")!.lastError).toMatch(/out of range/);
    expect(b.bank.getRegister("hr", 101)).toBe(0);
    // A value that fits is written.
    a.bank.setFloat32("ir", 20, 21.5, "ABCD");
    await waitFor(() => b.bank.getRegister("hr", 101) === (43 - 10) / 0.5, 1000, "b.valve raw 66 written");
    await waitFor(() => b.bank.getBit("coil", 5), 1000, "b.run on");
  });
});

describe("safe start", () => {
  it("writes the safe values while the first complete good scan has not happened, and follows the logic after it", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    a.server.faults.set({ kind: "noAnswer" }); // a is dead: no complete good scan
    b.bank.setBit("di", 0, false);
    b.bank.setBit("coil", 6, false); // b.stopped is safe true; the device starts with it off
    const coil6: boolean[] = [];
    b.bank.onWrite((area, addr, count) => {
      if (area === "coil" && addr <= 6 && addr + count > 6) coil6.push(b.bank.getBit("coil", 6));
    });
    const yaml = `
version: 1
cell: { id: itest-safe-start }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${a.port}
    timeout_ms: 100
    points:
      sensor: { address: "di:3" }
  b:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${b.port}
    timeout_ms: 100
    points:
      ready:   { address: "di:0" }
      stopped: { address: "coil:6", direction: output, safe: true }
      run:     { address: "coil:5", direction: output, safe: false }
logic:
  b.stopped: "b.ready"
  b.run: "not b.ready"
`;
    const cell = await startCell(yaml, t);
    // Right after start: the safe value (true) is in the device although the logic says false.
    await waitFor(() => b.bank.getBit("coil", 6), 1000, "coil 6 at its safe value true");
    await sleep(15 * PERIOD);
    expect(b.bank.getBit("coil", 6)).toBe(true);
    expect(b.bank.getBit("coil", 5)).toBe(false);
    expect(coil6.length).toBeGreaterThan(0);
    expect(coil6.every((v) => v)).toBe(true);
    expect(cell.cycles.length).toBeGreaterThan(3);
    for (const c of cell.cycles) {
      expect(c.mode).toBe("starting");
      expect(c.commanded[cell.idx("b.stopped")]).toBe(true);
      expect(c.commanded[cell.idx("b.run")]).toBe(false);
    }

    // a answers: first complete good scan, outputs follow the logic.
    a.server.faults.clear();
    const first = await cell.waitCycle((x) => x.mode === "running", 3000, "the first complete good scan");
    for (const p of cell.loaded.model.points) if (p.direction === "input") expect(first.image[p.index]!.quality).toBe("good");
    await waitFor(() => !b.bank.getBit("coil", 6) && b.bank.getBit("coil", 5), 1000, "coil 6 off and coil 5 on (logic)");
  });

  it("never puts a non-safe value on an output before the first cycle in which every input is good", async () => {
    const a = await SimDevice.start(t);
    const b = await SimDevice.start(t);
    // a does not answer until b has been written once: the first scans are incomplete.
    a.server.faults.set({ kind: "noAnswer" });
    const log: { coil6: boolean; coil5: boolean }[] = [];
    b.bank.onWrite((area) => {
      if (area === "coil") log.push({ coil6: b.bank.getBit("coil", 6), coil5: b.bank.getBit("coil", 5) });
    });
    const yaml = `
version: 1
cell: { id: itest-safe-start-2 }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 8, output_budget_ms: 8 }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${a.port}
    timeout_ms: 100
    points:
      sensor: { address: "di:3" }
  b:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${b.port}
    timeout_ms: 100
    points:
      stopped: { address: "coil:6", direction: output, safe: true }
      run:     { address: "coil:5", direction: output, safe: false }
logic:
  b.stopped: "false"
  b.run: "true"
`;
    const cell = await startCell(yaml, t);
    await waitFor(() => log.length > 0, 2000, "b's first write");
    a.server.faults.clear();
    const first = await cell.waitCycle((x) => x.mode === "running", 3000, "the first complete good scan");
    await waitFor(() => b.bank.getBit("coil", 5) && !b.bank.getBit("coil", 6), 1000, "logic values on coils 5 and 6");
    // Every cycle before the first good scan commanded the safe values...
    const early = cell.cycles.filter((c) => c.cycle < first.cycle);
    expect(early.length).toBeGreaterThan(0);
    for (const c of early) {
      expect(c.commanded[cell.idx("b.stopped")]).toBe(true);
      expect(c.commanded[cell.idx("b.run")]).toBe(false);
    }
    // ...and the device saw the safe values first, then the logic values, never a mix going back.
    expect(log[0]).toEqual({ coil6: true, coil5: false });
    const firstLogic = log.findIndex((w) => !w.coil6);
    expect(firstLogic).toBeGreaterThan(0);
    for (const w of log.slice(0, firstLogic)) expect(w).toEqual({ coil6: true, coil5: false });
  });
});
