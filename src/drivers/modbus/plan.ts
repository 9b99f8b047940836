/**
 * A device's points compiled into the fewest Modbus requests (once, at load),
 * the decoding of each response into point values (every cycle), and the
 * coalescing of output changes into write requests. Pure.
 *
 * Reads: points are grouped by function code (coil FC1, di FC2, hr FC3,
 * ir FC4), sorted by offset and joined while the hole between them is at most
 * the max gap and the request stays within the size limit. Overlapping points
 * (hr:5.0, hr:5.3, hr:5:uint16) share registers; a multi-word point never
 * straddles two requests. Requests come out ordered by fc, then start.
 */
import type { Value } from "../../core/sample.js";
import type { ErrorCode } from "../../infra/errors.js";
import { formatAddress, isWritable, type AddressBase, type ModbusAddress, type ModbusArea } from "./address.js";
import { decodeRegisters, encodeValue, type RegisterWords } from "./codec.js";

/** Protocol limits (Modbus Application Protocol v1.1b3, FC1–4, FC15, FC16). */
export const MAX_REGISTERS_PER_READ = 125;
export const MAX_BITS_PER_READ = 2000;
export const MAX_REGISTERS_PER_WRITE = 123;
export const MAX_BITS_PER_WRITE = 1968;

export type ReadFc = 1 | 2 | 3 | 4;
export type WriteFc = 5 | 6 | 15 | 16;

export interface PlanPoint {
  /** The caller's point index: it comes back in errors and in `decodeResponse`. */
  readonly index: number;
  readonly address: ModbusAddress;
}

export interface PlanOptions {
  readonly maxGapRegisters: number;
  readonly maxGapBits: number;
  readonly maxRegistersPerRead: number;
  readonly maxBitsPerRead: number;
  /** Workaround: every point (every distinct span) gets its own request. */
  readonly onePerPoint: boolean;
  /** Numbering used for addresses quoted in error texts (default 0). */
  readonly addressBase?: AddressBase;
}

export interface ReadItem {
  readonly index: number;
  /** Word (FC3/4) or bit (FC1/2) index inside the response. */
  readonly at: number;
  readonly address: ModbusAddress;
}

export interface ReadRequest {
  readonly fc: ReadFc;
  readonly start: number;
  readonly count: number;
  readonly items: readonly ReadItem[];
}

export interface PlanError {
  /** The point (reads) or change (writes) index, or null for a bad option. */
  readonly index: number | null;
  readonly message: string;
}

export type ReadPlan = { ok: true; requests: ReadRequest[] } | { ok: false; errors: PlanError[] };

export type DecodeResult = { readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly error: string };

const DECODE_OK: DecodeResult = Object.freeze({ ok: true });

export function readFc(area: ModbusArea): ReadFc {
  switch (area) {
    case "coil":
      return 1;
    case "di":
      return 2;
    case "hr":
      return 3;
    case "ir":
      return 4;
  }
}

export function planReads(points: readonly PlanPoint[], opts: PlanOptions): ReadPlan {
  const errors: PlanError[] = [];
  checkLimit(errors, "max_registers_per_read", opts.maxRegistersPerRead, 1, MAX_REGISTERS_PER_READ);
  checkLimit(errors, "max_bits_per_read", opts.maxBitsPerRead, 1, MAX_BITS_PER_READ);
  checkLimit(errors, "max_gap.registers", opts.maxGapRegisters, 0, Number.MAX_SAFE_INTEGER);
  checkLimit(errors, "max_gap.bits", opts.maxGapBits, 0, Number.MAX_SAFE_INTEGER);
  if (errors.length > 0) return { ok: false, errors };

  const sorted = points
    .map((p) => ({ p, fc: readFc(p.address.area) }))
    .sort((x, y) => x.fc - y.fc || x.p.address.offset - y.p.address.offset || x.p.address.words - y.p.address.words || x.p.index - y.p.index);

  const requests: ReadRequest[] = [];
  let cur: { fc: ReadFc; start: number; end: number; items: ReadItem[] } | undefined;
  for (const { p, fc } of sorted) {
    const a = p.address;
    const bits = fc <= 2;
    const limit = bits ? opts.maxBitsPerRead : opts.maxRegistersPerRead;
    const gap = bits ? opts.maxGapBits : opts.maxGapRegisters;
    const end = a.offset + a.words - 1;
    if (a.words > limit) {
      const what = `${a.words} registers, more than max_registers_per_read ${limit}`;
      errors.push({ index: p.index, message: `point ${p.index} (${formatAddress(a, opts.addressBase)}) spans ${what}` });
      continue;
    }
    const joins =
      cur !== undefined &&
      cur.fc === fc &&
      (opts.onePerPoint
        ? a.offset === cur.start && end === cur.end
        : a.offset - cur.end - 1 <= gap && Math.max(cur.end, end) - cur.start + 1 <= limit);
    if (cur !== undefined && joins) {
      cur.end = Math.max(cur.end, end);
      cur.items.push({ index: p.index, at: a.offset - cur.start, address: a });
    } else {
      if (cur !== undefined) requests.push({ fc: cur.fc, start: cur.start, count: cur.end - cur.start + 1, items: cur.items });
      cur = { fc, start: a.offset, end, items: [{ index: p.index, at: 0, address: a }] };
    }
  }
  if (cur !== undefined) requests.push({ fc: cur.fc, start: cur.start, count: cur.end - cur.start + 1, items: cur.items });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, requests };
}

