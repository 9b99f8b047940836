/**
 * Client side of the Modbus PDU, pure (Modbus Application Protocol v1.1b3,
 * sections 6 and 7): request PDUs are written into a caller's buffer, and a
 * response PDU is checked against the request it answers, giving the typed
 * value, the exception code, or the precise reason the frame is wrong.
 *
 * Also the RTU checksum (Modbus over Serial Line v1.02, 2.5.1.2), the one
 * piece of the RTU framing that is pure arithmetic.
 */

/** Largest PDU: 253 bytes (a 256-byte RTU ADU, a 260-byte MBAP ADU). */
export const MAX_PDU = 253;

export const LIMITS = {
  readBits: 2000,
  readRegisters: 125,
  writeBits: 1968,
  writeRegisters: 123,
  rwWriteRegisters: 121,
} as const;

export type ModbusRequest =
  | { readonly fc: 1 | 2; readonly start: number; readonly count: number }
  | { readonly fc: 3 | 4; readonly start: number; readonly count: number }
  | { readonly fc: 5; readonly start: number; readonly value: boolean }
  | { readonly fc: 6; readonly start: number; readonly value: number }
  | { readonly fc: 15; readonly start: number; readonly values: readonly boolean[] }
  | { readonly fc: 16; readonly start: number; readonly values: readonly number[] }
  /** Read/write multiple registers: `start`/`count` is the read, `writeStart`/`values` the write. */
  | { readonly fc: 23; readonly start: number; readonly count: number; readonly writeStart: number; readonly values: readonly number[] };

export type ModbusFc = ModbusRequest["fc"];

/** The value a request resolves with: bits for FC 1/2, words for FC 3/4/23, nothing for writes. */
type ValueOfFc<F> = F extends 1 | 2 ? boolean[] : F extends 3 | 4 | 23 ? number[] : undefined;
export type ResponseOf<R extends ModbusRequest> = ValueOfFc<R["fc"]>;

export type PduResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly kind: "exception"; readonly code: number }
  /** `inSync`: the PDU's own length is consistent, so the frame boundary can still be trusted. */
  | { readonly ok: false; readonly kind: "frame"; readonly reason: string; readonly inSync: boolean };

const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  0x01: "illegal function",
  0x02: "illegal data address",
  0x03: "illegal data value",
  0x04: "server device failure",
  0x05: "acknowledge",
  0x06: "server device busy",
  0x07: "negative acknowledge",
  0x08: "memory parity error",
  0x0a: "gateway path unavailable",
  0x0b: "gateway target device failed to respond",
};

export function exceptionName(code: number): string {
  return EXCEPTION_NAMES[code] ?? "undefined exception code";
}

export function hex(n: number, digits = 2): string {
  return `0x${n.toString(16).padStart(digits, "0")}`;
}

/** Number of coils/registers a request addresses (its read side for FC 23). */
export function quantityOf(req: ModbusRequest): number {
  switch (req.fc) {
    case 5:
    case 6:
      return 1;
    case 15:
    case 16:
      return req.values.length;
    default:
      return req.count;
  }
}

export function requestPduLength(req: ModbusRequest): number {
  switch (req.fc) {
    case 15:
      return 6 + Math.ceil(req.values.length / 8);
    case 16:
      return 6 + 2 * req.values.length;
    case 23:
      return 10 + 2 * req.values.length;
    default:
      return 5;
  }
}

const isWord = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff;

function rangeError(what: string, start: number, count: number, max: number): string | undefined {
  if (!isWord(start)) return `${what} start ${start} is not an address 0..65535`;
  if (!Number.isInteger(count) || count < 1 || count > max) return `${what} quantity ${count} is outside 1..${max}`;
  if (start + count > 0x10000) return `${what} ${start}+${count} runs past address 65535`;
  return undefined;
}

