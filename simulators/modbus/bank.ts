/**
 * The data store of one simulated Modbus unit: coils and discrete inputs
 * (one byte per bit, 0 or 1), holding and input registers (16-bit words).
 *
 * Test helpers (setBit, setFloat32, ...) never fire `onWrite`; only writes
 * that arrive from a Modbus client do (see `clientWriteCoils` /
 * `clientWriteRegisters`, called by the PDU handler).
 */
import { CellioError } from "../../src/infra/errors.js";

export type BitArea = "coil" | "di";
export type RegisterArea = "hr" | "ir";
export type Area = BitArea | RegisterArea;
/** Word/byte order of a 32-bit value over two registers; A is the most significant byte. */
export type WordOrder = "ABCD" | "CDAB" | "BADC" | "DCBA";
export const WORD_ORDERS: readonly WordOrder[] = ["ABCD", "CDAB", "BADC", "DCBA"];

export interface BankSizes {
  coils?: number;
  discreteInputs?: number;
  holdingRegisters?: number;
  inputRegisters?: number;
}

/** Called after a client wrote `count` coils or holding registers starting at `addr`. */
export type WriteListener = (area: "coil" | "hr", addr: number, count: number) => void;

const DEFAULT_SIZE = 65536;

function checkSize(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > DEFAULT_SIZE) {
    throw new CellioError("CELLIO_ERR_SIM", `bank size ${name}=${n} must be an integer 0..65536`);
  }
  return n;
}

export class RegisterBank {
  readonly coils: Uint8Array;
  readonly discreteInputs: Uint8Array;
  readonly holdingRegisters: Uint16Array;
  readonly inputRegisters: Uint16Array;
  private readonly writeListeners = new Set<WriteListener>();

  constructor(sizes: BankSizes = {}) {
    this.coils = new Uint8Array(checkSize("coils", sizes.coils ?? DEFAULT_SIZE));
    this.discreteInputs = new Uint8Array(checkSize("discreteInputs", sizes.discreteInputs ?? DEFAULT_SIZE));
    this.holdingRegisters = new Uint16Array(checkSize("holdingRegisters", sizes.holdingRegisters ?? DEFAULT_SIZE));
    this.inputRegisters = new Uint16Array(checkSize("inputRegisters", sizes.inputRegisters ?? DEFAULT_SIZE));
  }

  bits(area: BitArea): Uint8Array {
    return area === "coil" ? this.coils : this.discreteInputs;
  }

  registers(area: RegisterArea): Uint16Array {
    return area === "hr" ? this.holdingRegisters : this.inputRegisters;
  }

