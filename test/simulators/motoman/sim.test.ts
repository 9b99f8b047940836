/**
 * MotomanSim's Modbus face over real sockets (modbus-serial as the master on
 * 127.0.0.1): the status block follows the model, command writes reach it,
 * comm faults and latency; and the robot HTTP control interface.
 */
import { afterEach, describe, expect, it } from "vitest";
import { HSES_REFUSAL, type MotomanCommands, type MotomanStatus } from "../../../src/profiles/motoman-yrc1000.js";
import { decodeStatusRegisters, encodeCommandRegisters } from "../../../src/profiles/motoman-yrc1000-codec.js";
import { MOTOMAN_WINDOW_LENGTH } from "../../../src/profiles/motoman-yrc1000-map.js";
import { homePose } from "../../../simulators/motoman/jobs.js";
import { startMotomanControlServer } from "../../../simulators/motoman/control.js";
import { MotomanSim, type MotomanSimOptions } from "../../../simulators/motoman/sim.js";
import { RegisterBank } from "../../../simulators/modbus/bank.js";
import { closeClient, failureOf, tcpClient, type ModbusClient } from "../modbus/client.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const BASE = 200;

async function robot(opts: MotomanSimOptions = {}): Promise<{ sim: MotomanSim; client: ModbusClient; port: number }> {
  const sim = new MotomanSim({ base: BASE, ...opts });
  const { port } = await sim.start();
  cleanups.push(() => sim.stop());
  const client = await tcpClient(port, 1, 300);
  cleanups.push(() => closeClient(client));
  return { sim, client, port };
}

async function readStatus(c: ModbusClient): Promise<MotomanStatus> {
  return decodeStatusRegisters((await c.readHoldingRegisters(BASE, MOTOMAN_WINDOW_LENGTH)).data);
}

