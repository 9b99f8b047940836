/**
 * The Modbus RTU piece of the cell schema: a device with `protocol:
 * modbus-rtu` is one unit id on a serial bus. Every device that names the
 * same serial `path` shares ONE bus (one request on the line at a time), so
 * they must agree on the line settings and each needs its own unit id:
 * `checkRtuBuses` says so at load, with both devices' YAML lines.
 *
 * Everything of the TCP device that is not about TCP applies unchanged
 * (points, profile, workarounds, poll_every, fail_after, ...).
 */
import { z } from "zod";
import type { ConfigIssue, SourceMap } from "../../config/issues.js";
import { modbusTcpDeviceSchema, type ModbusTcpDeviceConfig } from "./config.js";

export const PARITIES = ["none", "even", "odd"] as const;
export type Parity = (typeof PARITIES)[number];

export const serialSchema = z
  .object({
    path: z.string().min(1).describe("Serial port: /dev/ttyUSB0, /dev/serial/by-id/..., /dev/ttyS1, COM3. Devices naming the same path share one bus"),
    baud_rate: z.number().int().min(300).max(4_000_000).default(19200).describe("Bits per second"),
    parity: z.enum(PARITIES).default("even").describe("The Modbus default is even parity"),
    data_bits: z.union([z.literal(7), z.literal(8)]).default(8).describe("Modbus RTU needs 8"),
    stop_bits: z.union([z.literal(1), z.literal(2)]).default(1).describe("The spec asks for 2 when there is no parity"),
  })
  .strict()
  .describe("Line settings; every device on one path must use the same");

// The TCP device minus what is about TCP (`host`, `port`, `framing`, `max_in_flight`); `unit_id` and `timeout_ms` are redefined.
const {
  protocol: _protocol,
  host: _host,
  port: _port,
  unit_id: _unit,
  timeout_ms: _timeout,
  framing: _framing,
  max_in_flight: _inFlight,
  description,
  ...common
} = modbusTcpDeviceSchema.shape;

export const modbusRtuDeviceSchema = z
  .object({
    protocol: z.literal("modbus-rtu"),
    description,
    serial: serialSchema,
    unit_id: z.number().int().min(1).max(247).default(1).describe("Slave address on the bus, 1..247"),
    inter_frame_gap_ms: z
      .number()
      .positive()
      .max(1000)
      .optional()
      .describe(
        "Quiet time on the line between the end of one transaction and the next request (default: 3.5 characters at the baud rate, 1.75 ms above 19200 baud). The bus uses the largest value any of its devices asks for",
      ),
    timeout_ms: z
      .number()
      .int()
      .min(1)
      .max(60_000)
      .default(100)
      .describe("The unit's own response time per request; the time the request and the expected answer take on the wire at the baud rate is added"),
    ...common,
  })
  .strict();

export type ModbusRtuDeviceConfig = z.infer<typeof modbusRtuDeviceSchema>;
export type SerialConfig = ModbusRtuDeviceConfig["serial"];
/** What the Modbus driver runs on: a TCP device or one unit on an RTU bus. */
export type ModbusDeviceConfig = ModbusTcpDeviceConfig | ModbusRtuDeviceConfig;

/** Line settings of a bus, as the serial port takes them. */
export interface SerialLine {
  readonly path: string;
  readonly baudRate: number;
  readonly parity: Parity;
  readonly dataBits: 7 | 8;
  readonly stopBits: 1 | 2;
}

export interface RtuBusSettings extends SerialLine {
  /** Quiet time between the end of one transaction and the next request. */
  readonly interFrameGapMs: number;
}

/** Bits on the wire per character: start, data, parity, stop. */
export function bitsPerChar(line: Pick<SerialLine, "dataBits" | "parity" | "stopBits">): number {
  return 1 + line.dataBits + (line.parity === "none" ? 0 : 1) + line.stopBits;
}

/** 3.5 character times at the baud rate; a fixed 1.75 ms above 19200 baud (Modbus over Serial Line v1.02, 2.5.1.1). */
export function defaultInterFrameGapMs(line: Pick<SerialLine, "baudRate" | "dataBits" | "parity" | "stopBits">): number {
  if (line.baudRate > 19200) return 1.75;
  return (3.5 * bitsPerChar(line) * 1000) / line.baudRate;
}

