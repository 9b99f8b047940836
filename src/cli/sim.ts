/**
 * `cellio sim --config FILE`: run the simulators a config needs, as a process.
 * Prints one JSON line {"event":"sim-ready",...} on stdout when listening.
 */
import { loadConfigFile } from "../config/load.js";
import type { Logger } from "../infra/logger.js";
import { startSimulators } from "../../simulators/runner.js";
import { runDemoScenario } from "../../simulators/scenarios/demo-cell.js";
import { onShutdownSignals } from "./signals.js";


export interface SimOptions {
  config: string;
  scenario: string;
  controlPort: number;
  /** Stop when standard input closes (the parent process died). */
  exitWithParent?: boolean;
}

export async function simCommand(opts: SimOptions, log: Logger): Promise<void> {
  const { model } = await loadConfigFile(opts.config);
  const sims = await startSimulators(model, { controlPort: opts.controlPort });
  let stopScenario = (): void => undefined;
  if (opts.scenario === "demo") stopScenario = runDemoScenario(sims);
  const devices = [...sims.devices.values()].map((d) => ({ device: d.name, unit: d.unitId }));
  log.info({ devices, control: sims.control?.port }, "simulators listening");
  process.stdout.write(`${JSON.stringify({ event: "sim-ready", control: sims.control?.port, devices })}\n`);
  const stop = async (): Promise<void> => {
    stopScenario();
    await sims.stop();
  };
  onShutdownSignals(log, stop, 2000);
  if (opts.exitWithParent) {
    process.stdin.resume();
    process.stdin.once("end", () => {
      log.info("parent process gone: stopping");
      void stop().then(() => process.exit(0));
    });
  }
}
