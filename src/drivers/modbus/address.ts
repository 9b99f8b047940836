/**
 * Modbus addresses: the text of a point's `address` parsed into a typed
 * structure, once at load. Pure; errors are returned as values.
 *
 * Grammar (area, type and order are case-insensitive; N and B are decimal):
 *
 *   coil:N | di:N                        one bit, type bool
 *   hr:N.B | ir:N.B                      bit B (0..15, 0 = least significant) of register N, type bool
 *   hr:N[:TYPE[:ORDER]]                  a number spanning 1, 2 or 4 registers (default uint16)
 *   ir:N[:TYPE[:ORDER]]
 *   hr:N:string:LEN[:ORDER]              LEN bytes (1..246), two per register
 *   ir:N:string:LEN[:ORDER]
 *
 * TYPE is int16, uint16, int32, uint32, int64, uint64, float32 or float64.
 *
 * ORDER says how the value's bytes sit in the registers. Modbus sends each
 * register big-endian (high byte first). Name the value's bytes from most to
 * least significant A, B, C, D (E, F, G, H for 64-bit); then:
 *
 *   16-bit, string  AB    high byte first (default); for strings: first character in the high byte
 *                   BA    bytes swapped in the register
 *   32-bit          ABCD  big-endian (default)          [AB][CD]
 *                   CDAB  word order reversed          [CD][AB]
 *                   BADC  bytes swapped in each word   [BA][DC]
 *                   DCBA  fully little-endian          [DC][BA]
 *   64-bit: the same four names, generalised as two independent swaps:
 *                   ABCD  big-endian                   [AB][CD][EF][GH]
 *                   CDAB  word order reversed, each word big-endian
 *                                                      [GH][EF][CD][AB]
 *                   BADC  bytes swapped in each word   [BA][DC][FE][HG]
 *                   DCBA  fully little-endian          [HG][FE][DC][BA]
 *
 * N is the number as the device documents it. With `addressBase` 1 (devices
 * documented one-based, "register 1 is the first") N=0 is an error and N-1 is
 * sent on the wire. `offset` is always the zero-based wire address.
 */

export type ModbusArea = "coil" | "di" | "ir" | "hr";

export const MODBUS_TYPES = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"] as const;
export type ModbusType = (typeof MODBUS_TYPES)[number];

export type ByteOrder = "AB" | "BA" | "ABCD" | "CDAB" | "BADC" | "DCBA";

export type AddressBase = 0 | 1;

export interface ModbusAddress {
  readonly area: ModbusArea;
  /** Zero-based wire address of the first bit or register. */
  readonly offset: number;
  readonly type: ModbusType | "bool" | "string";
  /** AB for bits, register bits and 16-bit values unless BA is given. */
  readonly order: ByteOrder;
  /** Bit 0..15 of the register, for `hr:N.B` / `ir:N.B`. */
  readonly bit?: number;
  /** String length in bytes, for type string. */
  readonly length?: number;
  /** Registers spanned (1 for bits and register bits). */
  readonly words: number;
}

export type ParseAddressResult = { ok: true; address: ModbusAddress } | { ok: false; error: string };

export type ValueKind = "bool" | "int" | "float" | "string";

/** Longest string: 123 registers, the most one FC16 write can carry. */
export const MAX_STRING_BYTES = 246;
export const MAX_WIRE_ADDRESS = 65535;

const AREAS: readonly ModbusArea[] = ["coil", "di", "ir", "hr"];
const WRITABLE_AREAS: ReadonlySet<ModbusArea> = new Set<ModbusArea>(["coil", "hr"]);
const ORDERS_16: readonly ByteOrder[] = ["AB", "BA"];
const ORDERS_32: readonly ByteOrder[] = ["ABCD", "CDAB", "BADC", "DCBA"];
const DECIMAL = /^[0-9]+$/;

/** Registers spanned by a numeric type. */
export function typeWords(type: ModbusType): 1 | 2 | 4 {
  switch (type) {
    case "int16":
    case "uint16":
      return 1;
    case "int32":
    case "uint32":
    case "float32":
      return 2;
    case "int64":
    case "uint64":
    case "float64":
      return 4;
  }
}

export function isBitArea(area: ModbusArea): area is "coil" | "di" {
  return area === "coil" || area === "di";
}

/** Coils and holding registers can be written; discrete inputs and input registers cannot. */
export function isWritable(area: ModbusArea): boolean {
  return WRITABLE_AREAS.has(area);
}

export function valueKind(addr: ModbusAddress): ValueKind {
  switch (addr.type) {
    case "bool":
      return "bool";
    case "string":
      return "string";
    case "float32":
    case "float64":
      return "float";
    case "int16":
    case "uint16":
    case "int32":
    case "uint32":
    case "int64":
    case "uint64":
      return "int";
  }
}

