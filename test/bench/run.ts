/**
 * `npm run bench`: runs every benchmark in test/bench/ in turn and prints one
 * table (and writes it as markdown and JSON to bench-report.{md,json}).
 * BENCH_SECONDS sets the length of each timed window (default 60).
 * BENCH_ONLY=loop,… runs a subset (machine, loop, modbus-client, fleet, reaction, mqtt, mqtt-outage, opcua, opcua-client).
 */
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runLoopBench } from "./loop.bench.js";
import { runMachineBench } from "./machine.bench.js";
import { modbusClientFigures } from "./modbus-client.bench.js";
import { runFleetBench } from "./fleet.bench.js";
import { runReactionBench } from "./reaction.bench.js";
import { runMqttBench } from "./mqtt.bench.js";
import { runMqttOutageBench } from "./mqtt-outage.bench.js";
import { runOpcuaServerBench } from "./opcua-server.bench.js";
import { runOpcuaClientBench } from "./opcua-client.bench.js";
import { ROOT, benchSeconds, fmt, type Figure } from "./util.js";

const BENCHES: Record<string, (seconds: number) => Promise<Figure[]>> = {
  machine: runMachineBench,
  loop: runLoopBench,
  "modbus-client": modbusClientFigures,
  fleet: (s) => runFleetBench(s),
  reaction: runReactionBench,
  mqtt: runMqttBench,
  "mqtt-outage": runMqttOutageBench,
  opcua: runOpcuaServerBench,
  "opcua-client": runOpcuaClientBench,
};

function table(figures: readonly Figure[]): string {
  const rows = ["| bench | case | metric | value | unit | baseline (same run) |", "|---|---|---|---|---|---|"];
  for (const f of figures) {
    const base = f.baseline === undefined ? "" : `${fmt(f.baseline)} (${f.baselineName ?? ""})`;
    const value = f.range ? `${fmt(f.value)} (${fmt(f.range[0])}–${fmt(f.range[1])})` : fmt(f.value);
    rows.push(`| ${f.bench} | ${f.case} | ${f.metric} | ${value} | ${f.unit} | ${base} |`);
  }
  return rows.join("\n");
}

async function main(): Promise<void> {
  const seconds = benchSeconds(60);
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
  const figures: Figure[] = [];
  for (const [name, run] of Object.entries(BENCHES)) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`bench ${name}: ${seconds} s windows…\n`);
    figures.push(...(await run(seconds)));
  }
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`;
  const md = `# cellio benchmark report\n\n${new Date().toISOString()} — ${machine}; windows of ${seconds} s\n\n${table(figures)}\n`;
  process.stdout.write(`${md}\n`);
  await writeFile(path.join(ROOT, "bench-report.md"), md);
  await writeFile(path.join(ROOT, "bench-report.json"), JSON.stringify({ machine, seconds, figures }, null, 2));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
