/**
 * The fleet bench's baseline, what people write by hand: setInterval and one
 * modbus-serial client per device, reading and mirroring as cellio does; and
 * the figures every controller run of the fleet bench gives (DeviceSide,
 * ReadFigures), cellio's runs included.
 */
import { performance } from "node:perf_hooks";
import ModbusSerial from "modbus-serial";
import { Histogram } from "../../src/loop/histogram.js";
import type { CpuFigures, CpuMeterStart, FleetSim, SimReport } from "./fleet-sim.js";
import { cpuMeter, sleep } from "./util.js";
import type { WakeProbeReport } from "./wake-probe.js";

const ModbusRTU = ModbusSerial as unknown as typeof ModbusSerial.default;

/** One controller run as the devices saw it, with the controller's CPU (% core) and RSS (MiB). */
export interface DeviceSide extends CpuFigures {
  readonly rss: number;
  readonly report: SimReport;
  /** cellio only (controller side): reads not answered by the input deadline, % of the reads due. */
  readonly inputMissPct?: number;
  /**
   * cellio only (controller side), over the window: polls not sent because the device's last read
   * was still in flight, and cycles skipped because a tick came a whole period late. Either makes a
   * device-side interval of two periods or more. `scrapes`: /metrics scrapes during the window.
   */
  readonly skips?: { readonly busy: number; readonly cycles: number; readonly scrapes: number };
  /** The daemon only: its loop thread's longest GC pause in the window, at most this (ms, a /metrics bucket bound). */
  readonly gcMaxAtMostMs?: number;
  /**
   * The daemon only: its latest cycle start in the window (start minus due time), at most this (ms, a
   * /metrics bucket bound). Beside the cycles skipped, it says how much of a device-side interval's
   * excess was cellio's own tick.
   */
  readonly latenessMaxAtMostMs?: number;
  /** The daemon only: a bare thread's wake-ups beside it in the same window (wake-probe.ts). */
  readonly probe?: WakeProbeReport;
}

/** The baseline: what people write by hand. setInterval, one modbus-serial client per device, read + mirror. */
export async function runBaseline(ports: readonly number[], seconds: number, sim: FleetSim, periodMs: number): Promise<DeviceSide & { reads: ReadFigures }> {
  const clients = await Promise.all(
    ports.map(async (port) => {
      const c = new ModbusRTU();
      await c.connectTCP("127.0.0.1", { port });
      c.setID(1);
      c.setTimeout(50);
      return c;
    }),
  );
  const last: (boolean | undefined)[] = clients.map(() => undefined);
  const rtt = new Histogram();
  let measuring = false;
  const timed = async <T>(p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await p();
    if (measuring) rtt.recordMs(performance.now() - t0);
    return r;
  };
  const timer = setInterval(() => {
    clients.forEach((c, i) => {
      timed(() => c.readDiscreteInputs(0, 2))
        .then(async (r) => {
          await timed(() => c.readInputRegisters(0, 2));
          const v = r.data[0] === true;
          if (v !== last[i]) {
            last[i] = v;
            await c.writeCoil(0, v);
          }
        })
        .catch(() => undefined);
    });
  }, periodMs);
  await sleep(1000);
  await sim.reset();
  const cpu = cpuMeter();
  measuring = true;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  measuring = false;
  const wallS = (performance.now() - t0) / 1000;
  const cpuPct = cpu();
  const rss = process.memoryUsage().rss / 2 ** 20;
  const report = await sim.report();
  const cost = await sim.cpuFigures(report, cpuPct, seconds, inProcessCpu);
  clearInterval(timer);
  await Promise.all(clients.map((c) => new Promise<void>((r) => c.close(() => r()))));
  return { ...cost, rss, report, reads: readFigures(rtt, cost.cpu, wallS) };
}

export interface ReadFigures {
  /** Read requests per second over all devices. */
  readonly perSecond: number;
  /** Request round trip over all devices (send → answer decoded), ms. */
  readonly rtt: ReturnType<Histogram["summary"]>;
  /** CPU of the controller per 1,000 reads (everything it does, loop included), ms. */
  readonly cpuMsPer1000: number;
}

/** The bench process's own CPU as a FleetSim meter (the baseline's runs and the in-process cellio's). */
export const inProcessCpu: CpuMeterStart = () => {
  const end = cpuMeter();
  return Promise.resolve(() => Promise.resolve(end()));
};

/** `cpuPct` may come from a window of its own (FleetSim.cpuFigures): the load is the same, so is the rate. */
export function readFigures(rtt: Histogram, cpuPct: number, wallS: number): ReadFigures {
  const perSecond = rtt.count / wallS;
  return { perSecond, rtt: rtt.summary(), cpuMsPer1000: perSecond > 0 ? ((cpuPct / 100) * 1000) / (perSecond / 1000) : 0 };
}

