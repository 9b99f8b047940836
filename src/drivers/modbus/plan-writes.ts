/**
 * Output changes coalesced into write requests (pure): contiguous coils into
 * one FC15, contiguous registers into one FC16 (FC5/FC6 for a lone one with
 * `preferSingle`), register bits as read-modify-write changes.
 */
import type { Value } from "../../core/sample.js";
import { formatAddress, isWritable, type AddressBase, type ModbusAddress } from "./address.js";
import { encodeValue } from "./codec.js";
import { MAX_BITS_PER_WRITE, MAX_REGISTERS_PER_WRITE, checkLimit, type PlanError, type WriteFc } from "./plan.js";

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