  /** Subscribe to client writes; returns the unsubscribe function. */
  onWrite(listener: WriteListener): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
  }

  // ---- bits -------------------------------------------------------------

  setBit(area: BitArea, addr: number, v: boolean | 0 | 1): void {
    const a = this.bits(area);
    checkRange(area, a.length, addr, 1);
    a[addr] = v ? 1 : 0;
  }

  getBit(area: BitArea, addr: number): boolean {
    const a = this.bits(area);
    checkRange(area, a.length, addr, 1);
    return a[addr] === 1;
  }

  setBits(area: BitArea, addr: number, values: readonly (boolean | 0 | 1)[]): void {
    const a = this.bits(area);
    checkRange(area, a.length, addr, values.length);
    values.forEach((v, i) => (a[addr + i] = v ? 1 : 0));
  }

  getBits(area: BitArea, addr: number, count: number): boolean[] {
    const a = this.bits(area);
    checkRange(area, a.length, addr, count);
    return Array.from(a.subarray(addr, addr + count), (b) => b === 1);
  }

  // ---- registers --------------------------------------------------------

  /** Accepts -32768..65535; negative values are stored as their two's complement. */
  setRegister(area: RegisterArea, addr: number, word: number): void {
    this.setRegisters(area, addr, [word]);
  }

  getRegister(area: RegisterArea, addr: number): number {
    const a = this.registers(area);
    checkRange(area, a.length, addr, 1);
    return a[addr]!;
  }

  setRegisters(area: RegisterArea, addr: number, words: readonly number[]): void {
    const a = this.registers(area);
    checkRange(area, a.length, addr, words.length);
    for (const w of words) {
      if (!Number.isInteger(w) || w < -32768 || w > 65535) {
        throw new CellioError("CELLIO_ERR_SIM", `register value ${w} at ${area}:${addr} is not a 16-bit integer`);
      }
    }
    words.forEach((w, i) => (a[addr + i] = w & 0xffff));
  }

  getRegisters(area: RegisterArea, addr: number, count: number): number[] {
    const a = this.registers(area);
    checkRange(area, a.length, addr, count);
    return Array.from(a.subarray(addr, addr + count));
  }

  // ---- typed helpers (for tests and simulators) -------------------------

  setInt16(area: RegisterArea, addr: number, v: number): void {
    this.setRegister(area, addr, v);
  }

  getInt16(area: RegisterArea, addr: number): number {
    const w = this.getRegister(area, addr);
    return w >= 0x8000 ? w - 0x10000 : w;
  }

  setFloat32(area: RegisterArea, addr: number, v: number, order: WordOrder = "ABCD"): void {
    const b = Buffer.alloc(4);
    b.writeFloatBE(v);
    this.set32(area, addr, b, order);
  }

  getFloat32(area: RegisterArea, addr: number, order: WordOrder = "ABCD"): number {
    return this.get32(area, addr, order).readFloatBE();
  }

  setInt32(area: RegisterArea, addr: number, v: number, order: WordOrder = "ABCD"): void {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.set32(area, addr, b, order);
  }

  getInt32(area: RegisterArea, addr: number, order: WordOrder = "ABCD"): number {
    return this.get32(area, addr, order).readInt32BE();
  }

  setUInt32(area: RegisterArea, addr: number, v: number, order: WordOrder = "ABCD"): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.set32(area, addr, b, order);
  }

  getUInt32(area: RegisterArea, addr: number, order: WordOrder = "ABCD"): number {
    return this.get32(area, addr, order).readUInt32BE();
  }

  /**
   * ASCII/Latin-1 string, two characters per register, first character in the
   * high byte. `lengthRegs` (default: just enough for `s`) pads with NUL bytes.
   */
  setString(area: RegisterArea, addr: number, s: string, lengthRegs = Math.ceil(s.length / 2)): void {
    const b = Buffer.alloc(lengthRegs * 2);
    b.write(s.slice(0, lengthRegs * 2), "latin1");
    const words: number[] = [];
    for (let i = 0; i < lengthRegs; i++) words.push(b.readUInt16BE(i * 2));
    this.setRegisters(area, addr, words);
  }

  /** The string in `lengthRegs` registers, cut at the first NUL. */
  getString(area: RegisterArea, addr: number, lengthRegs: number): string {
    const b = Buffer.alloc(lengthRegs * 2);
    this.getRegisters(area, addr, lengthRegs).forEach((w, i) => b.writeUInt16BE(w, i * 2));
    const nul = b.indexOf(0);
    return b.toString("latin1", 0, nul === -1 ? b.length : nul);
  }

  // ---- client writes (fire onWrite) -------------------------------------

  /** A client wrote coils: store them and tell the listeners. */
  clientWriteCoils(addr: number, values: ArrayLike<number>): void {
    checkRange("coil", this.coils.length, addr, values.length);
    for (let i = 0; i < values.length; i++) this.coils[addr + i] = values[i] ? 1 : 0;
    this.emitWrite("coil", addr, values.length);
  }

  /** A client wrote holding registers: store them and tell the listeners. */
  clientWriteRegisters(addr: number, words: ArrayLike<number>): void {
    checkRange("hr", this.holdingRegisters.length, addr, words.length);
    for (let i = 0; i < words.length; i++) this.holdingRegisters[addr + i] = words[i]! & 0xffff;
    this.emitWrite("hr", addr, words.length);
  }

  private emitWrite(area: "coil" | "hr", addr: number, count: number): void {
    for (const l of this.writeListeners) l(area, addr, count);
  }

  private set32(area: RegisterArea, addr: number, abcd: Buffer, order: WordOrder): void {
    const o = reorder(abcd, order);
    this.setRegisters(area, addr, [o.readUInt16BE(0), o.readUInt16BE(2)]);
  }

  private get32(area: RegisterArea, addr: number, order: WordOrder): Buffer {
    const [w0, w1] = this.getRegisters(area, addr, 2);
    const b = Buffer.alloc(4);
    b.writeUInt16BE(w0!, 0);
    b.writeUInt16BE(w1!, 2);
    return reorder(b, order); // each order is its own inverse
  }
}

/** Bytes ABCD (big-endian) rearranged into `order`; applying it twice is the identity. */
function reorder(b: Buffer, order: WordOrder): Buffer {
  const [A, B, C, D] = [b[0]!, b[1]!, b[2]!, b[3]!];
  switch (order) {
    case "ABCD":
      return Buffer.from([A, B, C, D]);
    case "CDAB":
      return Buffer.from([C, D, A, B]);
    case "BADC":
      return Buffer.from([B, A, D, C]);
    case "DCBA":
      return Buffer.from([D, C, B, A]);
  }
}

function checkRange(area: Area, size: number, addr: number, count: number): void {
  if (!Number.isInteger(addr) || !Number.isInteger(count) || addr < 0 || count < 0 || addr + count > size) {
    throw new CellioError("CELLIO_ERR_SIM", `address ${area}:${addr} (+${count}) is outside the bank (size ${size})`, {
      area,
      address: addr,
      count,
    });
  }
}