export function serialLineOf(s: SerialConfig): SerialLine {
  return { path: s.path, baudRate: s.baud_rate, parity: s.parity, dataBits: s.data_bits, stopBits: s.stop_bits };
}

export function busSettingsOf(cfg: ModbusRtuDeviceConfig): RtuBusSettings {
  const line = serialLineOf(cfg.serial);
  return { ...line, interFrameGapMs: cfg.inter_frame_gap_ms ?? defaultInterFrameGapMs(line) };
}

/** "19200 8E1": how the line settings are usually written. */
export function describeLine(line: SerialLine): string {
  return `${line.baudRate} ${line.dataBits}${line.parity[0]!.toUpperCase()}${line.stopBits}`;
}

const SETTINGS: readonly (keyof SerialConfig)[] = ["baud_rate", "parity", "data_bits", "stop_bits"];

/**
 * Checks across devices: devices on one serial path must agree on the line
 * settings and use distinct unit ids; RTU needs 8 data bits. Each issue is
 * reported at the later device and names the earlier one with its line.
 * Also RTU framing over TCP (`framing: rtu`): unit ids 1..247, one request
 * in flight.
 */
export function checkRtuBuses(devices: Readonly<Record<string, { readonly protocol: string }>>, map: SourceMap, issues: ConfigIssue[]): void {
  const first = new Map<string, { name: string; cfg: ModbusRtuDeviceConfig }>();
  const units = new Map<string, Map<number, string>>();
  // The line of the key (`serial:`, or the device's name), not of the value below it.
  const lineOf = (dev: string, key?: string): number => (key === undefined ? map.locateKey(["devices"], dev) : map.locateKey(["devices", dev], key)).line;
  for (const [name, dev] of Object.entries(devices)) {
    if (dev.protocol === "modbus-tcp") checkRtuOverTcp(name, dev as ModbusTcpDeviceConfig, map, issues);
    if (dev.protocol !== "modbus-rtu") continue;
    const cfg = dev as ModbusRtuDeviceConfig;
    const path = cfg.serial.path;
    if (cfg.serial.data_bits !== 8) {
      issues.push(map.issue(["devices", name, "serial", "data_bits"], "Modbus RTU sends 8 data bits per character (7 is Modbus ASCII, which cellio does not speak)"));
    }
    const earlier = first.get(path);
    if (earlier === undefined) {
      first.set(path, { name, cfg });
    } else {
      const diffs = SETTINGS.filter((k) => cfg.serial[k] !== earlier.cfg.serial[k]).map(
        (k) => `${k} ${String(cfg.serial[k])} here, ${String(earlier.cfg.serial[k])} on ${earlier.name}`,
      );
      if (diffs.length > 0) {
        issues.push(
          map.issue(
            ["devices", name, "serial"],
            `serial port ${path} is also used by device ${earlier.name} (line ${lineOf(earlier.name, "serial")}) with other settings: ${diffs.join(", ")}; devices on one bus must use the same line settings`,
          ),
        );
      }
    }
    const onBus = units.get(path) ?? new Map<number, string>();
    units.set(path, onBus);
    const owner = onBus.get(cfg.unit_id);
    if (owner !== undefined) {
      issues.push(
        map.issue(
          ["devices", name, "unit_id"],
          `unit id ${cfg.unit_id} on ${path} is already device ${owner} (line ${lineOf(owner)}); every device on one bus needs its own unit id`,
        ),
      );
    } else {
      onBus.set(cfg.unit_id, name);
    }
  }
}

function checkRtuOverTcp(name: string, cfg: ModbusTcpDeviceConfig, map: SourceMap, issues: ConfigIssue[]): void {
  if (cfg.framing !== "rtu") return;
  if (cfg.unit_id < 1 || cfg.unit_id > 247) {
    issues.push(map.issue(["devices", name, "unit_id"], `unit id ${cfg.unit_id}: RTU framing addresses units 1..247 (0 is broadcast, which cellio does not send)`));
  }
  if (cfg.max_in_flight > 1) {
    issues.push(map.issue(["devices", name, "max_in_flight"], "RTU framing has no transaction id: one request in flight (max_in_flight: 1)"));
  }
}
