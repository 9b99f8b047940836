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
 * Writes: plan-writes.ts (re-exported here).
 */
import type { Value } from "../../core/sample.js";
import type { ErrorCode } from "../../infra/errors.js";
import { formatAddress, type AddressBase, type ModbusAddress, type ModbusArea } from "./address.js";
import { decodeRegisters, type RegisterWords } from "./codec.js";

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

/** @internal Shared with plan-writes.ts. */
export function checkLimit(errors: PlanError[], what: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer ${min}..${max}`;
    errors.push({ index: null, message: `${what} must be ${range}, got ${v}` });
  }
}

export { planWrites, type RmwChange, type WriteChange, type WriteOptions, type WritePlan, type WriteRequest } from "./plan-writes.js";
