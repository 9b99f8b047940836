/**
 * The `state:` block of a cell config: where the state file lives and how
 * often it may be written. What is retained is fixed (latched interlock
 * trips, trip counters, last causes and faults) except the active step of a
 * sequence, which each sequence opts into with `retain: true`.
 */
import path from "node:path";
import { z } from "zod";
import { durationSchema } from "../config/logic-schema.js";

export const DEFAULT_MIN_WRITE_INTERVAL_MS = 1000;

export const stateConfigSchema = z
  .object({
    dir: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Folder of the state file, relative to the config file. Default: $STATE_DIRECTORY (systemd StateDirectory=), else ./state next to the config file; `cellio run --state-dir` overrides both",
      ),
    min_write_interval: durationSchema
      .default(DEFAULT_MIN_WRITE_INTERVAL_MS)
      .describe("At most one write of the state file per this interval; a change after a quiet spell is written at once"),
  })
  .strict()
  .describe("Retained state (latched interlock trips, trip counters, retained sequence steps) kept in <dir>/<cell id>.state");

export type StateConfig = z.infer<typeof stateConfigSchema>;

/**
 * The folder of the state file: `flag` (cellio run --state-dir), else the
 * config's `state.dir` (relative to the config file), else $STATE_DIRECTORY
 * (set by systemd's StateDirectory=; the first entry when it lists several),
 * else `state/` next to the config file.
 */
export function resolveStateDir(o: { flag?: string | undefined; configured?: string | undefined; configFile: string; env?: NodeJS.ProcessEnv }): string {
  if (o.flag !== undefined) return path.resolve(o.flag);
  const configDir = path.dirname(path.resolve(o.configFile));
  if (o.configured !== undefined) return path.resolve(configDir, o.configured);
  return defaultStateDir(configDir, o.env);
}

/** The state folder when nothing is configured: $STATE_DIRECTORY (its first entry), else `state/` in `configDir`. */
export function defaultStateDir(configDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const sd = env.STATE_DIRECTORY?.split(":")[0];
  return sd ? path.resolve(sd) : path.join(configDir, "state");
}

/** The state file of cell `cell` in `dir`. */
export function stateFile(dir: string, cell: string): string {
  return path.join(dir, `${cell}.state`);
}
