/**
 * The Modbus piece of the cell schema: a device with `protocol: modbus-tcp`.
 */
import { z } from "zod";
import { name, pointBase } from "../../config/common.js";

export const modbusPointSchema = z
  .object({
    address: z
      .string()
      .optional()
      .describe(
        'Modbus address: "coil:N", "di:N", "ir:N[:type[:order]]", "hr:N[:type[:order]]", "hr:N.B", "hr:N:string:LEN". Optional only for a point that overrides one of the device profile\'s points',
      ),
    verify: z
      .boolean()
      .optional()
      .describe("Outputs: after every write, read the address back and compare; a mismatch fails the output with the value read"),
    ...pointBase,
  })
  .strict();

export const MODBUS_PROFILES = ["motoman-yrc1000"] as const;

export const workaroundsSchema = z
  .object({
    one_request_per_point: z.boolean().default(false).describe("Read every point with its own request"),
    max_registers_per_read: z.number().int().min(1).max(125).default(125),
    max_bits_per_read: z.number().int().min(1).max(2000).default(2000),
    max_registers_per_write: z.number().int().min(1).max(123).default(123),
    max_bits_per_write: z.number().int().min(1).max(1968).default(1968),
    pause_after_connect_ms: z.number().int().min(0).max(10_000).default(0),
    single_writes: z.boolean().default(false).describe("Use FC05/FC06 for single coils/registers"),
  })
  .strict()
  .describe("Device quirks, in one place");

export const busyRetrySchema = z
  .object({
    retries: z.number().int().min(0).max(10).default(2).describe("Retries of a request the device answered with exception 06 (busy) or 05 (acknowledge)"),
    pause_ms: z.number().int().min(0).max(1000).default(2).describe("Pause before each retry"),
  })
  .strict()
  .describe("Exception 06 (server busy) and 05 (acknowledge): wait and retry, never past the request's timeout");

export const watchdogSchema = z
  .object({
    address: z.string().describe('Holding register of the coupler\'s communication watchdog, e.g. "hr:4096" (WAGO 0x1000), with a type if it is not uint16'),
    value: z.number().int().describe("Value written there at every (re)connect: the watchdog time in the device's unit (WAGO: 100 ms steps; Moxa, Turck: see the manual)"),
    read_back: z.boolean().default(true).describe("Read the register back after writing and compare"),
  })
  .strict()
  .describe("Arm the device's communication watchdog at connect and after every reconnect; failure leaves the device bad");

export const modbusTcpDeviceSchema = z
  .object({
    protocol: z.literal("modbus-tcp"),
    description: z.string().optional(),
    host: z.string().min(1).describe("Host name or IP address of the Modbus TCP server"),
    port: z.number().int().min(1).max(65535).default(502),
    unit_id: z.number().int().min(0).max(255).default(1),
    framing: z
      .enum(["mbap", "rtu"])
      .default("mbap")
      .describe("mbap: Modbus TCP; rtu: RTU frames over TCP (a serial gateway that does not translate). Devices with the same host, port and framing share one connection"),
    max_in_flight: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(1)
      .describe("Requests on the wire at once on this device's connection (mbap only; a shared connection uses the largest of its devices)"),
    timeout_ms: z.number().int().min(1).max(60_000).default(100).describe("Per-request timeout"),
    poll_every: z.number().int().min(1).max(100_000).default(1).describe("Poll every N cycles"),
    stale_after_ms: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("A sample older than this turns uncertain (default: the larger of 3 poll periods and 3 request timeouts)"),
    required: z.boolean().default(true).describe("Readiness needs this device to be good"),
    address_base: z.union([z.literal(0), z.literal(1)]).default(0).describe("1 for devices documented one-based"),
    max_gap: z
      .object({
        registers: z.number().int().min(0).max(124).default(10),
        bits: z.number().int().min(0).max(1999).default(32),
      })
      .strict()
      .default({ registers: 10, bits: 32 })
      .describe("Join neighbouring points into one request across holes up to this size"),
    reconnect: z
      .object({
        min_ms: z.number().int().min(10).default(100),
        max_ms: z.number().int().min(10).default(5000),
      })
      .strict()
      .default({ min_ms: 100, max_ms: 5000 })
      .describe("Reconnect backoff (exponential with jitter)"),
    fail_after: z.number().int().min(1).max(100).default(1).describe("Consecutive failed polls before points turn bad"),
    heartbeat_writes: z.boolean().default(false).describe("Write all outputs every cycle, not only on change"),
    workarounds: workaroundsSchema.default(workaroundsSchema.parse({})),
    busy_retry: busyRetrySchema.default(busyRetrySchema.parse({})),
    watchdog: watchdogSchema.optional(),
    profile: z
      .enum(MODBUS_PROFILES)
      .optional()
      .describe("Device profile: expands to named points (see `cellio validate --explain`); `points` entries override or add to them"),
    profile_options: z
      .object({
        base: z.number().int().min(0).default(0).describe("First holding register of the profile's register window"),
        axes: z.number().int().min(1).max(8).default(6).describe("Robot axes exposed by the profile"),
      })
      .strict()
      .default({ base: 0, axes: 6 }),
    points: z.record(name("point name"), modbusPointSchema).default({}),
  })
  .strict();

export type ModbusTcpDeviceConfig = z.infer<typeof modbusTcpDeviceSchema>;
export type ModbusPointConfig = z.infer<typeof modbusPointSchema>;
