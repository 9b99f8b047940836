import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultJobs } from "../../simulators/motoman/jobs.js";
import { RobotModel } from "../../simulators/motoman/model.js";
import { parseAddress, valueKind } from "../../src/drivers/modbus/address.js";
import { describeRefusal, type MotomanCommands, type MotomanStatus } from "../../src/profiles/motoman-yrc1000.js";
import {
  decodeCommandRegisters,
  decodeStatusRegisters,
  encodeCommandRegisters,
  encodeStatusRegisters,
} from "../../src/profiles/motoman-yrc1000-codec.js";
import {
  MOTOMAN_STATUS_BLOCK,
  MOTOMAN_WINDOW_LENGTH,
  MOTOMAN_YRC1000_POINTS,
  motomanPoints,
} from "../../src/profiles/motoman-yrc1000-map.js";

function toWindow(regs: Map<number, number>, into = new Uint16Array(MOTOMAN_WINDOW_LENGTH)): Uint16Array {
  for (const [offset, word] of regs) into[offset] = word;
  return into;
}

const byName = new Map(MOTOMAN_YRC1000_POINTS.map((p) => [p.name, p]));
const point = (name: string) => {
  const p = byName.get(name);
  if (!p) throw new Error(`no point ${name}`);
  return p;
};
/** Bit of the status window a bool point lives in. */
function bitOf(window: Uint16Array, name: string): number {
  const m = /^hr:(\d+)\.(\d+)$/.exec(point(name).address);
  if (!m) throw new Error(`${name} is not a register bit`);
  return (window[Number(m[1])]! >> Number(m[2])) & 1;
}

describe("point list", () => {
  const inputs = ["servo_on", "operating", "hold", "alarm", "alarm_code", "remote", "play", "estop_ok", "in_zone"];
  const outputs = ["ext_servo_on", "ext_start", "ext_hold", "alarm_reset", "job_number", "job_strobe"];
  it("has every required point with its direction", () => {
    for (const n of [...inputs, "cycle_complete", "job_echo"]) expect(point(n).direction).toBe("input");
    for (const n of outputs) expect(point(n).direction).toBe("output");
    expect(new Set(MOTOMAN_YRC1000_POINTS.map((p) => p.name)).size).toBe(MOTOMAN_YRC1000_POINTS.length);
  });

  it("has the documented safe values: hold is the safe state", () => {
    expect(point("ext_servo_on").safe).toBe(false);
    expect(point("ext_start").safe).toBe(false);
    expect(point("ext_hold").safe).toBe(true);
    expect(point("alarm_reset").safe).toBe(false);
    expect(point("job_strobe").safe).toBe(false);
    expect(point("job_number").safe).toBe(0);
    for (const p of MOTOMAN_YRC1000_POINTS) expect(p.safe === undefined).toBe(p.direction === "input");
  });

  it("uses addresses cellio's Modbus parser accepts, of the point's type", () => {
    for (const p of MOTOMAN_YRC1000_POINTS) {
      expect(p.address).toMatch(/^hr:\d+(\.\d+|:uint16|:(u?int32):abcd)$/);
      const parsed = parseAddress(p.address);
      if (!parsed.ok) throw new Error(parsed.error);
      const kind = valueKind(parsed.address);
      expect(p.type === "float" ? p.scale !== undefined && kind === "int" : p.type === kind, p.name).toBe(true);
    }
  });

  it("puts commands in M000–M559 and never lets two points share a bit", () => {
    const owner = new Map<string, string>();
    for (const p of MOTOMAN_YRC1000_POINTS) {
      const a = parseAddress(p.address);
      if (!a.ok) throw new Error(a.error);
      const { offset, bit, words } = a.address;
      if (p.direction === "output") expect(offset + words - 1).toBeLessThanOrEqual(559);
      const bits = bit !== undefined ? [`${offset}.${bit}`] : Array.from({ length: words * 16 }, (_, i) => `${offset + (i >> 4)}.${i & 15}`);
      for (const k of bits) {
        expect(owner.get(k), `${p.name} overlaps at ${k}`).toBeUndefined();
        owner.set(k, p.name);
      }
    }
  });

  it("shifts with base, checks the M-register limits, and lists the robot's axes", () => {
    const at100 = motomanPoints(100);
    expect(at100.find((p) => p.name === "ext_hold")!.address).toBe("hr:100.2");
    expect(at100.find((p) => p.name === "alarm_code")!.address).toBe("hr:118:uint16");
    expect(at100.find((p) => p.name === "joint_1")!.address).toBe("hr:130:int32:abcd");
    expect(() => motomanPoints(556)).not.toThrow();
    expect(() => motomanPoints(557)).toThrow(/M560/);
    expect(() => motomanPoints(0, { axes: 9 })).toThrow(RangeError);
    expect(motomanPoints(0, { axes: 7 }).filter((p) => p.name.startsWith("joint_"))).toHaveLength(7);
    expect(() => motomanPoints(-1)).toThrow(RangeError);
  });
});

