import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultJobs, homePose, validateJobs } from "../../../simulators/motoman/jobs.js";
import { REFUSAL, RobotModel, type RobotModelOptions, type RobotStatus } from "../../../simulators/motoman/model.js";

/** A model on a stepped clock, already ticked once at t = 0. */
function rig(opts: Partial<RobotModelOptions> = {}) {
  const m = new RobotModel({ jobs: defaultJobs(), ...opts });
  let t = 0;
  m.tick(t);
  const step = (ms = 10): RobotStatus => {
    t += ms;
    m.tick(t);
    return m.status;
  };
  const run = (ms: number, every = 10): void => {
    for (let done = 0; done < ms; done += every) step(every);
  };
  /** Raise a level input for one tick, then drop it for one tick. */
  const pulse = (key: "extServoOn" | "extStart" | "alarmReset"): RobotStatus => {
    m.setInputs({ [key]: true });
    const s = step();
    m.setInputs({ [key]: false });
    step();
    return s;
  };
  const select = (job: number): void => {
    m.setInputs({ jobNumber: job, jobStrobe: true });
    run(20);
    m.setInputs({ jobStrobe: false });
    step();
  };
  /** Servo on, job 1 selected, started, hold released. */
  const running = (): void => {
    pulse("extServoOn");
    select(1);
    pulse("extStart");
  };
  return { m, step, run, pulse, select, running, now: () => t };
}

describe("remote-start handshake", () => {
  it("goes remote → servo on → job select → start → phases → cycle complete → next cycle", () => {
    const { m, step, run, pulse } = rig();
    expect(m.status).toMatchObject({ mode: "play", remote: true, servoOn: false, operating: false, jobPhase: "idle" });

    m.setInputs({ extServoOn: true });
    expect(step().servoOn).toBe(true);
    m.setInputs({ extServoOn: false });

    m.setInputs({ jobNumber: 1, jobStrobe: true });
    expect(step()).toMatchObject({ jobReceived: false, jobEcho: 0 }); // strobe seen; echo delay is 10 ms
    expect(step(5)).toMatchObject({ jobReceived: false, jobEcho: 0 });
    expect(step(5)).toMatchObject({ jobReceived: true, jobEcho: 1 });
    m.setInputs({ jobStrobe: false });
    expect(step()).toMatchObject({ jobReceived: false, jobEcho: 1 });

    m.setInputs({ extStart: true });
    expect(step()).toMatchObject({ operating: true, currentJob: 1, jobPhase: "approach", inZone: false });
    m.setInputs({ extStart: false });

    const phases: string[] = [];
    const zone = new Set<string>();
    let prev = m.status.jointPositions;
    let maxDelta = 0;
    let s = m.status;
    while (s.operating) {
      s = step();
      if (phases.at(-1) !== s.jobPhase) phases.push(s.jobPhase);
      if (s.inZone) zone.add(s.jobPhase);
      for (const [i, v] of s.jointPositions.entries()) maxDelta = Math.max(maxDelta, Math.abs(v - prev[i]!));
      prev = s.jointPositions;
    }
    expect(phases).toEqual(["approach", "in_zone", "pick", "retreat", "idle"]);
    expect([...zone]).toEqual(["in_zone", "pick"]);
    expect(maxDelta).toBeGreaterThan(0);
    expect(maxDelta).toBeLessThan(2); // degrees per 10 ms: continuous motion, no jumps
    expect(s).toMatchObject({ cycleComplete: true, cycleCount: 1, currentJob: 0, inZone: false });
    run(190);
    expect(m.status.cycleComplete).toBe(true);
    run(10);
    expect(m.status.cycleComplete).toBe(false);

    expect(pulse("extStart")).toMatchObject({ operating: true, cycleComplete: false, currentJob: 1 });
    run(4000);
    expect(m.status).toMatchObject({ operating: false, cycleCount: 2 });
  });

  it("enters the zone at 30 % of the job and leaves it at 70 %", () => {
    const { m, run, running } = rig();
    running(); // the job started at the start tick; one more tick has passed (10 ms)
    run(1160);
    expect(m.status.inZone).toBe(false);
    run(30);
    expect(m.status).toMatchObject({ inZone: true, jobPhase: "in_zone" });
    run(1600);
    expect(m.status).toMatchObject({ inZone: false, jobPhase: "retreat" });
  });

  it("runs slower at a lower speed override", () => {
    const { m, run, running } = rig();
    m.setSpeedOverride(50);
    running();
    run(7900);
    expect(m.status.operating).toBe(true);
    run(200);
    expect(m.status).toMatchObject({ operating: false, cycleCount: 1 });
  });

  it("repeats the job by itself in continuous cycle", () => {
    const { m, run, running } = rig({ initial: { continuousCycle: true } });
    running();
    run(4000 * 2 + 100);
    expect(m.status).toMatchObject({ operating: true, cycleCount: 2, continuousCycle: true });
  });

  it("acts on start edges only: a start held high does not restart the next cycle", () => {
    const { m, step, run, pulse, select } = rig();
    pulse("extServoOn");
    select(3);
    m.setInputs({ extStart: true });
    step();
    run(2000);
    expect(m.status).toMatchObject({ operating: false, cycleCount: 1 });
  });
});

