/**
 * The fleet benchmark's devices: N Modbus TCP simulators in one child process
 * (this file with --fleet-sim <count>) that timestamp every request and every
 * output write, and record as they go (every interval and mirror time in
 * preallocated arrays, samples.ts, for exact percentiles; nothing allocated
 * per request: the simulator's own allocations and GC pauses land in the
 * device-side figures).
 *
 * Figures per device: polls (requests closer than 3 ms apart count as one
 * poll: a read plan of two requests, or a write that follows a read in the
 * same cycle) and the interval between polls. Device 0 flips its input 0
 * every 57 ms and times the coil write that mirrors it. The child also
 * reports its own CPU: it handles the same requests as the controller with
 * the same system calls (one read and one write per request), so the ratio
 * of the two is a figure that does not move with the machine's speed.
 *
 * Tried and dropped: the devices spread over two simulator processes (each
 * answering its half in parallel). On 2 cores it made nothing better
 * (simulators' CPU up, intervals and mirror within run-to-run noise).
 */
import { fork, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DAEMON_NODE_FLAGS } from "../../src/infra/realtime.js";
import type { HistogramSummary } from "../../src/loop/histogram.js";
import { ModbusTcpSimServer } from "../../simulators/modbus/tcp-server.js";
import { RegisterBank } from "../../simulators/modbus/bank.js";
import { onRequests } from "../helpers/request-hook.js";
import { Samples } from "./samples.js";
import { sleep } from "./util.js";
import type { Stall } from "./wake-probe.js";
import { WireCapture } from "./wire-capture.js";
import { PollTrack, type WireReport } from "./wire.js";

export interface SimReport {
  /** The simulator's own event-loop delay (ms): its stalls land in the device-side intervals. */
  simDelayP99: number;
  simDelayMax: number;
  /** The simulator process's CPU over the window, % of one core. */
  simCpu: number;
  pollsPerSecond: number[];
  interval: HistogramSummary;
  mirror: HistogramSummary;
  /** The mirror in two parts: flip → the first poll that starts after it (the wait for a read) … */
  mirrorWait: HistogramSummary;
  /** … and that poll's start → the coil write (the controller's read, logic and write within one cycle). */
  mirrorCycle: HistogramSummary;
  mirrorSamples: number;
  /** The same window on the wire (kernel timestamps), where tcpdump can run (FLEET_WIRE=0: not tried). */
  wire?: WireReport;
}

/** Child: N devices; device 0 flips its input and times the mirror. */
async function simMain(n: number): Promise<void> {
  const servers: ModbusTcpSimServer[] = [];
  const ports: number[] = [];
  // 32 devices × 100 polls/s × 30 s: about 96,000 intervals a window
  const intervals = new Samples(1 << 17);
  const mirror = new Samples(1 << 10);
  const mirrorWait = new Samples(1 << 10);
  const mirrorCycle = new Samples(1 << 10);
  const tracks: PollTrack[] = [];
  let flipAt = 0;
  let pollAfterFlip = 0;
  let flipValue = false;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let cpu0 = process.cpuUsage();
  let wall0 = performance.now();
  for (let i = 0; i < n; i++) {
    const bank = new RegisterBank({ coils: 16, discreteInputs: 16, holdingRegisters: 16, inputRegisters: 16 });
    const server = new ModbusTcpSimServer({ port: 0, units: bank });
    const track = new PollTrack(intervals);
    tracks.push(track);
    onRequests(server, (t) => {
      if (track.request(t) && i === 0 && flipAt > 0 && pollAfterFlip === 0) pollAfterFlip = t;
    });
    if (i === 0) {
      bank.onWrite((area, addr) => {
        if (area === "coil" && addr === 0 && bank.getBit("coil", 0) === flipValue && flipAt > 0) {
          const t = performance.now();
          mirror.recordMs(t - flipAt);
          if (pollAfterFlip > 0) {
            mirrorWait.recordMs(pollAfterFlip - flipAt);
            mirrorCycle.recordMs(t - pollAfterFlip);
          }
          flipAt = 0;
        }
      });
    }
    ports.push((await server.start()).port);
    servers.push(server);
  }
  // The flip marker: a socket that sends to itself (and drops what it reads).
  const marker = dgram.createSocket("udp4");
  marker.on("message", () => undefined);
  await new Promise<void>((resolve) => marker.bind(0, "127.0.0.1", resolve));
  const markerPort = marker.address().port;
  await new Promise<void>((resolve) => marker.connect(markerPort, "127.0.0.1", resolve));
  const flipped = [Buffer.from([0]), Buffer.from([1])] as const;
  const flipper = setInterval(() => {
    flipValue = !flipValue;
    servers[0]!.bank().setBit("di", 0, flipValue);
    flipAt = performance.now();
    pollAfterFlip = 0;
    marker.send(flipped[flipValue ? 1 : 0]);
  }, 57);
  process.send?.({ ports, markerPort });
  process.on("message", (m: { cmd: string }) => {
    if (m.cmd === "reset") {
      for (const t of tracks) t.reset();
      intervals.reset();
      mirror.reset();
      mirrorWait.reset();
      mirrorCycle.reset();
      delay.reset();
      cpu0 = process.cpuUsage();
      wall0 = performance.now();
      process.send?.({ ok: true });
    } else if (m.cmd === "report") {
      const c = process.cpuUsage(cpu0);
      const report: SimReport = {
        simDelayP99: delay.percentile(99) / 1e6,
        simDelayMax: delay.max / 1e6,
        simCpu: ((c.user + c.system) / 1000 / (performance.now() - wall0)) * 100,
        pollsPerSecond: tracks.map((t) => t.pollsPerSecond()),
        interval: intervals.summary(),
        mirror: mirror.summary(),
        mirrorWait: mirrorWait.summary(),
        mirrorCycle: mirrorCycle.summary(),
        mirrorSamples: mirror.count,
      };
      process.send?.(report);
    } else if (m.cmd === "stop") {
      clearInterval(flipper);
      marker.close();
      void Promise.all(servers.map((s) => s.stop())).then(() => process.exit(0));
    }
  });
}

