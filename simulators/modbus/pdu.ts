/**
 * Pure Modbus request PDU -> response PDU over one RegisterBank
 * (Modbus Application Protocol v1.1b3, section 6). The only side effects are
 * the bank writes of FC 5, 6, 15, 16 and 23.
 *
 * Checks follow the spec's flow: unsupported function -> 01, quantity or
 * PDU length invalid -> 03, address range outside the bank -> 02.
 */
import type { RegisterBank } from "./bank.js";
import type { Malformation } from "./faults.js";

export const FC = {
  READ_COILS: 0x01,
  READ_DISCRETE_INPUTS: 0x02,
  READ_HOLDING_REGISTERS: 0x03,
  READ_INPUT_REGISTERS: 0x04,
  WRITE_SINGLE_COIL: 0x05,
  WRITE_SINGLE_REGISTER: 0x06,
  WRITE_MULTIPLE_COILS: 0x0f,
  WRITE_MULTIPLE_REGISTERS: 0x10,
  READ_WRITE_MULTIPLE_REGISTERS: 0x17,
} as const;

export const EXCEPTION = {
  ILLEGAL_FUNCTION: 0x01,
  ILLEGAL_DATA_ADDRESS: 0x02,
  ILLEGAL_DATA_VALUE: 0x03,
  SERVER_DEVICE_FAILURE: 0x04,
  ACKNOWLEDGE: 0x05,
  SERVER_DEVICE_BUSY: 0x06,
  MEMORY_PARITY_ERROR: 0x08,
  GATEWAY_PATH_UNAVAILABLE: 0x0a,
  GATEWAY_TARGET_FAILED: 0x0b,
} as const;

export const LIMITS = {
  readBits: 2000,
  readRegisters: 125,
  writeBits: 1968,
  writeRegisters: 123,
  rwWriteRegisters: 121,
} as const;

/** Function codes whose request writes to the bank (what a broadcast may carry). */
export const WRITE_FUNCTIONS: ReadonlySet<number> = new Set([0x05, 0x06, 0x0f, 0x10]);

/** Function codes whose normal response is `fc, byteCount, data...`. */
export const BYTE_COUNT_FUNCTIONS: ReadonlySet<number> = new Set([0x01, 0x02, 0x03, 0x04, 0x17]);

export function exceptionPdu(fc: number, code: number): Buffer {
  return Buffer.from([(fc | 0x80) & 0xff, code & 0xff]);
}

export function isExceptionPdu(pdu: Buffer): boolean {
  return pdu.length >= 1 && (pdu[0]! & 0x80) !== 0;
}

/** The response PDU to `req` (function code first, no unit id, no checksum). */
export function handlePdu(bank: RegisterBank, req: Buffer): Buffer {
  const fc = req[0];
  if (fc === undefined) return exceptionPdu(0, EXCEPTION.ILLEGAL_FUNCTION);
  switch (fc) {
    case FC.READ_COILS:
      return readBits(fc, bank.coils, req);
    case FC.READ_DISCRETE_INPUTS:
      return readBits(fc, bank.discreteInputs, req);
    case FC.READ_HOLDING_REGISTERS:
      return readRegisters(fc, bank.holdingRegisters, req);
    case FC.READ_INPUT_REGISTERS:
      return readRegisters(fc, bank.inputRegisters, req);
    case FC.WRITE_SINGLE_COIL:
      return writeSingleCoil(bank, req);
    case FC.WRITE_SINGLE_REGISTER:
      return writeSingleRegister(bank, req);
    case FC.WRITE_MULTIPLE_COILS:
      return writeMultipleCoils(bank, req);
    case FC.WRITE_MULTIPLE_REGISTERS:
      return writeMultipleRegisters(bank, req);
    case FC.READ_WRITE_MULTIPLE_REGISTERS:
      return readWriteRegisters(bank, req);
    default:
      return exceptionPdu(fc, EXCEPTION.ILLEGAL_FUNCTION);
  }
}

function inRange(addr: number, count: number, size: number): boolean {
  return addr + count <= size;
}

