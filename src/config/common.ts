/**
 * Schema pieces shared by every driver: point names, point definitions.
 * ONE zod schema gives the TypeScript types, the validation and the JSON Schema.
 */
import { z } from "zod";

export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const name = (what: string) =>
  z.string().regex(NAME_RE, `${what} must start with a letter or _ and contain only letters, digits and _`);

export const pointType = z.enum(["bool", "int", "float", "string"]).describe("Value type of the point");
export const direction = z
  .enum(["input", "output", "memory"])
  .describe("input: read from the device; output: written to the device; memory: internal to cellio");

export const scalingSchema = z
  .object({
    gain: z.number().finite().default(1).describe("engineering = raw * gain + offset"),
    offset: z.number().finite().default(0),
    clamp: z
      .object({ min: z.number().finite(), max: z.number().finite() })
      .strict()
      .optional()
      .describe("Clamp the engineering value to [min, max]"),
  })
  .strict();

/** Fields every point has, whatever its protocol. */
export const pointBase = {
  type: pointType.optional().describe("Value type; inferred from the address where the protocol allows"),
  direction: direction.default("input"),
  safe: z
    .union([z.boolean(), z.number(), z.string()])
    .optional()
    .describe("Safe value of an output: written at start, on faults, on shutdown and when an interlock forces it"),
  unit: z.string().optional().describe("Engineering unit, e.g. bar, mm, degC"),
  description: z.string().optional(),
  scale: scalingSchema.optional(),
  deadband: z.number().nonnegative().optional().describe("Change smaller than this is not reported northbound"),
  heartbeat: z
    .enum(["toggle", "counter"])
    .optional()
    .describe(
      "A heartbeat output for a device that watches cellio: toggle (bool, flips in every cycle that runs) or counter (int, +1 in every cycle that runs, wraps at 65536; a skipped cycle does not count). It stops, at its safe value, when cellio faults or stops",
    ),
  operator_writable: z
    .boolean()
    .optional()
    .describe("Operators (not only engineers) may set this output by command (OPC UA, MQTT); still subject to interlocks"),
};

export const durationMs = (what: string) => z.number().int().positive().describe(what);