export function parseAddress(text: string, addressBase: AddressBase = 0): ParseAddressResult {
  const fail = (why: string): ParseAddressResult => ({ ok: false, error: `invalid Modbus address "${text}": ${why}` });
  const parts = text.trim().split(":");
  const areaText = (parts[0] ?? "").toLowerCase();
  const area = AREAS.find((a) => a === areaText);
  if (area === undefined) return fail(`unknown area "${parts[0] ?? ""}" (expected coil, di, ir or hr)`);
  const numText = parts[1];
  if (numText === undefined || numText === "") return fail(`missing the ${isBitArea(area) ? "bit" : "register"} number after "${area}:"`);

  const dot = numText.indexOf(".");
  const nText = dot < 0 ? numText : numText.slice(0, dot);
  if (!DECIMAL.test(nText)) return fail(`"${nText}" is not a decimal ${isBitArea(area) ? "bit" : "register"} number`);
  const n = Number(nText);
  const last = MAX_WIRE_ADDRESS + addressBase;
  if (addressBase === 1 && n === 0) return fail("0 does not exist with address_base 1 (one-based numbering starts at 1)");
  if (n > last) return fail(`${n} is out of range (${addressBase}..${last})`);
  const offset = n - addressBase;

  if (isBitArea(area)) {
    if (dot >= 0) return fail(`${area} is already a single bit; ".B" bit selection applies to ir and hr only`);
    if (parts.length > 2) return fail(`${area} takes no type or order (it is always bool)`);
    return ok({ area, offset, type: "bool", order: "AB", words: 1 });
  }

  if (dot >= 0) {
    const bitText = numText.slice(dot + 1);
    if (!DECIMAL.test(bitText) || Number(bitText) > 15) return fail(`bit "${bitText}" must be a number 0..15`);
    if (parts.length > 2) return fail("a register bit (N.B) takes no type or order (it is always bool)");
    return ok({ area, offset, type: "bool", order: "AB", bit: Number(bitText), words: 1 });
  }

  const typeText = (parts[2] ?? "uint16").toLowerCase();
  if (typeText === "string") {
    const lenText = parts[3];
    if (lenText === undefined || lenText === "") return fail(`string needs a length in bytes: ${area}:${n}:string:LEN`);
    const length = Number(lenText);
    if (!DECIMAL.test(lenText) || length < 1 || length > MAX_STRING_BYTES) {
      return fail(`string length "${lenText}" must be 1..${MAX_STRING_BYTES} bytes`);
    }
    if (parts.length > 5) return fail(`unexpected "${parts.slice(5).join(":")}" after the byte order`);
    const order = parseOrder(parts[4], "AB", ORDERS_16, "string");
    if (typeof order !== "string") return fail(order.error);
    return span({ area, offset, type: "string", order, length, words: Math.ceil(length / 2) }, n, fail);
  }

  const type = MODBUS_TYPES.find((t) => t === typeText);
  if (type === undefined) {
    return fail(`unknown type "${parts[2] ?? ""}" (expected ${MODBUS_TYPES.join(", ")} or string)`);
  }
  if (parts.length > 4) return fail(`unexpected "${parts.slice(4).join(":")}" after the byte order`);
  const words = typeWords(type);
  const allowed = words === 1 ? ORDERS_16 : ORDERS_32;
  const order = parseOrder(parts[3], allowed[0] ?? "AB", allowed, type);
  if (typeof order !== "string") return fail(order.error);
  return span({ area, offset, type, order, words }, n, fail);
}

/**
 * The canonical text of an address, with type and order spelled out, in the
 * device's numbering (`addressBase`). `parseAddress(formatAddress(a, b), b)`
 * gives `a` back.
 */
export function formatAddress(addr: ModbusAddress, addressBase: AddressBase = 0): string {
  const n = addr.offset + addressBase;
  if (isBitArea(addr.area)) return `${addr.area}:${n}`;
  if (addr.bit !== undefined) return `${addr.area}:${n}.${addr.bit}`;
  if (addr.type === "string") return `${addr.area}:${n}:string:${addr.length ?? 0}:${addr.order}`;
  return `${addr.area}:${n}:${addr.type}:${addr.order}`;
}

function ok(address: ModbusAddress): ParseAddressResult {
  return { ok: true, address };
}

function isOrder(s: string): s is ByteOrder {
  return ORDERS_16.includes(s as ByteOrder) || ORDERS_32.includes(s as ByteOrder);
}

function parseOrder(
  text: string | undefined,
  dflt: ByteOrder,
  allowed: readonly ByteOrder[],
  what: string,
): ByteOrder | { error: string } {
  if (text === undefined) return dflt;
  const upper = text.toUpperCase();
  const found = allowed.find((o) => o === upper);
  if (found !== undefined) return found;
  const known = isOrder(upper);
  return {
    error: known
      ? `byte order ${upper} does not apply to ${what} (use ${allowed.join(" or ")})`
      : `unknown byte order "${text}" for ${what} (expected ${allowed.join(", ")})`,
  };
}

function span(addr: ModbusAddress, n: number, fail: (why: string) => ParseAddressResult): ParseAddressResult {
  const lastWire = addr.offset + addr.words - 1;
  if (lastWire > MAX_WIRE_ADDRESS) {
    const base = n - addr.offset;
    const end = n + addr.words - 1;
    return fail(`${addr.type} at ${n} spans ${addr.words} registers (${n}..${end}), past the last register ${MAX_WIRE_ADDRESS + base}`);
  }
  return ok(addr);
}