/** Why `req` cannot be sent (undefined when it can). */
export function checkRequest(req: ModbusRequest): string | undefined {
  switch (req.fc) {
    case 1:
    case 2:
      return rangeError("read", req.start, req.count, LIMITS.readBits);
    case 3:
    case 4:
      return rangeError("read", req.start, req.count, LIMITS.readRegisters);
    case 5: {
      const v: unknown = req.value;
      return typeof v !== "boolean" ? `coil value ${String(v)} is not a boolean` : rangeError("write", req.start, 1, 1);
    }
    case 6:
      return !isWord(req.value) ? `register value ${String(req.value)} is not a word 0..65535` : rangeError("write", req.start, 1, 1);
    case 15:
      if (!req.values.every((v) => typeof v === "boolean")) return "coil values must be booleans";
      return rangeError("write", req.start, req.values.length, LIMITS.writeBits);
    case 16:
      if (!req.values.every(isWord)) return "register values must be words 0..65535";
      return rangeError("write", req.start, req.values.length, LIMITS.writeRegisters);
    case 23:
      if (!req.values.every(isWord)) return "register values must be words 0..65535";
      return rangeError("read", req.start, req.count, LIMITS.readRegisters) ?? rangeError("write", req.writeStart, req.values.length, LIMITS.rwWriteRegisters);
    default:
      return `function code ${String((req as { fc: unknown }).fc)} is not supported`;
  }
}

/** Writes the request PDU of a checked request at `off`; returns its length. */
export function encodeRequestPdu(req: ModbusRequest, buf: Buffer, off: number): number {
  buf[off] = req.fc;
  buf.writeUInt16BE(req.start, off + 1);
  switch (req.fc) {
    case 1:
    case 2:
    case 3:
    case 4:
      buf.writeUInt16BE(req.count, off + 3);
      return 5;
    case 5:
      buf.writeUInt16BE(req.value ? 0xff00 : 0x0000, off + 3);
      return 5;
    case 6:
      buf.writeUInt16BE(req.value, off + 3);
      return 5;
    case 15: {
      const n = req.values.length;
      const bytes = Math.ceil(n / 8);
      buf.writeUInt16BE(n, off + 3);
      buf[off + 5] = bytes;
      buf.fill(0, off + 6, off + 6 + bytes);
      for (let i = 0; i < n; i++) if (req.values[i]) buf[off + 6 + (i >> 3)]! |= 1 << (i & 7);
      return 6 + bytes;
    }
    case 16:
      buf.writeUInt16BE(req.values.length, off + 3);
      buf[off + 5] = 2 * req.values.length;
      for (let i = 0; i < req.values.length; i++) buf.writeUInt16BE(req.values[i]!, off + 6 + 2 * i);
      return 6 + 2 * req.values.length;
    case 23:
      buf.writeUInt16BE(req.count, off + 3);
      buf.writeUInt16BE(req.writeStart, off + 5);
      buf.writeUInt16BE(req.values.length, off + 7);
      buf[off + 9] = 2 * req.values.length;
      for (let i = 0; i < req.values.length; i++) buf.writeUInt16BE(req.values[i]!, off + 10 + 2 * i);
      return 10 + 2 * req.values.length;
  }
}

/** `responsePduLength`: more bytes are needed to tell. */
export const NEED_MORE = -1;
/** `responsePduLength`: a function code whose response layout is unknown. */
export const UNKNOWN_FC = -2;

/**
 * The length a response PDU starting at `off` claims by its own content
 * (function code, byte count), from the `avail` bytes present; NEED_MORE or
 * UNKNOWN_FC otherwise.
 */
export function responsePduLength(buf: Uint8Array, off: number, avail: number): number {
  if (avail < 1) return NEED_MORE;
  const fc = buf[off]!;
  if (fc & 0x80) return 2;
  switch (fc) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 23:
      return avail < 2 ? NEED_MORE : 2 + buf[off + 1]!;
    case 5:
    case 6:
    case 15:
    case 16:
      return 5;
    default:
      return UNKNOWN_FC;
  }
}

