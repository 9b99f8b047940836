/**
 * `cellio demo`: start the simulators in their own process, wait until they
 * listen, run the cell here. Ctrl-C stops the cell (safe outputs) and then
 * the simulators.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";
import { loadConfigFile } from "../config/load.js";
import { createLogger } from "../infra/logger.js";
import { CellioError } from "../infra/errors.js";
import { CellApp } from "../app.js";
import { onShutdownSignals } from "./signals.js";

function startSimProcess(root: string, config: string, controlPort: number): Promise<ChildProcess> {
  const main = path.join(root, "dist", "src", "main.js");
  // Own process group: Ctrl-C reaches only the controller, which writes the safe
  // outputs while the simulated devices still answer, and then stops them.
  // --exit-with-parent: the simulators stop by themselves if this process dies.
  const args = [main, "sim", "--config", config, "--scenario", "demo", "--control-port", String(controlPort)];
  args.push("--robot-control-port", String(controlPort + 1), "--exit-with-parent");
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"], detached: true });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const fail = (why: string): void => reject(new CellioError("CELLIO_ERR_SIM", `simulator process ${why}`));
    child.once("exit", (code) => fail(`exited with code ${String(code)} before it was ready`));
    child.once("error", (e) => fail(`failed to start: ${e.message}`));
    lines.on("line", (line) => {
      if (line.includes('"sim-ready"')) {
        child.removeAllListeners("exit");
        resolve(child);
      }
    });
  });
}

export async function demoCommand(opts: { config: string; summaryEvery: number; controlPort: number }, root: string): Promise<void> {
  const loaded = await loadConfigFile(opts.config);
  const log = createLogger({ level: loaded.config.log.level });
  const sim = await startSimProcess(root, opts.config, opts.controlPort);
  log.info(
    { control: `http://127.0.0.1:${opts.controlPort}` },
    `simulators running; open the door with: curl -X POST http://127.0.0.1:${opts.controlPort}/set -d '{"target":"io1","area":"di","address":0,"value":false}'`,
  );
  const app = new CellApp(loaded, { log, summaryEveryMs: opts.summaryEvery * 1000 });
  const simExited = new Promise<void>((resolve) => sim.once("exit", () => resolve()));
  onShutdownSignals(
    log,
    async () => {
      await app.stop(2000);
      sim.kill("SIGTERM");
      await simExited;
    },
    5000,
  );
  await app.start();
}
