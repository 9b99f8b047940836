/**
 * The communication watchdog of a coupler (WAGO 750-352/362 at 0x1000, Moxa
 * ioLogik, Turck BL20/TBEN: a holding register that holds the watchdog time;
 * with no request within it, the coupler drives its outputs to their safe
 * state). cellio writes the configured value at every (re)connect and reads it
 * back; arming that fails leaves the device bad with the reason.
 */
import { CellioError } from "../../infra/errors.js";
import type { ConfigIssue, SourceMap } from "../../config/issues.js";
import { encodeValue } from "./codec.js";
import { parseAddress, type AddressBase, type ModbusAddress } from "./address.js";
import type { DeviceRequester } from "./requester.js";

export interface WatchdogConfig {
  readonly address: string;
  readonly value: number;
  readonly read_back: boolean;
}

export interface CompiledWatchdog {
  readonly address: ModbusAddress;
  readonly text: string;
  readonly value: number;
  readonly words: readonly number[];
  readonly readBack: boolean;
}

/** The watchdog block compiled, or why it cannot be. */
export function compileWatchdog(cfg: WatchdogConfig, base: AddressBase): CompiledWatchdog | string {
  const parsed = parseAddress(cfg.address, base);
  if (!parsed.ok) return parsed.error;
  const a = parsed.address;
  if (a.area !== "hr" || a.bit !== undefined || a.type === "string" || a.type === "bool") {
    return `watchdog address ${cfg.address} must be a holding register with a numeric type (hr:N[:type[:order]])`;
  }
  const enc = encodeValue(a, cfg.value);
  if (!enc.ok) return `watchdog value: ${enc.error}`;
  if (!("words" in enc)) return `watchdog address ${cfg.address} is not a register`;
  return { address: a, text: cfg.address, value: cfg.value, words: enc.words, readBack: cfg.read_back };
}

/** Load-time check of a device's `watchdog:` block (issues name its YAML path). */
export function checkWatchdog(device: string, cfg: WatchdogConfig | undefined, base: AddressBase, map: SourceMap, issues: ConfigIssue[]): void {
  if (!cfg) return;
  const c = compileWatchdog(cfg, base);
  if (typeof c === "string") issues.push(map.issue(["devices", device, "watchdog"], c));
}

/** Writes the watchdog value and, unless told not to, reads it back. Throws CELLIO_ERR_MODBUS_WATCHDOG (or the request's error). */
export async function armWatchdog(device: string, wd: CompiledWatchdog, req: DeviceRequester, singleWrites: boolean): Promise<void> {
  const a = wd.address;
  const what = `${device}: watchdog ${wd.text} = ${wd.value}`;
  try {
    if (wd.words.length === 1 && singleWrites) await req.write(6, a.offset, wd.words);
    else await req.write(16, a.offset, wd.words);
    if (!wd.readBack) return;
    const got = (await req.read(3, a.offset, wd.words.length)) as number[];
    if (got.length !== wd.words.length || got.some((w, i) => w !== wd.words[i])) {
      throw new CellioError("CELLIO_ERR_MODBUS_WATCHDOG", `${what}: read back [${got.join(", ")}], wrote [${wd.words.join(", ")}]; the watchdog is not armed`, {
        device,
      });
    }
  } catch (e) {
    if (e instanceof CellioError && e.code === "CELLIO_ERR_MODBUS_WATCHDOG") throw e;
    throw new CellioError("CELLIO_ERR_MODBUS_WATCHDOG", `${what}: not armed: ${e instanceof Error ? e.message : String(e)}`, { device }, { cause: e });
  }
}