/**
 * Every poll of the fleet's controllers starts with a read of the discrete inputs (FC02) and has one:
 * they read di:0–1 and ir:0, cellio's plan in function-code order, the baseline di first. The wire
 * counts polls by it (wire.ts); the simulator's stamps carry no function code and group by time.
 */
export const POLL_FC = 2;

/** Starts measuring a controller's CPU; what it returns ends the measurement and gives % of one core. */
export type CpuMeterStart = () => Promise<() => Promise<number>>;

/** A run's CPU, the controller's and the simulator's over the same window (% of one core): a steady, uncaptured window (FleetSim.cpuFigures). */
export interface CpuFigures {
  readonly cpu: number;
  readonly simCpu: number;
  /** The same over the run's timing window (from a few seconds after the controller started, captured where tcpdump runs). */
  readonly timing: { readonly cpu: number; readonly simCpu: number };
}

function ask<T>(child: ChildProcess, cmd: string): Promise<T> {
  return new Promise((resolve) => {
    child.once("message", (m) => resolve(m as T));
    child.send({ cmd });
  });
}

/** The devices' simulator process. */
export class FleetSim {
  private capture: WireCapture | undefined;

  private constructor(
    private readonly child: ChildProcess,
    /** Every device's port, in device order. */
    readonly ports: readonly number[],
    /** Where the flip datagrams go (UDP, loopback). */
    readonly markerPort: number,
  ) {}

  static async start(devices: number): Promise<FleetSim> {
    // The simulator runs with the daemon's node flags (src/infra/realtime.ts: under SCHED_FIFO a GC would
    // otherwise wait for V8 helper threads at normal priority; no heap compaction pause after start).
    const child = fork(fileURLToPath(import.meta.url), ["--fleet-sim", String(devices)], { stdio: ["ignore", "ignore", "inherit", "ipc"], execArgv: [...DAEMON_NODE_FLAGS] });
    const { ports, markerPort } = await new Promise<{ ports: number[]; markerPort: number }>((resolve) => child.once("message", (m) => resolve(m as { ports: number[]; markerPort: number })));
    return new FleetSim(child, ports, markerPort);
  }

  /** The simulator process's pid (for chrt). */
  get pid(): number {
    return this.child.pid!;
  }

  /** Starts a measurement window: forget everything recorded so far, and start capturing the wire (unless `wire: false`). */
  async reset(opts: { readonly wire?: boolean } = {}): Promise<void> {
    await this.capture?.stop().catch(() => undefined);
    const wire = opts.wire !== false && process.env.FLEET_WIRE !== "0";
    this.capture = wire ? await WireCapture.start({ ports: this.ports, markerPort: this.markerPort, pollFc: POLL_FC }) : undefined;
    await ask(this.child, "reset");
  }

  /**
   * The CPU figures of a run whose timing window was `timing` (`seconds` long, CPU `timingCpu`),
   * from a second window right after it, half as long (at least 5 s) and never captured:
   * - the capture runs its filter and copies each segment in every sender's system call, the
   *   controller's and the simulator's alike (3.6 % of the daemon's perf samples were in it);
   * - the timing window starts a few seconds after the controller does, and a controller's first
   *   seconds cost more (the daemon's CPU ÷ the simulator's fell from 1.17 to 1.04 over its first
   *   15 s, in 5 s windows); the second window comes after them.
   * `meter` starts measuring the controller's CPU and returns what ends it (% of a core); `wait`
   * is what the bench does meanwhile (the timing window's scrapes, say).
   */
  async cpuFigures(timing: SimReport, timingCpu: number, seconds: number, meter: CpuMeterStart, wait: (ms: number) => Promise<unknown> = sleep): Promise<CpuFigures> {
    await this.reset({ wire: false });
    const end = await meter();
    await wait(Math.max(5, seconds / 2) * 1000);
    const cpu = await end();
    const { simCpu } = await ask<SimReport>(this.child, "report");
    return { cpu, simCpu, timing: { cpu: timingCpu, simCpu: timing.simCpu } };
  }

  /** The window's figures, the wire's among them when it was captured (its long poll intervals set beside `stalls`). */
  async report(stalls?: readonly Stall[]): Promise<SimReport> {
    const report = await ask<SimReport>(this.child, "report");
    const capture = this.capture;
    this.capture = undefined;
    return capture ? { ...report, wire: await capture.stop(stalls) } : report;
  }

  stop(): void {
    void this.capture?.stop().catch(() => undefined);
    this.child.send({ cmd: "stop" });
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && process.argv[2] === "--fleet-sim") void simMain(Number(process.argv[3] ?? 32));