const commandArb: fc.Arbitrary<MotomanCommands> = fc.record({
  extServoOn: fc.boolean(),
  extStart: fc.boolean(),
  extHold: fc.boolean(),
  alarmReset: fc.boolean(),
  jobNumber: fc.integer({ min: 0, max: 0xffff }),
  jobStrobe: fc.boolean(),
  heartbeat: fc.integer({ min: 0, max: 0xffff }),
  watchdogMs: fc.integer({ min: 0, max: 0xffff }),
});

const b = fc.boolean();
const u16 = fc.integer({ min: 0, max: 0xffff });
const statusArb: fc.Arbitrary<MotomanStatus> = fc.record({
  mode: fc.constantFrom("teach" as const, "play" as const),
  remote: b, servoOn: b, operating: b, hold: b, alarm: b, majorAlarm: b, minorAlarm: b, error: b,
  estopExternalOk: b, estopPendantOk: b, estopControllerOk: b, estopOk: b, inZone: b, cycleComplete: b,
  jobReceived: b, continuousCycle: b, energySaving: b, startPermit: b, watchdogTripped: b,
  alarmCode: u16, errorCode: u16, jobEcho: u16, currentJob: u16, jobPhaseIndex: u16, watchdogMs: u16,
  jobElapsedMs: fc.integer({ min: 0, max: 0xffffffff }),
  cycleCount: fc.integer({ min: 0, max: 0xffffffff }),
  speedOverride: fc.integer({ min: 0, max: 10000 }).map((c) => c / 100),
  jointPositions: fc.array(fc.integer({ min: -360000, max: 360000 }).map((m) => m / 1000), { minLength: 6, maxLength: 6 }),
});

describe("register codec", () => {
  it("round-trips commands through the window", () => {
    fc.assert(
      fc.property(commandArb, (c) => {
        expect(decodeCommandRegisters(toWindow(encodeCommandRegisters(c)))).toEqual(c);
      }),
    );
  });

  it("round-trips status through the window, keeping out of the command block", () => {
    fc.assert(
      fc.property(statusArb, (s) => {
        const regs = encodeStatusRegisters(s);
        for (const off of regs.keys()) expect(off).toBeGreaterThanOrEqual(MOTOMAN_STATUS_BLOCK.offset);
        const back = decodeStatusRegisters(toWindow(regs));
        expect({ ...back, jointPositions: [], speedOverride: 0 }).toEqual({ ...s, jointPositions: [], speedOverride: 0 });
        expect(back.speedOverride).toBeCloseTo(s.speedOverride, 6);
        back.jointPositions.forEach((v, i) => expect(v).toBeCloseTo(s.jointPositions[i]!, 6));
      }),
    );
  });

  it("encodes a live model: active-low e-stop bits, hold, in_zone, joints in 0.001 deg", () => {
    const m = new RobotModel({ jobs: defaultJobs() });
    let t = 0;
    const cell = new Uint16Array(MOTOMAN_WINDOW_LENGTH);
    const cycle = (cmd: Partial<MotomanCommands>) => {
      toWindow(encodeCommandRegisters({ ...decodeCommandRegisters(cell), ...cmd }), cell);
      m.setInputs(decodeCommandRegisters(cell));
      m.tick((t += 10));
      return toWindow(encodeStatusRegisters(m.status), cell);
    };
    let w = cycle({ extHold: true });
    expect([bitOf(w, "estop_ok"), bitOf(w, "estop_pendant_ok"), bitOf(w, "hold"), bitOf(w, "play")]).toEqual([1, 1, 1, 1]);
    cycle({ extHold: false, extServoOn: true });
    cycle({ extServoOn: false, jobNumber: 1, jobStrobe: true });
    w = cycle({});
    expect([bitOf(w, "job_received"), w[20]]).toEqual([1, 1]);
    cycle({ jobStrobe: false, extStart: true });
    for (let i = 0; i < 150; i++) w = cycle({ extStart: false });
    expect([bitOf(w, "operating"), bitOf(w, "in_zone"), bitOf(w, "servo_on")]).toEqual([1, 1, 1]);
    const j1 = decodeStatusRegisters(w).jointPositions[0]!;
    expect(j1).toBeCloseTo(m.status.jointPositions[0]!, 2);
    m.pressEstop("pendant");
    w = cycle({});
    expect([bitOf(w, "estop_ok"), bitOf(w, "estop_pendant_ok"), bitOf(w, "estop_external_ok")]).toEqual([0, 0, 1]);
    expect([bitOf(w, "servo_on"), bitOf(w, "operating")]).toEqual([0, 0]);
  });

  it("describes refusal codes", () => {
    expect(describeRefusal(0x2040)).toBe("hold by external");
    expect(describeRefusal(0)).toBe("");
    expect(describeRefusal(0x1234)).toBe("unknown code 0x1234");
  });

  it("documents every point of the default map in the simulator README", () => {
    const readme = readFileSync(new URL("../../simulators/motoman/README.md", import.meta.url), "utf8");
    for (const p of motomanPoints(0, { axes: 8 })) {
      expect(readme, p.name).toMatch(new RegExp(`\\|\\s*\`${p.name}\`\\s*\\|\\s*\`${p.address.replace(/[.]/g, "\\.")}\``));
    }
  });
});