describe("refusals set error and errorCode", () => {
  it("servo on: 0x2080 in teach", () => {
    const { m, pulse } = rig();
    m.setMode("teach");
    expect(pulse("extServoOn")).toMatchObject({ servoOn: false, error: true, errorCode: REFUSAL.WRONG_MODE });
  });
  it("servo on: 0x2100 without command remote", () => {
    const { pulse } = rig({ initial: { remote: false } });
    expect(pulse("extServoOn")).toMatchObject({ servoOn: false, errorCode: 0x2100 });
  });
  it("servo on: 0x2060 with an alarm", () => {
    const { m, pulse } = rig();
    m.raiseAlarm(4100, { major: false, resettable: true });
    expect(pulse("extServoOn")).toMatchObject({ servoOn: false, errorCode: 0x2060 });
  });
  it.each(["external", "pendant", "controller"] as const)("servo on: 0x3450 with the %s e-stop pressed", (which) => {
    const { m, pulse } = rig();
    m.pressEstop(which);
    expect(pulse("extServoOn")).toMatchObject({ servoOn: false, errorCode: 0x3450 });
  });

  it("start: 0x2010 while operating", () => {
    const { running, pulse } = rig();
    running();
    expect(pulse("extStart")).toMatchObject({ operating: true, errorCode: REFUSAL.OPERATING });
  });
  it("start: 0x2040 while external hold is high", () => {
    const { m, pulse, select, step } = rig();
    pulse("extServoOn");
    select(1);
    m.setInputs({ extHold: true });
    step();
    expect(pulse("extStart")).toMatchObject({ operating: false, hold: true, errorCode: 0x2040 });
  });
  it("start: 0x2060 with an alarm", () => {
    const { m, pulse, select } = rig();
    pulse("extServoOn");
    select(1);
    m.raiseAlarm(4100, { major: false, resettable: true });
    expect(pulse("extStart")).toMatchObject({ servoOn: true, operating: false, errorCode: 0x2060 });
  });
  it("start: 0x2070 with servo off", () => {
    const { pulse, select } = rig();
    select(1);
    expect(pulse("extStart")).toMatchObject({ operating: false, errorCode: 0x2070 });
  });
  it("start: 0x2080 in teach", () => {
    const { m, pulse, select } = rig();
    pulse("extServoOn");
    select(1);
    m.setMode("teach");
    expect(pulse("extStart")).toMatchObject({ operating: false, errorCode: 0x2080 });
  });
  it("start: 0x2100 without command remote", () => {
    const { m, pulse, select } = rig();
    pulse("extServoOn");
    select(1);
    m.setRemote(false);
    expect(pulse("extStart")).toMatchObject({ operating: false, errorCode: 0x2100 });
  });
  it("start: 0x3230 while an e-stop is pressed", () => {
    const { m, pulse, select } = rig();
    pulse("extServoOn");
    select(1);
    m.pressEstop("pendant");
    expect(pulse("extStart")).toMatchObject({ operating: false, errorCode: 0x3230 });
  });
  it("start: 0x4040 with no job selected", () => {
    const { pulse } = rig();
    pulse("extServoOn");
    expect(pulse("extStart")).toMatchObject({ operating: false, errorCode: 0x4040 });
  });
  it("job select: 0x4040 for a job that does not exist, without echo", () => {
    const { m, run } = rig();
    m.setInputs({ jobNumber: 42, jobStrobe: true });
    run(50);
    expect(m.status).toMatchObject({ jobReceived: false, jobEcho: 0, error: true, errorCode: 0x4040 });
  });
  it("job select: 0x2010 while operating", () => {
    const { m, run, running } = rig();
    running();
    m.setInputs({ jobNumber: 2, jobStrobe: true });
    run(50);
    expect(m.status).toMatchObject({ jobReceived: false, jobEcho: 1, currentJob: 1, errorCode: 0x2010 });
  });

  it("error clears on an alarm-reset edge, and on the next accepted command", () => {
    const { m, pulse } = rig();
    pulse("extStart");
    expect(m.status.errorCode).toBe(0x2070);
    expect(pulse("alarmReset")).toMatchObject({ error: false, errorCode: 0 });
    pulse("extStart");
    expect(pulse("extServoOn")).toMatchObject({ servoOn: true, error: false, errorCode: 0 });
  });
});

