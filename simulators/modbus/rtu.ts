/**
 * Modbus RTU framing, pure (Modbus over Serial Line v1.02, section 2.5):
 * ADU = unit id, PDU, CRC-16 (polynomial 0xA001 reflected, init 0xFFFF,
 * low byte first). Frames are delimited by 3.5 character times of silence;
 * the assembler also knows the length of every request of the supported
 * function codes, so a whole frame is answered as soon as it is complete.
 */
import type { Malformation } from "./faults.js";
import { malformPdu } from "./pdu.js";

const CRC_TABLE = ((): Uint16Array => {
  const t = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** Modbus CRC-16 of `buf` (as a number; it goes on the wire low byte first). */
export function crc16(buf: Uint8Array): number {
  let crc = 0xffff;
  for (const b of buf) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ b) & 0xff]!;
  return crc;
}

export function encodeRtuFrame(unit: number, pdu: Uint8Array): Buffer {
  const frame = Buffer.alloc(pdu.length + 3);
  frame[0] = unit & 0xff;
  frame.set(pdu, 1);
  frame.writeUInt16LE(crc16(frame.subarray(0, pdu.length + 1)), pdu.length + 1);
  return frame;
}

/** Whether the last two bytes of `adu` are the CRC of the rest. */
export function hasValidCrc(adu: Buffer): boolean {
  if (adu.length < 4) return false;
  return crc16(adu.subarray(0, adu.length - 2)) === adu.readUInt16LE(adu.length - 2);
}

/** 3.5 character times in ms; fixed 1.75 ms above 19200 baud (spec 2.5.1.1). 11 bits per character. */
export function silenceMs(baudRate: number, bitsPerChar = 11): number {
  if (baudRate > 19200) return 1.75;
  return (3.5 * bitsPerChar * 1000) / baudRate;
}

export const MAX_RTU_ADU = 256;

/**
 * Length of the request ADU that starts `buf`: a number, `undefined` when
 * more bytes are needed to tell, or "unknown" for a function code whose
 * length we do not know (that frame ends at the next silence).
 */
export function expectedRequestLength(buf: Buffer): number | "unknown" | undefined {
  const fc = buf[1];
  if (fc === undefined) return undefined;
  switch (fc) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x05:
    case 0x06:
      return 8; // unit fc addr(2) value(2) crc(2)
    case 0x0f:
    case 0x10:
      return buf.length < 7 ? undefined : 9 + buf[6]!; // unit fc addr qty bc data crc
    case 0x17:
      return buf.length < 11 ? undefined : 13 + buf[10]!; // unit fc raddr rqty waddr wqty bc data crc
    default:
      return "unknown";
  }
}

export type RtuFrame = { ok: true; unit: number; pdu: Buffer } | { ok: false; adu: Buffer };

function toFrame(adu: Buffer): RtuFrame {
  return hasValidCrc(adu) ? { ok: true, unit: adu[0]!, pdu: Buffer.from(adu.subarray(1, adu.length - 2)) } : { ok: false, adu: Buffer.from(adu) };
}

/**
 * Assembles request frames from partial reads. Pure: the caller passes the
 * arrival time of each chunk and calls `flush()` when the line has been
 * silent for `silenceMs` with bytes still pending.
 *
 * - A gap longer than `silenceMs` before a chunk starts a new frame (the
 *   pending incomplete bytes are discarded).
 * - A frame of known length is emitted once complete; a bad CRC discards
 *   everything pending (a slave cannot resynchronise before the next silence).
 */
export class RtuFrameAssembler {
  private buf: Buffer = Buffer.alloc(0);
  private lastAt = Number.NEGATIVE_INFINITY;
  /** Bytes thrown away because a silence cut their frame short or the frame was too long. */
  discardedBytes = 0;

  constructor(private readonly silence: number = Number.POSITIVE_INFINITY) {}

  get pendingBytes(): number {
    return this.buf.length;
  }

  push(chunk: Buffer, nowMs: number): RtuFrame[] {
    if (this.buf.length > 0 && nowMs - this.lastAt > this.silence) this.discard();
    this.lastAt = nowMs;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: RtuFrame[] = [];
    while (this.buf.length > 0) {
      const len = expectedRequestLength(this.buf);
      if (len === undefined || len === "unknown") break;
      if (this.buf.length < len) break;
      const frame = toFrame(this.buf.subarray(0, len));
      out.push(frame);
      if (!frame.ok) {
        this.buf = Buffer.alloc(0);
        break;
      }
      this.buf = this.buf.subarray(len);
    }
    if (this.buf.length > MAX_RTU_ADU) this.discard();
    return out;
  }

  /** End of frame by silence: whatever is pending is one frame (good or bad); nothing if empty. */
  flush(): RtuFrame[] {
    if (this.buf.length === 0) return [];
    const adu = this.buf;
    this.buf = Buffer.alloc(0);
    if (expectedRequestLength(adu) !== "unknown") {
      this.discardedBytes += adu.length; // a known frame cut short
      return [];
    }
    return [toFrame(adu)];
  }

  private discard(): void {
    this.discardedBytes += this.buf.length;
    this.buf = Buffer.alloc(0);
  }
}

/**
 * A response ADU with malformation `m` (the MBAP-only malformations give a
 * correct frame). The CRC is recomputed except for `bad_crc` (both CRC
 * bytes inverted) and `truncated` (the last byte is left off).
 */
export function malformRtuFrame(unit: number, pdu: Buffer, m: Malformation): Buffer {
  switch (m) {
    case "wrong_unit_id":
      return encodeRtuFrame((unit + 1) & 0xff, pdu);
    case "truncated": {
      const f = encodeRtuFrame(unit, pdu);
      return f.subarray(0, f.length - 1);
    }
    case "bad_crc": {
      const f = encodeRtuFrame(unit, pdu);
      f.writeUInt16LE(f.readUInt16LE(f.length - 2) ^ 0xffff, f.length - 2);
      return f;
    }
    case "wrong_function_code":
    case "overlong":
    case "byte_count_mismatch":
      return encodeRtuFrame(unit, malformPdu(pdu, m));
    case "wrong_transaction_id":
    case "wrong_protocol_id":
    case "length_too_long":
    case "length_too_short":
      return encodeRtuFrame(unit, pdu);
  }
}
