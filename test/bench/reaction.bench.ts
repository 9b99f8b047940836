/**
 * Interlock reaction time, measured from the simulator's side: the bench
 * process runs the simulators (door switch + Motoman robot, startSimulators)
 * and cellio runs as `cellio run` in a CHILD PROCESS (dist/src/main.js, which
 * `npm run bench` builds first, as the other benches use it), so cellio's loop never shares an
 * event loop with the simulator's clock and the timestamps are the
 * simulator's own.
 *
 * The bench flips the door input in the simulator's bank (setBit; cellio sees
 * it at its next read) and takes performance.now(); bank.onWrite on the
 * robot's bank decodes the ext_hold bit of the command register after every
 * client write and takes the arrival time of the hold (true) and of the
 * release (false). The cell: a 10 ms cycle, an UNLATCHED door interlock
 * forcing robot.ext_hold true, logic ext_hold "false".
 *
 * Target: two cycle periods plus one device round trip (the flip can land
 * just after a read: one period until the next read, the cycle's own read +
 * logic + write: up to one more, plus the write's round trip). The round
 * trip is measured in the same run (median FC3 read of the robot's command
 * register from this process). Printed, not asserted.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { loadConfigText } from "../../src/config/load.js";
import { MOTOMAN_YRC1000_MAP } from "../../src/profiles/motoman-yrc1000-map.js";
import { startSimulators } from "../../simulators/runner.js";
import { closeClient, tcpClient } from "../simulators/modbus/client.js";
import { freePorts } from "../e2e/helpers.js";
import { DAEMON_NODE_FLAGS } from "../../src/infra/realtime.js";
import { MAIN, fmt, sleep, stopChild, type Figure } from "./util.js";

const PERIOD = 10;
const EXT_HOLD = MOTOMAN_YRC1000_MAP.find((f) => f.name === "ext_hold")!;

function cellYaml(doorPort: number, robotPort: number): string {
  return `
version: 1
cell: { id: bench-reaction }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 4, output_budget_ms: 4, overrun: { warn_pct: 80, fault_after: 1000 } }
devices:
  door:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${doorPort}
    timeout_ms: 50
    points:
      closed: { address: "di:0", type: bool }
  robot:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${robotPort}
    timeout_ms: 50
    profile: motoman-yrc1000
    points:
      heartbeat: { heartbeat: counter }
logic:
  robot.ext_hold: "false"
interlocks:
  guard_door:
    permit: "door.closed"
    force: { robot.ext_hold: true }
    latch: false
`;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Flips scale with the window: about 15 per second, at least 1,000 for a window of 60 s or more. */
export function flipsFor(seconds: number): number {
  const n = Math.round(seconds * 15);
  return seconds >= 60 ? Math.max(1000, n) : Math.max(20, n);
}

