/**
 * Stable error codes. A code, once published, is never reused for another
 * meaning: dashboards, logs and tests match on them.
 */
export const ERROR_CODES = {
  CELLIO_ERR_CONFIG: "configuration is invalid",
  CELLIO_ERR_CONFIG_IO: "configuration file could not be read",
  CELLIO_ERR_MODBUS_TIMEOUT: "Modbus request timed out",
  CELLIO_ERR_MODBUS_EXCEPTION: "Modbus device answered with an exception",
  CELLIO_ERR_MODBUS_FRAME: "Modbus response frame is malformed",
  CELLIO_ERR_MODBUS_CONNECT: "Modbus connection failed",
  CELLIO_ERR_MODBUS_CLOSED: "Modbus connection closed",
  CELLIO_ERR_MODBUS_BUSY: "device still busy with the previous request",
  CELLIO_ERR_DEVICE_STOPPED: "device driver is stopped",
  CELLIO_ERR_SIM: "simulator error",
  CELLIO_ERR_MODBUS_REQUEST: "Modbus request is invalid",
  CELLIO_ERR_MODBUS_QUEUE_FULL: "Modbus request queue is full",
  CELLIO_ERR_MODBUS_VERIFY: "Modbus output read back with another value than written",
  CELLIO_ERR_MODBUS_WATCHDOG: "Modbus device's communication watchdog could not be armed",
  CELLIO_ERR_OPCUA_TIMEOUT: "OPC UA request or connection step timed out",
  CELLIO_ERR_OPCUA_CONNECT: "OPC UA connection, session or subscription could not be made",
  CELLIO_ERR_OPCUA_NODE: "OPC UA point's node is unknown, of the wrong type or not accessible",
  CELLIO_ERR_OPCUA_UNTRUSTED: "OPC UA server certificate is not trusted",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CellioError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = "CellioError";
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function isCellioError(e: unknown, code?: ErrorCode): e is CellioError {
  return e instanceof CellioError && (code === undefined || e.code === code);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
