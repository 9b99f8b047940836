/**
 * Modbus TCP client benchmark: cellio's client against modbus-serial's, in
 * the same run, against ModbusTcpSimServer on loopback. The simulator runs in
 * a child process, so the CPU time measured (process.cpuUsage) is the
 * client's alone. Prints figures; asserts nothing.
 *
 *   npm run build && node dist/test/bench/modbus-client.bench.js [seconds]
 *
 * Figures per client: sequential round trip p50/p99 (µs) and requests/s over
 * one connection; pipelined (8 requests in flight) requests/s and p50/p99;
 * CPU µs per request in both modes. Requests read 10 holding registers.
 */
import { fork } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import ModbusSerial from "modbus-serial";
import { ModbusTcpSimServer, RegisterBank } from "../../simulators/modbus/index.js";
import { ModbusTcpClient } from "../../src/drivers/modbus/tcp-client.js";
import type { Figure } from "./util.js";

// modbus-serial is CommonJS with `module.exports = ModbusRTU`: under NodeNext the
// default import IS the class at run time, while TypeScript types it as the namespace.
const ModbusRTU = ModbusSerial as unknown as typeof ModbusSerial.default;

export interface ModbusClientBenchOptions {
  /** Measured time per client and mode (default 5000 ms); a tenth of it warms up first. */
  durationMs?: number;
  /** Registers per read (default 10). */
  registers?: number;
  /** Requests in flight in the pipelined mode (default 8). */
  depth?: number;
  /** Print a table (default true). */
  print?: boolean;
}

/** One read of `count` registers at `start`. */
type ReadFn = (start: number, count: number) => Promise<unknown>;

/** Latencies (µs) and totals of one client in one mode, summed over its windows. */
interface Acc {
  samples: Float64Array;
  n: number;
  requests: number;
  cpuUs: number;
  wallMs: number;
}

const newAcc = (size: number): Acc => ({ samples: new Float64Array(size), n: 0, requests: 0, cpuUs: 0, wallMs: 0 });

function percentile(a: Acc, p: number): number {
  const sorted = a.samples.subarray(0, a.n).sort();
  return sorted[Math.min(a.n - 1, Math.floor((p / 100) * a.n))] ?? Number.NaN;
}

/** Runs `depth` loops of back-to-back reads for `ms`, adding to `acc` (when given). */
async function drive(read: ReadFn, registers: number, depth: number, ms: number, acc?: Acc): Promise<void> {
  let requests = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + ms;
  const loop = async (k: number): Promise<void> => {
    let start = k * 16;
    while (performance.now() < end) {
      const t = performance.now();
      await read(start, registers);
      if (acc && acc.n < acc.samples.length) acc.samples[acc.n++] = (performance.now() - t) * 1000;
      requests++;
      start = (start + 1) & 1023;
    }
  };
  await Promise.all(Array.from({ length: depth }, (_, k) => loop(k)));
  if (!acc) return;
  const cpu = process.cpuUsage(cpu0);
  acc.wallMs += performance.now() - t0;
  acc.cpuUs += cpu.user + cpu.system;
  acc.requests += requests;
}

/**
 * Both clients in turn, in `WINDOWS` alternating windows that together last
 * `durationMs` per client, so that both see the same machine load.
 */
const WINDOWS = 10;
async function measure(mode: string, depth: number, clients: Record<string, ReadFn>, o: Required<ModbusClientBenchOptions>, out: Record<string, number>): Promise<void> {
  const accs = Object.fromEntries(Object.keys(clients).map((k) => [k, newAcc(2_000_000)]));
  for (const read of Object.values(clients)) await drive(read, o.registers, depth, o.durationMs / 10); // warm up
  for (let w = 0; w < WINDOWS; w++) {
    for (const [name, read] of Object.entries(clients)) await drive(read, o.registers, depth, o.durationMs / WINDOWS, accs[name]);
  }
  for (const [name, a] of Object.entries(accs)) {
    out[`${name}.${mode}.p50_us`] = percentile(a, 50);
    out[`${name}.${mode}.p99_us`] = percentile(a, 99);
    out[`${name}.${mode}.req_per_s`] = (a.requests * 1000) / a.wallMs;
    out[`${name}.${mode}.cpu_us_per_req`] = a.cpuUs / a.requests;
  }
}

/** Starts the simulator in a child process; resolves with its port and a stop function. */
function startSimProcess(): Promise<{ port: number; stop: () => void }> {
  const child = fork(fileURLToPath(import.meta.url), ["--sim-server"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("message", (m: unknown) => resolve({ port: (m as { port: number }).port, stop: () => child.kill() }));
  });
}