describe("e-stop, hold, alarms", () => {
  it.each(["external", "pendant", "controller"] as const)("%s e-stop during a job: servo off at once, job paused", (which) => {
    const { m, run, running, pulse, step } = rig();
    running();
    run(1000);
    const elapsed = m.status.jobElapsedMs;
    m.pressEstop(which);
    const key = `estop${which[0]!.toUpperCase()}${which.slice(1)}Ok` as const;
    expect(m.status).toMatchObject({ servoOn: false, operating: false, estopOk: false, [key]: false, alarm: false });
    run(500);
    expect(m.status.jobElapsedMs).toBe(elapsed);
    m.releaseEstop(which);
    expect(step()).toMatchObject({ estopOk: true, [key]: true, servoOn: false }); // release does not restore servo
    pulse("extServoOn");
    expect(pulse("extStart")).toMatchObject({ operating: true, currentJob: 1 });
    run(4000 - elapsed - 30);
    expect(m.status.operating).toBe(true);
    run(30);
    expect(m.status).toMatchObject({ operating: false, cycleCount: 1 });
  });

  it("external hold stops motion at once, latches, and a new start resumes the job", () => {
    const { m, step, run, running, pulse } = rig();
    running();
    run(1500);
    m.setInputs({ extHold: true });
    const held = step();
    expect(held).toMatchObject({ operating: false, hold: true, servoOn: true, currentJob: 1, inZone: true });
    run(1000);
    expect(m.status.jobElapsedMs).toBe(held.jobElapsedMs);
    expect(m.status.jointPositions).toEqual(held.jointPositions);
    m.setInputs({ extHold: false });
    expect(step()).toMatchObject({ hold: true, operating: false }); // latched until a new start
    expect(pulse("extStart")).toMatchObject({ operating: true, hold: false, jobElapsedMs: held.jobElapsedMs });
    run(4000 - held.jobElapsedMs);
    expect(m.status).toMatchObject({ operating: false, cycleCount: 1 });
  });

  it("a major alarm drops servo power and stops the job; a minor one only stops the job", () => {
    const a = rig();
    a.running();
    a.m.raiseAlarm(1234, { major: false, resettable: true });
    expect(a.m.status).toMatchObject({ alarm: true, minorAlarm: true, majorAlarm: false, servoOn: true, operating: false });
    const b = rig();
    b.running();
    b.m.raiseAlarm(4321, { major: true, resettable: true });
    expect(b.m.status).toMatchObject({ alarm: true, majorAlarm: true, alarmCode: 4321, servoOn: false, operating: false });
  });

  it("alarm reset clears resettable alarms but not non-resettable ones", () => {
    const { m, pulse } = rig();
    m.raiseAlarm(4100, { major: true, resettable: false });
    m.raiseAlarm(1500, { major: false, resettable: true });
    expect(m.status.alarmCode).toBe(1500);
    expect(pulse("alarmReset")).toMatchObject({ alarm: true, alarmCode: 4100, majorAlarm: true, minorAlarm: false });
    expect(pulse("extServoOn").errorCode).toBe(0x2060);
    m.clearAlarm(4100);
    expect(m.status.alarm).toBe(false);
    expect(pulse("extServoOn")).toMatchObject({ servoOn: true, errorCode: 0 });
  });

  it("alarm reset acts on the rising edge: held high it does not clear a later alarm", () => {
    const { m, step } = rig();
    m.setInputs({ alarmReset: true });
    step();
    m.raiseAlarm(1500, { major: false, resettable: true });
    expect(step().alarm).toBe(true);
  });
});

