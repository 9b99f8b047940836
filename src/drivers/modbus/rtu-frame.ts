/**
 * Modbus RTU response frames (pure): the expected length of an answer, what
 * the bytes received so far are, and why a frame that a silence ended is not
 * a good answer.
 */
import { NEED_MORE, crc16, hex, responsePduLength, type ModbusRequest } from "./pdu-client.js";

/** Largest RTU ADU: unit id, 253-byte PDU, CRC. */
export const MAX_RTU_ADU = 256;

/** Length of the ADU (unit id, PDU, CRC) that answers `req` without an exception. */
export function expectedResponseLength(req: ModbusRequest): number {
  switch (req.fc) {
    case 1:
    case 2:
      return 5 + Math.ceil(req.count / 8);
    case 3:
    case 4:
    case 23:
      return 5 + 2 * req.count;
    case 5:
    case 6:
    case 15:
    case 16:
      return 8;
  }
}

export type Examined =
  /** More bytes needed; `need` is the frame's length once its header tells. */
  | { readonly kind: "partial"; readonly need?: number }
  /** Not the answer to this request: another unit id or function code. */
  | { readonly kind: "foreign"; readonly reason: string }
  /** `need` bytes are in but their CRC does not match (the rest may still be coming). */
  | { readonly kind: "bad_crc"; readonly need: number }
  /** A whole frame of `need` bytes with a good CRC: the PDU is `buf[1, need-2)`. */
  | { readonly kind: "frame"; readonly need: number };

export const crcAt = (buf: Uint8Array, at: number): number => buf[at]! | (buf[at + 1]! << 8);

/** What the `len` bytes received so far are, as the answer of `unit` to function `fc`. */
export function examineResponse(unit: number, fc: number, buf: Uint8Array, len: number): Examined {
  if (len < 1) return { kind: "partial" };
  if (buf[0] !== unit) return { kind: "foreign", reason: `answer from unit ${buf[0]!}, expected unit ${unit}` };
  if (len < 2) return { kind: "partial" };
  const f = buf[1]!;
  if (f !== fc && f !== (fc | 0x80)) return { kind: "foreign", reason: `function code ${hex(f)}, expected ${hex(fc)} or ${hex(fc | 0x80)}` };
  const pdu = responsePduLength(buf, 1, len - 1);
  if (pdu === NEED_MORE) return { kind: "partial" };
  if (pdu < 0) return { kind: "foreign", reason: `function code ${hex(f)} has no known response layout` };
  const need = pdu + 3;
  if (len < need) return { kind: "partial", need };
  if (crc16(buf, 0, need - 2) !== crcAt(buf, need - 2)) return { kind: "bad_crc", need };
  return { kind: "frame", need };
}

/**
 * Length of the whole, CRC-valid response frame at the start of `buf[0, len)`,
 * whatever unit or function it is from: 0 while more bytes are needed to
 * tell, -1 when it is not a frame (unknown function code, too long, bad CRC).
 */
export function frameLength(buf: Uint8Array, len: number): number {
  if (len < 2) return 0;
  const pdu = responsePduLength(buf, 1, len - 1);
  if (pdu === NEED_MORE) return 0;
  const need = pdu + 3;
  if (pdu < 0 || need > MAX_RTU_ADU) return -1;
  if (len < need) return 0;
  return crc16(buf, 0, need - 2) === crcAt(buf, need - 2) ? need : -1;
}

/** Why the `len` bytes that a silence of `silenceMs` ended are not a good answer of `unit` to `fc`. */
export function silenceReason(unit: number, fc: number, rx: Uint8Array, len: number, silenceMs: number): string {
  const e = examineResponse(unit, fc, rx, len);
  const crcOk = len >= 4 && crc16(rx, 0, len - 2) === crcAt(rx, len - 2);
  const silence = `${Math.round(silenceMs * 100) / 100} ms of silence`;
  switch (e.kind) {
    case "bad_crc":
      if (crcOk && len > e.need) return `over-long response: ${len} bytes with a valid CRC, ${e.need} expected`;
      return `CRC mismatch: received ${hex(crcAt(rx, e.need - 2), 4)}, computed ${hex(crc16(rx, 0, e.need - 2), 4)}`;
    case "partial":
      if (crcOk && e.need !== undefined) return `frame of ${len} bytes has a valid CRC but its header announces ${e.need} (byte count wrong)`;
      return `truncated response: ${len} of ${e.need ?? "?"} bytes, then ${silence}`;
    case "foreign":
      return `${e.reason}: ${len} bytes, then ${silence}`;
    case "frame":
      return `unexpected frame end after ${len} bytes and ${silence}`; // settled on arrival; not reached
  }
}