/**
 * Decode one response and hand every item's value to `out`. A response of
 * the wrong length or kind is reported as an error value, and then nothing is
 * emitted. Bit responses may carry padding up to the next whole byte (as
 * Modbus frames bits in bytes); register responses must match exactly.
 */
export function decodeResponse(
  req: ReadRequest,
  data: RegisterWords | readonly boolean[],
  out: (index: number, value: Value) => void,
): DecodeResult {
  const n = data.length;
  const bits = req.fc <= 2;
  const unit = bits ? "bits" : "registers";
  const max = bits ? Math.ceil(req.count / 8) * 8 : req.count;
  if (n < req.count || n > max) {
    const kind = n < req.count ? "short" : "long";
    return frameError(req, `${kind} response: ${n} ${unit}, expected ${req.count}`);
  }
  if (n > 0 && typeof data[0] !== (bits ? "boolean" : "number")) {
    return frameError(req, `response holds ${typeof data[0]} values, expected ${bits ? "booleans" : "register numbers"}`);
  }
  const items = req.items;
  if (bits) {
    // Checked above: a bit response holds booleans.
    const b = data as readonly boolean[];
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      out(it.index, b[it.at] === true);
    }
  } else {
    // Checked above: a register response holds numbers.
    const w = data as RegisterWords;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      out(it.index, decodeRegisters(it.address, w, it.at));
    }
  }
  return DECODE_OK;
}

function frameError(req: ReadRequest, why: string): DecodeResult {
  return { ok: false, code: "CELLIO_ERR_MODBUS_FRAME", error: `FC${req.fc} start ${req.start} count ${req.count}: ${why}` };
}

// ---------------------------------------------------------------- writes

export interface WriteChange {
  readonly address: ModbusAddress;
  readonly value: Value;
}

export interface WriteOptions {
  readonly maxRegistersPerWrite: number;
  readonly maxBitsPerWrite: number;
  readonly onePerPoint: boolean;
  /** Use FC05/FC06 for a lone coil/register instead of FC15/FC16. */
  readonly preferSingle: boolean;
  readonly addressBase?: AddressBase;
}

export interface WriteRequest {
  readonly fc: WriteFc;
  readonly start: number;
  /** Booleans for FC5/FC15, register words for FC6/FC16. */
  readonly values: number[] | boolean[];
  /** Indexes of the changes this request carries. */
  readonly changes: number[];
}

/** A register-bit write (hr:N.B): the caller reads the register, applies `applyBit`, writes it back. */
export interface RmwChange {
  readonly index: number;
  readonly address: ModbusAddress;
  readonly value: boolean;
}

export type WritePlan = { ok: true; requests: WriteRequest[]; rmw: RmwChange[] } | { ok: false; errors: PlanError[] };

interface Encoded<T> {
  readonly index: number;
  readonly offset: number;
  readonly end: number;
  readonly values: readonly T[];
}

/**
 * Coalesce output changes into write requests: contiguous coils into FC15,
 * contiguous registers into FC16, a lone coil/register into FC05/FC06 when
 * `preferSingle`. Requests are ordered coils first, then registers, each by
 * address: a handshake that needs an order (value, then strobe) must span
 * cycles. Two changes that write the same coil or register are an error.
 */
