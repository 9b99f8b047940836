/**
 * The cell configuration schema. This is the ONE place the config's shape is
 * defined: TypeScript types (z.infer), validation and the JSON Schema
 * (`cellio schema`, config/cellio.schema.json) all come from it.
 */
import { z } from "zod";
import { name } from "./common.js";
import { modbusTcpDeviceSchema } from "../drivers/modbus/config.js";
import { modbusRtuDeviceSchema } from "../drivers/modbus/rtu-config.js";
import { opcuaDeviceSchema } from "../drivers/opcua/config.js";
import { interlocksSectionSchema, latchesSectionSchema, sequencesSectionSchema } from "./logic-schema.js";
import { manualModeSchema } from "./mode-schema.js";
import { mqttConfigSchema } from "../north/mqtt/config.js";
import { opcuaConfigSchema } from "../north/opcua-server/config.js";
import { httpConfigSchema } from "../north/http/config.js";
import { stateConfigSchema } from "../persist/config.js";

export const deviceSchema = z.discriminatedUnion("protocol", [modbusTcpDeviceSchema, modbusRtuDeviceSchema, opcuaDeviceSchema]);

export const cycleSchema = z
  .object({
    period_ms: z.number().int().min(1).max(60_000).describe("Cycle period T: cycle k starts at t0 + k*T"),
    input_budget_ms: z.number().positive().describe("Deadline for the input phase, from the cycle start"),
    output_budget_ms: z.number().positive().describe("Deadline for the output phase, from its start"),
    realtime_priority: z
      .number()
      .int()
      .min(1)
      .max(49)
      .optional()
      .describe(
        "Linux: run the loop's thread (only) under SCHED_FIFO at this priority, so a busy machine cannot delay a cycle. Below 50, the kernel's interrupt threads. Needs CAP_SYS_NICE or RLIMIT_RTPRIO (systemd: LimitRTPRIO=, RestrictRealtime=no); refused: logged, the loop runs at normal priority",
      ),
    overrun: z
      .object({
        warn_pct: z.number().min(1).max(100).default(80).describe("Warn when a cycle takes more than this % of the period"),
        fault_after: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(5)
          .describe("Consecutive overruns that fault the cell (all outputs safe)"),
      })
      .strict()
      .default({ warn_pct: 80, fault_after: 5 }),
  })
  .strict();

export const cellConfigSchema = z
  .object({
    $schema: z.string().optional().describe("Path or URL of the JSON Schema, for editors"),
    version: z
      .literal(1, { error: (iss) => `unsupported config version ${JSON.stringify(iss.input)}; this cellio reads version 1` })
      .describe("Config format version"),
    cell: z
      .object({
        id: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "cell id: letters, digits, _ and -, starting with a letter or digit (it names MQTT topics)")
          .describe("Cell id, unique in the plant"),
        description: z.string().optional(),
      })
      .strict(),
    cycle: cycleSchema,
    devices: z.record(name("device name"), deviceSchema).describe("Southbound devices, by name"),
    logic: z
      .record(z.string(), z.string())
      .default({})
      .describe('Output mappings: "<device>.<output point>": "<expression>"'),
    latches: latchesSectionSchema,
    sequences: sequencesSectionSchema,
    interlocks: interlocksSectionSchema,
    manual_mode: manualModeSchema.optional(),
    mqtt: mqttConfigSchema.optional().describe("MQTT for technicians: broker, topics, roles (src/north/mqtt/README.md)"),
    opcua: opcuaConfigSchema.optional().describe("OPC UA server for the PLC/HMI: endpoints, users, PKI, limits (src/north/opcua-server/README.md)"),
    http: httpConfigSchema.optional().describe("Prometheus /metrics, /healthz and /readyz on 127.0.0.1:9464 by default (src/north/http/README.md)"),
    state: stateConfigSchema.optional(),
    log: z
      .object({
        level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
      })
      .strict()
      .default({ level: "info" }),
  })
  .strict();

export type CellConfig = z.infer<typeof cellConfigSchema>;
export type DeviceConfig = z.infer<typeof deviceSchema>;

export function jsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(cellConfigSchema, { io: "input", target: "draft-2020-12" });
  return { ...schema, $id: "https://cellio.dev/schema/cellio.schema.json", title: "cellio cell configuration" };
}
