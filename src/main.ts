#!/usr/bin/env -S node --single-threaded-gc --no-memory-reducer
/**
 * cellio command line: run | validate | demo | sim | schema.
 */
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { jsonSchema } from "./config/schema.js";
import { loadConfigFile } from "./config/load.js";
import { ConfigError } from "./config/issues.js";
import { createLogger } from "./infra/logger.js";
import { CellioError } from "./infra/errors.js";
import { validateCommand } from "./cli/validate.js";
import { onShutdownSignals } from "./cli/signals.js";
import type { SimOptions } from "./cli/sim.js";

// The run, demo and sim commands load the whole stack (drivers, node-opcua,
// MQTT, simulators) on demand, so `validate` and `schema` start fast.
const SCENARIOS = ["none", "demo"] as const;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEMO_CONFIG = path.join(ROOT, "config", "demo-cell.yaml");

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number of seconds ≥ 0");
  return n;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("expected a port number 0..65535");
  return n;
}

async function runCommand(file: string, opts: { summaryEvery: number; stateDir?: string }): Promise<void> {
  const loaded = await loadConfigFile(file);
  const log = createLogger({ level: loaded.config.log.level });
  const { CellApp } = await import("./app.js");
  const { resolveStateDir } = await import("./persist/config.js");
  const stateDir = resolveStateDir({ flag: opts.stateDir, configured: loaded.config.state?.dir, configFile: file });
  const app = new CellApp(loaded, { log, summaryEveryMs: opts.summaryEvery * 1000, stateDir });
  // systemd (Type=notify): READY=1 after the first cycle, WATCHDOG=1 while the loop advances, STOPPING=1 on shutdown.
  const { SystemdLink } = await import("./infra/systemd.js");
  const sd = new SystemdLink({ log, cycles: () => app.loop.stats.cycles, periodMs: loaded.model.cycle.periodMs });
  onShutdownSignals(
    log,
    async () => {
      sd.stopping();
      await app.stop(2000);
      sd.close();
    },
    5000,
  );
  await app.start();
  const n = loaded.model.devices.length;
  await sd.readyAfterFirstCycle(app.loop.cycles$, `running: ${n} ${n === 1 ? "device" : "devices"}, cycle ${loaded.model.cycle.periodMs} ms`);
}

const program = new Command()
  .name("cellio")
  .description("Robot cell I/O controller: fixed-rate scan, process interlocks, OPC UA and MQTT northbound")
  .showHelpAfterError();

program
  .command("run")
  .description("run a cell")
  .requiredOption("-c, --config <file>", "cell config (YAML)")
  .addOption(new Option("--summary-every <seconds>", "log a cycle summary this often (0: never)").argParser(seconds).default(60))
  .option("--state-dir <dir>", "folder of the state file (default: config state.dir, else $STATE_DIRECTORY, else ./state next to the config)")
  .action((o: { config: string; summaryEvery: number; stateDir?: string }) => runCommand(o.config, o));

program
  .command("validate")
  .description("check a cell config; exit 0 when valid, 1 with every problem (path and line) when not")
  .argument("<file>", "cell config (YAML)")
  .option("--explain", "show the compiled points and request plan")
  .action(async (file: string, o: { explain?: boolean }) => {
    process.exitCode = await validateCommand(file, o);
  });

program
  .command("schema")
  .description("print the config JSON Schema (for editors)")
  .action(() => {
    process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
  });

program
  .command("sim")
  .description("run the device simulators a config needs")
  .requiredOption("-c, --config <file>", "cell config (YAML)")
  .addOption(new Option("--scenario <name>", "simulated process").choices(SCENARIOS).default("none"))
  .addOption(new Option("--control-port <port>", "HTTP control interface port on 127.0.0.1").argParser(port).default(5081))
  .addOption(new Option("--robot-control-port <port>", "robot simulator control interface port on 127.0.0.1 (e-stop, alarms, mode)").argParser(port))
  .addOption(new Option("--exit-with-parent", "stop when standard input closes").hideHelp())
  .action(async (o: SimOptions) => {
    const { simCommand } = await import("./cli/sim.js");
    await simCommand(o, createLogger({ fd: 2, name: "cellio-sim" }));
  });

program
  .command("demo")
  .description("run the demo cell against its simulators (what `npm start` does)")
  .option("-c, --config <file>", "cell config", DEMO_CONFIG)
  .addOption(new Option("--summary-every <seconds>", "log a cycle summary this often").argParser(seconds).default(5))
  .addOption(new Option("--control-port <port>", "simulator control interface port").argParser(port).default(5081))
  .action(async (o: { config: string; summaryEvery: number; controlPort: number }) => {
    const { demoCommand } = await import("./cli/demo.js");
    await demoCommand(o, ROOT);
  });

program
  .command("hash-password")
  .description("hash a password for the opcua: users block (reads it from standard input)")
  .option("--user <name>", "print a ready users: entry for this user")
  .addOption(new Option("--role <role>", "role of that user").choices(["viewer", "operator", "engineer"]))
  .action(async (o: { user?: string; role?: string }) => {
    const { hashPasswordCommand } = await import("./cli/hash-password.js");
    process.exitCode = await hashPasswordCommand(o);
  });

program.parseAsync().catch((e: unknown) => {
  if (e instanceof ConfigError || e instanceof CellioError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(2);
});