export function planWrites(changes: readonly WriteChange[], opts: WriteOptions): WritePlan {
  const errors: PlanError[] = [];
  checkLimit(errors, "max_registers_per_write", opts.maxRegistersPerWrite, 1, MAX_REGISTERS_PER_WRITE);
  checkLimit(errors, "max_bits_per_write", opts.maxBitsPerWrite, 1, MAX_BITS_PER_WRITE);
  if (errors.length > 0) return { ok: false, errors };

  const coils: Encoded<boolean>[] = [];
  const regs: Encoded<number>[] = [];
  const rmw: RmwChange[] = [];
  const name = (i: number, a: ModbusAddress): string => `change ${i} (${formatAddress(a, opts.addressBase)})`;
  changes.forEach((c, index) => {
    const a = c.address;
    if (!isWritable(a.area)) {
      errors.push({ index, message: `${name(index, a)}: ${a.area} is read-only` });
    } else if (a.bit !== undefined) {
      if (typeof c.value === "boolean") rmw.push({ index, address: a, value: c.value });
      else errors.push({ index, message: `${name(index, a)}: expected a boolean, got ${typeof c.value}` });
    } else {
      const r = encodeValue(a, c.value);
      if (!r.ok) errors.push({ index, message: `${name(index, a)}: ${r.error}` });
      else if ("bit" in r) coils.push({ index, offset: a.offset, end: a.offset, values: [r.bit] });
      else if (r.words.length > opts.maxRegistersPerWrite) {
        const why = `${r.words.length} registers, more than max_registers_per_write ${opts.maxRegistersPerWrite}`;
        errors.push({ index, message: `${name(index, a)}: ${why}` });
      } else regs.push({ index, offset: a.offset, end: a.offset + r.words.length - 1, values: r.words });
    }
  });

  const byOffset = (x: Encoded<unknown>, y: Encoded<unknown>): number => x.offset - y.offset || x.index - y.index;
  coils.sort(byOffset);
  regs.sort(byOffset);
  checkOverlaps(coils, "coil", errors, changes, opts.addressBase);
  checkOverlaps(regs, "register", errors, changes, opts.addressBase);
  for (let i = 0; i < rmw.length; i++) {
    const r = rmw[i]!;
    const whole = regs.find((e) => e.offset <= r.address.offset && r.address.offset <= e.end);
    const twin = rmw.find((o, j) => j < i && o.address.offset === r.address.offset && o.address.bit === r.address.bit);
    const other = whole?.index ?? twin?.index;
    if (other !== undefined) {
      const reg = r.address.offset + (opts.addressBase ?? 0);
      errors.push({ index: r.index, message: `${name(r.index, r.address)} and change ${other} both write register ${reg}` });
    }
  }
  if (errors.length > 0) return { ok: false, errors: errors.sort((x, y) => (x.index ?? -1) - (y.index ?? -1)) };

  const requests: WriteRequest[] = [];
  for (const run of coalesce(coils, opts.maxBitsPerWrite, opts.onePerPoint)) {
    const single = run.values.length === 1 && opts.preferSingle;
    requests.push({ fc: single ? 5 : 15, start: run.start, values: run.values, changes: run.changes });
  }
  for (const run of coalesce(regs, opts.maxRegistersPerWrite, opts.onePerPoint)) {
    const single = run.values.length === 1 && opts.preferSingle;
    requests.push({ fc: single ? 6 : 16, start: run.start, values: run.values, changes: run.changes });
  }
  return { ok: true, requests, rmw };
}

function coalesce<T>(
  sorted: readonly Encoded<T>[],
  limit: number,
  onePerPoint: boolean,
): Array<{ start: number; values: T[]; changes: number[] }> {
  const runs: Array<{ start: number; end: number; values: T[]; changes: number[] }> = [];
  for (const e of sorted) {
    const run = runs[runs.length - 1];
    if (run !== undefined && !onePerPoint && e.offset === run.end + 1 && e.end - run.start + 1 <= limit) {
      run.end = e.end;
      run.values.push(...e.values);
      run.changes.push(e.index);
    } else {
      runs.push({ start: e.offset, end: e.end, values: [...e.values], changes: [e.index] });
    }
  }
  return runs;
}

function checkOverlaps<T>(
  sorted: readonly Encoded<T>[],
  what: string,
  errors: PlanError[],
  changes: readonly WriteChange[],
  base: AddressBase | undefined,
): void {
  let reach: Encoded<T> | undefined;
  for (const e of sorted) {
    if (reach !== undefined && e.offset <= reach.end) {
      const addr = formatAddress(changes[e.index]!.address, base);
      errors.push({ index: e.index, message: `change ${e.index} (${addr}) and change ${reach.index} both write ${what} ${e.offset + (base ?? 0)}` });
    }
    if (reach === undefined || e.end > reach.end) reach = e;
  }
}

function checkLimit(errors: PlanError[], what: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer ${min}..${max}`;
    errors.push({ index: null, message: `${what} must be ${range}, got ${v}` });
  }
}
