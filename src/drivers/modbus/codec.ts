/**
 * Pure value conversion between Modbus registers/bits and cell values.
 *
 * Registers arrive as Modbus delivers them: one unsigned 16-bit number per
 * register (its high byte first on the wire). The byte order of a multi-byte
 * value is described in address.ts.
 *
 * Decoding runs every cycle, so it allocates nothing but the value itself: a
 * module-level 8-byte scratch buffer holds the bytes (safe: JavaScript runs
 * one decode at a time and none of them yields).
 *
 * 64-bit integers: values beyond ±(2^53−1) cannot be held exactly in a
 * JavaScript number; they decode to the nearest double (ties to even, the
 * same as `Number(bigint)`). Writing accepts any integral number in range
 * and sends it exactly.
 *
 * Strings are one byte per character (Latin-1: codes 0..255). Decoding strips
 * trailing NUL bytes; encoding pads with NULs.
 */
import type { ByteOrder, ModbusAddress, ModbusType } from "./address.js";
import { isBitArea } from "./address.js";

export type RegisterWords = Uint16Array | readonly number[];

export type EncodeResult = { ok: true; words: number[] } | { ok: true; bit: boolean } | { ok: false; error: string };

const scratch = new DataView(new ArrayBuffer(8));
const TWO_32 = 4294967296;
const TWO_63 = 9223372036854775808;
const TWO_64 = 18446744073709551616;
const F32_MAX = 3.4028234663852886e38;

const INT_RANGE: Readonly<Record<"int16" | "uint16" | "int32" | "uint32", readonly [number, number]>> = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

/** True when register word is reversed, for multi-word values. */
function wordSwapped(order: ByteOrder): boolean {
  return order === "CDAB" || order === "DCBA";
}

/** True when the two bytes of every register are swapped. */
function byteSwapped(order: ByteOrder): boolean {
  return order === "BA" || order === "BADC" || order === "DCBA";
}

function swap16(w: number): number {
  return ((w & 0xff) << 8) | ((w >>> 8) & 0xff);
}

/** Bit `bit` (0 = least significant) of a register. */
export function registerBit(word: number, bit: number): boolean {
  return ((word >>> bit) & 1) === 1;
}

/** The register with bit `bit` set or cleared: the "modify" of a read-modify-write. */
export function applyBit(word: number, bit: number, value: boolean): number {
  const mask = 1 << bit;
  return (value ? word | mask : word & ~mask) & 0xffff;
}

export function decodeBits(bits: readonly boolean[], at: number): boolean {
  if (at < 0 || at >= bits.length) throw new RangeError(`bit ${at} is outside a window of ${bits.length} bits`);
  return bits[at] === true;
}

/**
 * The value of `addr` in a window of registers, starting at word index `at`.
 * Throws only on misuse (a coil/di address, or a window too short: check the
 * response length first, as plan.ts `decodeResponse` does).
 */
export function decodeRegisters(addr: ModbusAddress, words: RegisterWords, at: number): number | string | boolean {
  if (isBitArea(addr.area)) throw new TypeError(`${addr.area} is a bit area; use decodeBits`);
  const n = addr.words;
  if (at < 0 || at + n > words.length) {
    throw new RangeError(`${n} register(s) at ${at} are outside a window of ${words.length}`);
  }
  if (addr.bit !== undefined) return registerBit(words[at] ?? 0, addr.bit);
  switch (addr.type) {
    case "bool":
      throw new TypeError("a register bool needs a bit number");
    case "string":
      return decodeString(words, at, addr.length ?? n * 2, addr.order);
    default:
      load(words, at, n, addr.order);
      return readScratch(addr.type);
  }
}

/** Copy `n` registers into the scratch buffer as big-endian bytes A, B, C, ... */
function load(words: RegisterWords, at: number, n: number, order: ByteOrder): void {
  const ws = wordSwapped(order);
  const bs = byteSwapped(order);
  for (let i = 0; i < n; i++) {
    const w = (words[at + (ws ? n - 1 - i : i)] ?? 0) & 0xffff;
    scratch.setUint16(i * 2, bs ? swap16(w) : w);
  }
}

/** The inverse of `load`: scratch bytes to `n` registers in wire order. */
function store(n: number, order: ByteOrder): number[] {
  const ws = wordSwapped(order);
  const bs = byteSwapped(order);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const w = scratch.getUint16(i * 2);
    out[ws ? n - 1 - i : i] = bs ? swap16(w) : w;
  }
  return out;
}