function frame(reason: string, inSync: boolean): PduResult<never> {
  return { ok: false, kind: "frame", reason, inSync };
}

/**
 * Checks the response PDU `buf[off, off+len)` against `req`: function code
 * (or `fc | 0x80` with a 2-byte exception), the PDU's length against its own
 * byte count, the byte count against the requested quantity, and the echo
 * of writes. Copies the values out: nothing refers to `buf` afterwards.
 */
export function parseResponsePdu<R extends ModbusRequest>(req: R, buf: Uint8Array, off: number, len: number): PduResult<ResponseOf<R>> {
  if (len < 1) return frame("empty PDU", false);
  const fc = buf[off]!;
  const own = responsePduLength(buf, off, len);
  if (fc === (req.fc | 0x80)) {
    if (len !== 2) return frame(`exception response of ${len} bytes, expected 2`, false);
    return { ok: false, kind: "exception", code: buf[off + 1]! };
  }
  if (fc !== req.fc) return frame(`function code ${hex(fc)}, expected ${hex(req.fc)} or ${hex(req.fc | 0x80)}`, own === len);
  if (len > MAX_PDU) return frame(`PDU of ${len} bytes exceeds the ${MAX_PDU}-byte maximum`, false);
  if (own === NEED_MORE) return frame(`PDU of ${len} byte(s) is too short for function ${hex(fc)}`, false);
  if (own !== len) {
    if (own === 5) return frame(`PDU of ${len} bytes, expected 5`, false);
    const what = len > own ? "over-long PDU or byte count too low" : "truncated PDU or byte count too high";
    return frame(`byte count ${buf[off + 1]!} implies a ${own}-byte PDU but it has ${len} (${what})`, false);
  }
  switch (req.fc) {
    case 1:
    case 2: {
      const want = Math.ceil(req.count / 8);
      const bc = buf[off + 1]!;
      if (bc !== want) return frame(`byte count ${bc}, expected ${want} for ${req.count} bits`, true);
      const out: boolean[] = [];
      for (let i = 0; i < req.count; i++) out.push(((buf[off + 2 + (i >> 3)]! >> (i & 7)) & 1) === 1);
      return { ok: true, value: out as ResponseOf<R> };
    }
    case 3:
    case 4:
    case 23: {
      const bc = buf[off + 1]!;
      if (bc !== 2 * req.count) return frame(`byte count ${bc}, expected ${2 * req.count} for ${req.count} registers`, true);
      const out: number[] = [];
      for (let i = 0; i < req.count; i++) out.push((buf[off + 2 + 2 * i]! << 8) | buf[off + 3 + 2 * i]!);
      return { ok: true, value: out as ResponseOf<R> };
    }
    case 5:
    case 6:
    case 15:
    case 16: {
      const addr = (buf[off + 1]! << 8) | buf[off + 2]!;
      const word = (buf[off + 3]! << 8) | buf[off + 4]!;
      const want = req.fc === 5 ? (req.value ? 0xff00 : 0) : req.fc === 6 ? req.value : req.values.length;
      const field = req.fc === 5 || req.fc === 6 ? "value" : "quantity";
      if (addr !== req.start) return frame(`echoed address ${addr}, expected ${req.start}`, true);
      if (word !== want) return frame(`echoed ${field} ${hex(word, 4)}, expected ${hex(want, 4)}`, true);
      return { ok: true, value: undefined as ResponseOf<R> };
    }
  }
}

const CRC_TABLE = ((): Uint16Array => {
  const t = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** Modbus RTU CRC-16 of `buf[off, end)` (reflected 0xA001, init 0xFFFF); sent low byte first. */
export function crc16(buf: Uint8Array, off = 0, end = buf.length): number {
  let crc = 0xffff;
  for (let i = off; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buf[i]!) & 0xff]!;
  return crc;
}
