/**
 * `cellio sim --config FILE`: run the simulators a config needs, as a process
 * (simulators/runner.ts: Modbus TCP devices, Motoman robots over Modbus or
 * OPC UA). Prints one JSON line on stdout when listening:
 * {"event":"sim-ready","control":P,"robotControl":R,"devices":[{device,unit}],"opcua":[{device,endpoint}]}
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
  /** The robots' HTTP control interface (e-stop, alarms, mode), when the config has a robot. */
  robotControlPort?: number;
  /** Stop when standard input closes (the parent process died). */
  exitWithParent?: boolean;
}

export async function simCommand(opts: SimOptions, log: Logger): Promise<void> {
  const { model } = await loadConfigFile(opts.config);
  const sims = await startSimulators(model, {
    controlPort: opts.controlPort,
    ...(opts.robotControlPort === undefined ? {} : { robotControlPort: opts.robotControlPort }),
  });
  let stopScenario = (): void => undefined;
  if (opts.scenario === "demo") stopScenario = runDemoScenario(sims);
  const devices = [...sims.devices.values()].map((d) => ({ device: d.name, unit: d.unitId }));
  const robotControl = sims.robotControl?.port;
  const opcua = [...sims.robotFaces].map(([device, face]) => ({ device, endpoint: face.endpointUrl }));
  log.info({ devices, opcua, control: sims.control?.port, robotControl }, "simulators listening");
  process.stdout.write(`${JSON.stringify({ event: "sim-ready", control: sims.control?.port, robotControl, devices, opcua })}\n`);
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