describe("modes and watchdog", () => {
  it("energy saving reads as servo off and refuses start with 0x2070; servo on wakes it", () => {
    const { m, pulse, select } = rig();
    pulse("extServoOn");
    select(1);
    m.setEnergySaving(true);
    expect(m.status).toMatchObject({ servoOn: false, energySaving: true, startPermit: false });
    expect(pulse("extStart")).toMatchObject({ operating: false, errorCode: 0x2070 });
    expect(pulse("extServoOn")).toMatchObject({ servoOn: true, energySaving: false });
    expect(pulse("extStart").operating).toBe(true);
    m.setEnergySaving(true); // ignored while a job runs
    expect(m.status).toMatchObject({ energySaving: false, servoOn: true });
  });

  it("teach forces remote off, drops servo, stops the job; remote stays off back in play", () => {
    const { m, running, pulse } = rig();
    running();
    m.setMode("teach");
    expect(m.status).toMatchObject({ mode: "teach", remote: false, servoOn: false, operating: false });
    m.setRemote(true);
    expect(m.status.remote).toBe(false);
    m.setMode("play");
    expect(m.status.remote).toBe(false);
    expect(pulse("extServoOn").errorCode).toBe(0x2100);
    m.setRemote(true);
    expect(pulse("extServoOn").servoOn).toBe(true);
  });

  it("the watchdog holds the robot when the heartbeat stops, and reads its setting back", () => {
    const { m, step, run, running } = rig();
    running();
    m.setInputs({ watchdogMs: 100, heartbeat: 1 });
    for (let hb = 2; hb < 20; hb++) {
      m.setInputs({ heartbeat: hb });
      step();
    }
    expect(m.status).toMatchObject({ operating: true, watchdogMs: 100, watchdogTripped: false });
    run(100);
    expect(m.status.operating).toBe(true);
    step();
    expect(m.status).toMatchObject({ watchdogTripped: true, operating: false, hold: true });
    m.setInputs({ heartbeat: 99 });
    expect(step()).toMatchObject({ watchdogTripped: false, hold: true, operating: false });
  });
});

describe("model guards and invariants", () => {
  it("rejects time going backwards, bad inputs and bad jobs", () => {
    const { m, now } = rig();
    expect(() => m.tick(now() - 1)).toThrow(RangeError);
    expect(() => m.setInputs({ jobNumber: 70000 })).toThrow(RangeError);
    expect(() => m.setSpeedOverride(120)).toThrow(RangeError);
    const bad = { number: 9, name: "BAD", durationMs: 100, phases: [{ name: "a", fraction: 0.5, pose: homePose() }] };
    expect(() => validateJobs([bad], 6)).toThrow(/add up/);
    expect(() => new RobotModel({ jobs: defaultJobs(6), axes: 7 })).toThrow(/axes/);
  });

  const action = fc.oneof(
    fc.record({ k: fc.constant("step" as const), ms: fc.integer({ min: 1, max: 400 }) }),
    fc.record({
      k: fc.constant("in" as const),
      key: fc.constantFrom("extServoOn", "extStart", "extHold", "alarmReset", "jobStrobe"),
      v: fc.boolean(),
    }),
    fc.record({ k: fc.constant("job" as const), n: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ k: fc.constant("estop" as const), which: fc.constantFrom("external", "pendant", "controller"), v: fc.boolean() }),
    fc.record({ k: fc.constant("alarm" as const), major: fc.boolean() }),
    fc.record({ k: fc.constant("mode" as const), v: fc.constantFrom("teach", "play"), remote: fc.boolean() }),
    fc.record({ k: fc.constant("saving" as const), v: fc.boolean() }),
  );

  it("never runs without servo, play, remote and e-stops OK, and never moves while stopped", () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 80 }), (actions) => {
        const { m, step } = rig();
        for (const a of actions) {
          const before = m.status;
          switch (a.k) {
            case "step": {
              const s = step(a.ms);
              if (!before.operating) expect(s.jointPositions).toEqual(before.jointPositions);
              break;
            }
            case "in":
              m.setInputs({ [a.key]: a.v });
              break;
            case "job":
              m.setInputs({ jobNumber: a.n });
              break;
            case "estop":
              if (a.v) m.pressEstop(a.which);
              else m.releaseEstop(a.which);
              break;
            case "alarm":
              m.raiseAlarm(a.major ? 4000 : 1000, { major: a.major, resettable: true });
              break;
            case "mode":
              m.setMode(a.v);
              m.setRemote(a.remote);
              break;
            case "saving":
              m.setEnergySaving(a.v);
              break;
          }
          const s = m.status;
          if (s.operating) {
            expect(s).toMatchObject({ servoOn: true, mode: "play", estopOk: true, alarm: false, hold: false });
          }
          if (!s.estopOk || s.majorAlarm) expect(s.servoOn).toBe(false);
          if (s.mode === "teach") expect(s.remote).toBe(false);
          if (s.inZone) expect(s.currentJob).not.toBe(0);
        }
      }),
    );
  });
});

describe("job select while paused", () => {
  it("a new selection discards the paused job: the next start runs the new job from its top", () => {
    const { m, step, run, running, pulse, select } = rig();
    running();
    run(1000);
    m.setInputs({ extHold: true });
    step();
    m.setInputs({ extHold: false });
    select(2);
    expect(m.status).toMatchObject({ currentJob: 0, jobEcho: 2, jobPhase: "idle", hold: true });
    expect(pulse("extStart")).toMatchObject({ operating: true, currentJob: 2, hold: false });
    expect(m.status.jobElapsedMs).toBe(10);
  });
});