function readBits(fc: number, bits: Uint8Array, req: Buffer): Buffer {
  if (req.length !== 5) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const addr = req.readUInt16BE(1);
  const qty = req.readUInt16BE(3);
  if (qty < 1 || qty > LIMITS.readBits) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  if (!inRange(addr, qty, bits.length)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  const n = Math.ceil(qty / 8);
  const res = Buffer.alloc(2 + n);
  res[0] = fc;
  res[1] = n;
  for (let i = 0; i < qty; i++) {
    if (bits[addr + i]) res[2 + (i >> 3)]! |= 1 << (i & 7);
  }
  return res;
}

function readRegisters(fc: number, regs: Uint16Array, req: Buffer): Buffer {
  if (req.length !== 5) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const addr = req.readUInt16BE(1);
  const qty = req.readUInt16BE(3);
  if (qty < 1 || qty > LIMITS.readRegisters) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  if (!inRange(addr, qty, regs.length)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  return registersResponse(fc, regs, addr, qty);
}

function registersResponse(fc: number, regs: Uint16Array, addr: number, qty: number): Buffer {
  const res = Buffer.alloc(2 + 2 * qty);
  res[0] = fc;
  res[1] = 2 * qty;
  for (let i = 0; i < qty; i++) res.writeUInt16BE(regs[addr + i]!, 2 + 2 * i);
  return res;
}

function writeSingleCoil(bank: RegisterBank, req: Buffer): Buffer {
  const fc = FC.WRITE_SINGLE_COIL;
  if (req.length !== 5) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const addr = req.readUInt16BE(1);
  const value = req.readUInt16BE(3);
  if (value !== 0xff00 && value !== 0x0000) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  if (!inRange(addr, 1, bank.coils.length)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  bank.clientWriteCoils(addr, [value === 0xff00 ? 1 : 0]);
  return Buffer.from(req);
}

function writeSingleRegister(bank: RegisterBank, req: Buffer): Buffer {
  const fc = FC.WRITE_SINGLE_REGISTER;
  if (req.length !== 5) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const addr = req.readUInt16BE(1);
  if (!inRange(addr, 1, bank.holdingRegisters.length)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  bank.clientWriteRegisters(addr, [req.readUInt16BE(3)]);
  return Buffer.from(req);
}

function writeMultipleCoils(bank: RegisterBank, req: Buffer): Buffer {
  const fc = FC.WRITE_MULTIPLE_COILS;
  if (req.length < 6) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const addr = req.readUInt16BE(1);
  const qty = req.readUInt16BE(3);
  const byteCount = req[5]!;
  if (qty < 1 || qty > LIMITS.writeBits || byteCount !== Math.ceil(qty / 8) || req.length !== 6 + byteCount) {
    return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  }
  if (!inRange(addr, qty, bank.coils.length)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  const values = new Uint8Array(qty);
  for (let i = 0; i < qty; i++) values[i] = (req[6 + (i >> 3)]! >> (i & 7)) & 1;
  bank.clientWriteCoils(addr, values);
  return Buffer.from(req.subarray(0, 5));
}

function writeMultipleRegisters(bank: RegisterBank, req: Buffer): Buffer {
  const fc = FC.WRITE_MULTIPLE_REGISTERS;
  if (req.length < 6) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const addr = req.readUInt16BE(1);
  const qty = req.readUInt16BE(3);
  const byteCount = req[5]!;
  if (qty < 1 || qty > LIMITS.writeRegisters || byteCount !== 2 * qty || req.length !== 6 + byteCount) {
    return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  }
  if (!inRange(addr, qty, bank.holdingRegisters.length)) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  bank.clientWriteRegisters(addr, wordsOf(req, 6, qty));
  return Buffer.from(req.subarray(0, 5));
}

/** FC 23: the write is performed before the read (spec 6.17). */
function readWriteRegisters(bank: RegisterBank, req: Buffer): Buffer {
  const fc = FC.READ_WRITE_MULTIPLE_REGISTERS;
  if (req.length < 10) return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  const readAddr = req.readUInt16BE(1);
  const readQty = req.readUInt16BE(3);
  const writeAddr = req.readUInt16BE(5);
  const writeQty = req.readUInt16BE(7);
  const byteCount = req[9]!;
  if (
    readQty < 1 ||
    readQty > LIMITS.readRegisters ||
    writeQty < 1 ||
    writeQty > LIMITS.rwWriteRegisters ||
    byteCount !== 2 * writeQty ||
    req.length !== 10 + byteCount
  ) {
    return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_VALUE);
  }
  const regs = bank.holdingRegisters;
  if (!inRange(readAddr, readQty, regs.length) || !inRange(writeAddr, writeQty, regs.length)) {
    return exceptionPdu(fc, EXCEPTION.ILLEGAL_DATA_ADDRESS);
  }
  bank.clientWriteRegisters(writeAddr, wordsOf(req, 10, writeQty));
  return registersResponse(fc, regs, readAddr, readQty);
}

function wordsOf(buf: Buffer, offset: number, count: number): number[] {
  const words: number[] = [];
  for (let i = 0; i < count; i++) words.push(buf.readUInt16BE(offset + 2 * i));
  return words;
}

/**
 * The PDU-level malformations (the same on MBAP and RTU); any other
 * malformation returns the PDU unchanged (the framing layer applies it).
 * - wrong_function_code: function code + 1 (0x7F wraps to 0x01), exception bit kept
 * - overlong: one extra 0x00 byte after the PDU
 * - byte_count_mismatch: byte count + 1 on responses that carry one (FC 1-4, 23)
 */
export function malformPdu(pdu: Buffer, m: Malformation): Buffer {
  const out = Buffer.from(pdu);
  const fc = out[0] ?? 0;
  switch (m) {
    case "wrong_function_code":
      out[0] = (fc & 0x80) | ((fc & 0x7f) === 0x7f ? 1 : (fc & 0x7f) + 1);
      return out;
    case "overlong":
      return Buffer.concat([out, Buffer.from([0x00])]);
    case "byte_count_mismatch":
      if (BYTE_COUNT_FUNCTIONS.has(fc) && out.length >= 2) out[1] = (out[1]! + 1) & 0xff;
      return out;
    case "wrong_transaction_id":
    case "wrong_protocol_id":
    case "wrong_unit_id":
    case "length_too_long":
    case "length_too_short":
    case "truncated":
    case "bad_crc":
      return out;
  }
}