/** The command block as words, for FC16. */
function commandWords(c: Partial<MotomanCommands>): number[] {
  const full: MotomanCommands = { extServoOn: false, extStart: false, extHold: false, alarmReset: false, jobNumber: 0, jobStrobe: false, heartbeat: 0, watchdogMs: 0, ...c };
  const m = encodeCommandRegisters(full);
  return [0, 1, 2, 3].map((i) => m.get(i) ?? 0);
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 2000): Promise<T> {
  const t0 = performance.now();
  let v = await read();
  while (!ok(v)) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}; last ${JSON.stringify(v)}`);
    await sleep(10);
    v = await read();
  }
  return v;
}

describe("status block", () => {
  it("reflects the model at base, from the first read", async () => {
    const { client } = await robot();
    const s = await readStatus(client);
    expect(s).toMatchObject({ mode: "play", remote: true, servoOn: false, estopOk: true, operating: false, speedOverride: 100, errorCode: 0 });
    expect(s.jointPositions).toEqual(homePose());
    // Registers below base are not the robot's.
    expect((await client.readHoldingRegisters(0, 4)).data).toEqual([0, 0, 0, 0]);
  });

  it("shows operator and fault actions at once: e-stop (active-low), alarm, mode, remote, speed", async () => {
    const { sim, client } = await robot({ tickMs: 1000 }); // slow clock: only the action itself can update the registers
    sim.pressEstop("controller");
    let s = await readStatus(client);
    expect(s.estopOk).toBe(false);
    expect(s.estopControllerOk).toBe(false);
    expect(s.estopExternalOk).toBe(true);
    sim.releaseEstop("controller");
    sim.raiseAlarm(4321, { major: true });
    s = await readStatus(client);
    expect(s).toMatchObject({ estopOk: true, alarm: true, majorAlarm: true, alarmCode: 4321 });
    sim.clearAlarm(4321);
    sim.setRemote(false);
    sim.setSpeedOverride(37.5);
    s = await readStatus(client);
    expect(s).toMatchObject({ alarm: false, remote: false, speedOverride: 37.5 });
    sim.setMode("teach");
    expect((await readStatus(client)).mode).toBe("teach");
  });

  it("is rewritten every tick: a client cannot overwrite the robot's status", async () => {
    const { client } = await robot();
    await client.writeRegister(BASE + 16, 0xffff);
    const word = await until(
      async () => (await client.readHoldingRegisters(BASE + 16, 1)).data[0]!,
      (w) => w !== 0xffff,
      "the status word rewritten by the next tick",
    );
    expect(word & 0b1100_0001).toBe(0b0100_0000); // play (bit 6) on; teach (bit 7) and servo on (bit 0) off
  });
});

describe("command block", () => {
  it("runs the remote-start handshake from Modbus writes (FC16 and FC6)", async () => {
    const { sim, client } = await robot({ model: { echoDelayMs: 10 } });
    await client.writeRegisters(BASE, commandWords({ extServoOn: true }));
    expect(sim.commands.extServoOn).toBe(true); // decoded at the write, before any tick
    await until(() => readStatus(client), (s) => s.servoOn, "servo on");

    await client.writeRegisters(BASE, commandWords({ extServoOn: false, jobNumber: 2, jobStrobe: true }));
    let s = await until(() => readStatus(client), (x) => x.jobReceived, "job received");
    expect(s.jobEcho).toBe(2);
    await client.writeRegister(BASE, commandWords({})[0]!); // strobe down (FC6, word 0 only)
    expect(sim.commands.jobNumber).toBe(2); // word 1 kept
    await until(() => readStatus(client), (x) => !x.jobReceived, "job_received cleared");

    await client.writeRegister(BASE, commandWords({ extStart: true })[0]!);
    s = await until(() => readStatus(client), (x) => x.operating, "operating");
    expect(s.currentJob).toBe(2);
    const j0 = s.jointPositions[0]!;
    await sleep(200);
    expect((await readStatus(client)).jointPositions[0]).not.toBe(j0); // the real clock moves the arm
    expect(sim.status.operating).toBe(true);
  });

  it("ignores writes outside the command block, and reads commands set through setCommands back", async () => {
    const { sim, client } = await robot();
    await client.writeRegister(BASE + 4, 0xffff); // reserved
    await client.writeRegister(BASE - 1, 0xffff); // not the robot's
    expect(sim.commands).toMatchObject({ extServoOn: false, extHold: false, jobNumber: 0 });
    sim.setCommands({ extHold: true, jobNumber: 3, watchdogMs: 500 });
    const words = (await client.readHoldingRegisters(BASE, 4)).data;
    expect(words).toEqual(commandWords({ extHold: true, jobNumber: 3, watchdogMs: 500 }));
    await until(() => readStatus(client), (s) => s.hold && s.watchdogMs === 500, "hold and the watchdog read-back");
    expect(() => sim.setCommands({ jobNumber: 70000 })).toThrow(RangeError);
    expect(sim.commands.jobNumber).toBe(3);
  });

  it("refuses a start without remote with 0x2100 in error_code", async () => {
    const { sim, client } = await robot();
    sim.setRemote(false);
    await client.writeRegister(BASE, commandWords({ extStart: true })[0]!);
    const s = await until(() => readStatus(client), (x) => x.error, "error");
    expect(s.errorCode).toBe(HSES_REFUSAL.REMOTE_NOT_SET);
  });
});

describe("communication faults", () => {
  it("silent drop: requests go unanswered while the robot keeps running; restore answers again", async () => {
    const { sim, client } = await robot();
    sim.dropComms("silent");
    expect(sim.commsDropped).toBe("silent");
    const f = await failureOf(client.readHoldingRegisters(BASE, 2));
    expect(f.message).toMatch(/timed out/i);
    sim.pressEstop(); // the robot is alive behind the dead link
    expect(sim.status.estopOk).toBe(false);
    sim.restoreComms();
    expect(sim.faults.active()).toEqual([]);
    const s = await readStatus(client);
    expect(s.estopOk).toBe(false);
  });

  it("refuse: connections close and new ones are refused until restored", async () => {
    const { sim, client, port } = await robot();
    sim.dropComms("refuse");
    await until(() => Promise.resolve(client.isOpen), (open) => !open, "the client socket closed");
    await expect(tcpClient(port, 1, 300).then((c) => c.readHoldingRegisters(BASE, 1))).rejects.toThrow();
    sim.restoreComms();
    const again = await tcpClient(port, 1, 300);
    cleanups.push(() => closeClient(again));
    expect((await again.readHoldingRegisters(BASE + 16, 1)).data).toHaveLength(1);
  });

  it("latency delays every answer; 0 removes it", async () => {
    const { sim, client } = await robot();
    sim.setLatency(120);
    let t0 = performance.now();
    await client.readHoldingRegisters(BASE, 1).catch(() => undefined); // the client timeout is 300 ms
    expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
    sim.setLatency(0);
    t0 = performance.now();
    await client.readHoldingRegisters(BASE, 1);
    expect(performance.now() - t0).toBeLessThan(110);
  });
});

describe("construction", () => {
  it("refuses a window outside the writable M registers, and a bank too small for it", () => {
    expect(() => new MotomanSim({ base: 557 })).toThrow(RangeError);
    expect(() => new MotomanSim({ base: 0, bank: new RegisterBank({ holdingRegisters: 40 }) })).toThrow(/needs 46/);
  });

  it("stops ticking when stopped", async () => {
    const { sim } = await robot();
    sim.setCommands({ extServoOn: true });
    await sim.stop();
    await sleep(50);
    expect(sim.status.servoOn).toBe(false); // never scanned
  });
});

describe("HTTP control interface", () => {
  async function control(): Promise<{ sim: MotomanSim; url: string }> {
    const { sim } = await robot();
    const srv = await startMotomanControlServer({ port: 0, robots: new Map([["r1", sim]]) });
    cleanups.push(() => srv.close());
    return { sim, url: `http://127.0.0.1:${srv.port}` };
  }

  const post = async (url: string, body: unknown): Promise<{ code: number; json: Record<string, unknown> }> => {
    const r = await fetch(`${url}/robot`, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
    return { code: r.status, json: (await r.json()) as Record<string, unknown> };
  };

  it("presses and releases e-stops, raises and clears alarms, sets mode and remote", async () => {
    const { sim, url } = await control();
    expect((await post(url, { robot: "r1", action: "estop", pressed: true, which: "pendant" })).code).toBe(200);
    expect(sim.status.estopPendantOk).toBe(false);
    await post(url, { action: "estop", pressed: false, which: "pendant" }); // one robot: the name may be left out
    expect(sim.status.estopOk).toBe(true);
    await post(url, { action: "alarm", code: 1234, major: true });
    expect(sim.status).toMatchObject({ alarm: true, majorAlarm: true, alarmCode: 1234 });
    await post(url, { action: "clear_alarm", code: 1234 });
    expect(sim.status.alarm).toBe(false);
    await post(url, { action: "remote", on: false });
    expect(sim.status.remote).toBe(false);
    const r = await post(url, { action: "mode", mode: "teach" });
    expect((r.json.status as { mode: string }).mode).toBe("teach");
  });

  it("sets commands, comm faults and latency, and lists the robots", async () => {
    const { sim, url } = await control();
    await post(url, { action: "commands", commands: { jobNumber: 2, extHold: true } });
    expect(sim.commands).toMatchObject({ jobNumber: 2, extHold: true });
    await post(url, { action: "comms", drop: "silent" });
    await post(url, { action: "latency", ms: 50 });
    const state = (await (await fetch(`${url}/robots`)).json()) as { robots: Record<string, { comms: string; faults: unknown[] }> };
    expect(state.robots.r1!.comms).toBe("silent");
    expect(state.robots.r1!.faults).toHaveLength(2);
    await post(url, { action: "comms", drop: null });
    await post(url, { action: "latency", ms: 0 });
    expect(sim.faults.active()).toEqual([]);
  });

  it("answers 400 for bad requests, 404 and 405", async () => {
    const { url } = await control();
    expect((await post(url, "{nope")).code).toBe(400);
    expect((await post(url, { action: "warp" })).code).toBe(400);
    expect((await post(url, { robot: "r9", action: "remote", on: true })).code).toBe(400);
    expect((await post(url, { action: "commands", commands: { jobNumber: 70000 } })).code).toBe(400);
    expect((await post(url, { action: "alarm", code: 0 })).code).toBe(400);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/robot`)).status).toBe(405);
  });
});