function readScratch(type: ModbusType): number {
  switch (type) {
    case "int16":
      return scratch.getInt16(0);
    case "uint16":
      return scratch.getUint16(0);
    case "int32":
      return scratch.getInt32(0);
    case "uint32":
      return scratch.getUint32(0);
    case "float32":
      return scratch.getFloat32(0);
    case "float64":
      return scratch.getFloat64(0);
    // hi·2^32 is exact, and one IEEE addition rounds the exact sum to the
    // nearest double: the same result as Number(bigint), without a BigInt.
    case "int64":
      return scratch.getInt32(0) * TWO_32 + scratch.getUint32(4);
    case "uint64":
      return scratch.getUint32(0) * TWO_32 + scratch.getUint32(4);
  }
}

function decodeString(words: RegisterWords, at: number, length: number, order: ByteOrder): string {
  const lowFirst = order === "BA";
  const byteAt = (i: number): number => {
    const w = words[at + (i >> 1)] ?? 0;
    const high = (i & 1) === 0 ? !lowFirst : lowFirst;
    return high ? (w >>> 8) & 0xff : w & 0xff;
  };
  let end = length;
  while (end > 0 && byteAt(end - 1) === 0) end--;
  let s = "";
  for (let i = 0; i < end; i++) s += String.fromCharCode(byteAt(i));
  return s;
}

/**
 * Registers (or a bit) to write `value` at `addr`. Range and type are checked
 * here; whether the area is writable is the planner's concern (simulators use
 * this to fill input registers too). Error texts name the value and the type,
 * not the address: the caller knows the point and prefixes it.
 */
export function encodeValue(addr: ModbusAddress, value: number | boolean | string): EncodeResult {
  if (addr.type === "bool") {
    if (typeof value !== "boolean") return { ok: false, error: `expected a boolean, got ${describe(value)}` };
    return { ok: true, bit: value };
  }
  if (addr.type === "string") {
    if (typeof value !== "string") return { ok: false, error: `expected a string, got ${describe(value)}` };
    return encodeString(value, addr.length ?? addr.words * 2, addr.words, addr.order);
  }
  if (typeof value !== "number") return { ok: false, error: `expected a number for ${addr.type}, got ${describe(value)}` };
  const type = addr.type;
  switch (type) {
    case "float32":
      if (Number.isFinite(value) && !Number.isFinite(Math.fround(value))) {
        return { ok: false, error: `${value} is out of range for float32 (±${F32_MAX})` };
      }
      scratch.setFloat32(0, value);
      return { ok: true, words: store(2, addr.order) };
    case "float64":
      scratch.setFloat64(0, value);
      return { ok: true, words: store(4, addr.order) };
    default:
      break;
  }
  const notInt = checkInteger(value, type);
  if (notInt !== undefined) return { ok: false, error: notInt };
  switch (type) {
    case "int64":
    case "uint64": {
      const signed = type === "int64";
      const [min, max] = signed ? [-TWO_63, TWO_63] : [0, TWO_64];
      if (value < min || value >= max) {
        return { ok: false, error: `${value} is out of range for ${type} (${signed ? "-2^63..2^63-1" : "0..2^64-1"})` };
      }
      // Every integral double is exactly representable as a BigInt.
      if (signed) scratch.setBigInt64(0, BigInt(value));
      else scratch.setBigUint64(0, BigInt(value));
      return { ok: true, words: store(4, addr.order) };
    }
    case "int16":
    case "uint16":
    case "int32":
    case "uint32": {
      const [min, max] = INT_RANGE[type];
      if (value < min || value > max) return { ok: false, error: `${value} is out of range for ${type} (${min}..${max})` };
      if (type === "int16" || type === "uint16") scratch.setUint16(0, value & 0xffff);
      else scratch.setUint32(0, value >>> 0);
      return { ok: true, words: store(addr.words, addr.order) };
    }
  }
}

function checkInteger(value: number, type: string): string | undefined {
  if (Number.isNaN(value)) return `NaN cannot be written to ${type}`;
  if (!Number.isFinite(value)) return `${value} cannot be written to ${type}`;
  if (!Number.isInteger(value)) return `${value} is not an integer (${type} takes whole numbers; round first)`;
  return undefined;
}

function encodeString(value: string, length: number, words: number, order: ByteOrder): EncodeResult {
  if (value.length > length) {
    return { ok: false, error: `string of ${value.length} characters does not fit in ${length} bytes` };
  }
  const out = new Array<number>(words).fill(0);
  const lowFirst = order === "BA";
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff) {
      return { ok: false, error: `character ${JSON.stringify(value[i])} at ${i} does not fit in one byte (Latin-1 only)` };
    }
    const high = (i & 1) === 0 ? !lowFirst : lowFirst;
    const w = i >> 1;
    out[w] = (out[w] ?? 0) | (high ? c << 8 : c);
  }
  return { ok: true, words: out };
}

function describe(value: unknown): string {
  return typeof value === "string" ? `string ${JSON.stringify(value)}` : `${typeof value} ${String(value)}`;
}