export async function runReactionBench(seconds: number): Promise<Figure[]> {
  const [doorPort, robotPort] = await freePorts(2);
  const yaml = cellYaml(doorPort!, robotPort!);
  const { model } = loadConfigText(yaml);
  const ports = new Map([
    ["door", doorPort!],
    ["robot", robotPort!],
  ]);
  const sims = await startSimulators(model, { portOverride: (d, p) => ports.get(d) ?? p });
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-bench-"));
  const file = path.join(dir, "cell.yaml");
  await writeFile(file, yaml);
  const door = sims.device("door").bank;
  const robot = sims.device("robot").bank;
  door.setBit("di", 0, true);

  // ext_hold at the robot, decoded after every client write; a waiter per expected level.
  let holdAtRobot = ((robot.getRegister("hr", EXT_HOLD.offset) >> EXT_HOLD.bit!) & 1) === 1;
  let waiter: { level: boolean; resolve: (t: number) => void } | undefined;
  const unsubscribe = robot.onWrite((area, addr, count) => {
    if (area !== "hr" || addr > EXT_HOLD.offset || addr + count <= EXT_HOLD.offset) return;
    const now = performance.now();
    holdAtRobot = ((robot.getRegister("hr", EXT_HOLD.offset) >> EXT_HOLD.bit!) & 1) === 1;
    if (waiter && holdAtRobot === waiter.level) {
      const w = waiter;
      waiter = undefined;
      w.resolve(now);
    }
  });
  const arrival = (level: boolean, ms: number): Promise<number | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiter = undefined;
        resolve(undefined);
      }, ms);
      waiter = {
        level,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
    });

  // The device round trip, from this process: FC3 of the command register.
  const client = await tcpClient(robotPort!);
  const rtts: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await client.readHoldingRegisters(EXT_HOLD.offset, 1);
    rtts.push(performance.now() - t0);
  }
  await closeClient(client);
  rtts.sort((a, b) => a - b);
  const rtt = percentile(rtts, 50);

  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: \`npm run bench\` builds it (npm run build)`);
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, MAIN, "run", "--config", file, "--summary-every", "0"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const holds: number[] = [];
  const releases: number[] = [];
  let lost = 0;
  const flips = flipsFor(seconds);
  try {
    // Running: the logic releases the hold once the first good scan is done.
    const deadline = performance.now() + 20_000;
    while (holdAtRobot && performance.now() < deadline) await sleep(20);
    if (holdAtRobot) throw new Error(`cellio did not release ext_hold within 20 s:\n${stderr}`);
    await sleep(500);
    const WARMUP = 10; // not recorded: the first flips pay for JIT in both processes
    for (let i = -WARMUP; i < flips; i++) {
      await sleep(Math.random() * PERIOD * 2); // spread the flips over the cycle's phase
      const hold = arrival(true, 2000);
      const t0 = performance.now();
      door.setBit("di", 0, false);
      const th = await hold;
      if (th === undefined) lost++;
      else if (i >= 0) holds.push(th - t0);
      await sleep(Math.random() * PERIOD * 2);
      const release = arrival(false, 2000);
      const t1 = performance.now();
      door.setBit("di", 0, true);
      const tr = await release;
      if (tr === undefined) lost++;
      else if (i >= 0) releases.push(tr - t1);
    }
  } finally {
    unsubscribe();
    await stopChild(child);
    await sims.stop();
    await rm(dir, { recursive: true, force: true });
  }
  holds.sort((a, b) => a - b);
  releases.sort((a, b) => a - b);
  const target = 2 * PERIOD + rtt;
  const c = "door flip → ext_hold at robot (cellio child process, 10 ms cycle)";
  const figures: Figure[] = [
    { bench: "reaction", case: c, metric: "flips", value: flips, unit: "count" },
    { bench: "reaction", case: c, metric: "hold p50", value: percentile(holds, 50), unit: "ms", baseline: target, baselineName: "target 2T + RTT" },
    { bench: "reaction", case: c, metric: "hold p99", value: percentile(holds, 99), unit: "ms", baseline: target, baselineName: "target 2T + RTT" },
    { bench: "reaction", case: c, metric: "hold max", value: holds.at(-1) ?? Number.NaN, unit: "ms", baseline: target, baselineName: "target 2T + RTT" },
    { bench: "reaction", case: c, metric: "release p50", value: percentile(releases, 50), unit: "ms" },
    { bench: "reaction", case: c, metric: "release p99", value: percentile(releases, 99), unit: "ms" },
    { bench: "reaction", case: c, metric: "release max", value: releases.at(-1) ?? Number.NaN, unit: "ms" },
    { bench: "reaction", case: c, metric: "over target (hold)", value: holds.filter((h) => h > target).length, unit: "count" },
    { bench: "reaction", case: c, metric: "lost (no arrival in 2 s)", value: lost, unit: "count" },
    { bench: "reaction", case: "device round trip (FC3, from the bench process)", metric: "p50", value: rtt, unit: "ms" },
    { bench: "reaction", case: "device round trip (FC3, from the bench process)", metric: "p99", value: percentile(rtts, 99), unit: "ms" },
  ];
  for (const f of figures) process.stderr.write(`reaction: ${f.case}: ${f.metric} = ${fmt(f.value)} ${f.unit}${f.baseline === undefined ? "" : ` (${f.baselineName ?? ""} = ${fmt(f.baseline)})`}\n`);
  return figures;
}
