/**
 * `cellio validate FILE [--explain]`.
 */
import { loadConfigFile } from "../config/load.js";
import { ConfigError } from "../config/issues.js";
import { CellioError } from "../infra/errors.js";
import { explainCell } from "./explain.js";

export async function validateCommand(file: string, opts: { explain?: boolean }): Promise<number> {
  try {
    const loaded = await loadConfigFile(file);
    const m = loaded.model;
    process.stdout.write(
      `${file}: ok — cell ${m.cellId}, ${m.devices.length} device(s), ${m.points.length} point(s), ${m.logic.length} logic rule(s), period ${m.cycle.periodMs} ms${m.cycle.realtimePriority === undefined ? "" : `, loop thread SCHED_FIFO ${m.cycle.realtimePriority}`}\n`,
    );
    if (opts.explain) process.stdout.write(explainCell(loaded));
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof CellioError) {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