async function simServerMain(): Promise<void> {
  const bank = new RegisterBank({ holdingRegisters: 2048 });
  for (let i = 0; i < 2048; i++) bank.setRegister("hr", i, i);
  const sim = new ModbusTcpSimServer({ port: 0, units: bank });
  const { port } = await sim.start();
  process.send?.({ port });
  process.on("disconnect", () => void sim.stop().then(() => process.exit(0)));
}

export async function runModbusClientBench(opts: ModbusClientBenchOptions = {}): Promise<Record<string, number>> {
  const o: Required<ModbusClientBenchOptions> = { durationMs: 5000, registers: 10, depth: 8, print: true, ...opts };
  const out: Record<string, number> = {};
  const sim = await startSimProcess();
  const errors = { cellio: 0, modbus_serial: 0 };
  // modbus-serial has no in-flight limit of its own: the pipelined mode simply issues `depth` reads at once.
  const ms = new ModbusRTU();
  try {
    await ms.connectTCP("127.0.0.1", { port: sim.port });
    ms.setID(1);
    ms.setTimeout(1000);
    const msRead: ReadFn = (start, count) =>
      ms.readHoldingRegisters(start, count).catch(() => {
        errors.modbus_serial++;
      });
    for (const [mode, depth] of [["seq", 1], [`pipe${o.depth}`, o.depth]] as const) {
      const cellio = new ModbusTcpClient({ host: "127.0.0.1", port: sim.port, maxInFlight: depth });
      await cellio.connect();
      const cellioRead: ReadFn = (start, count) =>
        cellio.request(1, { fc: 3, start, count }, 1000).catch(() => {
          errors.cellio++;
        });
      await measure(mode, depth, { cellio: cellioRead, modbus_serial: msRead }, o, out);
      await cellio.close();
    }
  } finally {
    await new Promise<void>((r) => ms.close(() => r()));
    sim.stop();
  }
  out["cellio.errors"] = errors.cellio;
  out["modbus_serial.errors"] = errors.modbus_serial;
  if (o.print) print(out, o);
  return out;
}

/** The same figures for the bench runner (run.ts): cellio's client, modbus-serial's as the baseline. */
export async function modbusClientFigures(seconds: number): Promise<Figure[]> {
  const out = await runModbusClientBench({ durationMs: seconds * 1000, print: false });
  const figures: Figure[] = [];
  const units: Record<string, string> = { p50_us: "µs", p99_us: "µs", req_per_s: "req/s", cpu_us_per_req: "µs CPU/req" };
  for (const mode of ["seq", "pipe8"]) {
    for (const [metric, unit] of Object.entries(units)) {
      const value = out[`cellio.${mode}.${metric}`];
      if (value === undefined) continue;
      figures.push({ bench: "modbus-client", case: mode, metric, value, unit, baseline: out[`modbus_serial.${mode}.${metric}`], baselineName: "modbus-serial" });
    }
  }
  return figures;
}

function print(out: Record<string, number>, o: Required<ModbusClientBenchOptions>): void {
  const rows: string[] = [];
  const f = (v: number | undefined): string => (v === undefined ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
  rows.push(`Modbus TCP client, FC3 x ${o.registers} registers, loopback, ${o.durationMs} ms per mode (simulator in a child process)`);
  rows.push(`${"client/mode".padEnd(24)}${"p50 µs".padStart(10)}${"p99 µs".padStart(10)}${"req/s".padStart(10)}${"CPU µs/req".padStart(12)}`);
  for (const name of ["cellio", "modbus_serial"]) {
    for (const mode of ["seq", `pipe${o.depth}`]) {
      const k = `${name}.${mode}`;
      rows.push(
        `${k.padEnd(24)}${f(out[`${k}.p50_us`]).padStart(10)}${f(out[`${k}.p99_us`]).padStart(10)}${f(out[`${k}.req_per_s`]).padStart(10)}${f(out[`${k}.cpu_us_per_req`]).padStart(12)}`,
      );
    }
    rows.push(`${`${name} errors`.padEnd(24)}${f(out[`${name}.errors`]).padStart(10)}`);
  }
  console.log(rows.join("\n"));
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && process.argv.includes("--sim-server")) {
  void simServerMain();
} else if (isMain) {
  const seconds = Number(process.argv[2] ?? 5);
  runModbusClientBench({ durationMs: seconds * 1000 }).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
