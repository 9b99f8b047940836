/**
 * A device's output writes: engineering values to raw, the write plan
 * (coalesced FC5/6/15/16), register bits by read-modify-write, and the
 * read-back of `verify: true` points. A value that cannot be written (does
 * not fit its register) is left out and reported; the others are written.
 */
import type { PointDef } from "../../core/points.js";
import type { Value } from "../../core/sample.js";
import { toRaw } from "../../core/scaling.js";
import type { OutputChange, WriteOutcome } from "../../loop/device-port.js";
import { applyBit, encodeValue, registerBit } from "./codec.js";
import type { ModbusAddress } from "./address.js";
import { planWrites, type WriteChange, type WriteOptions } from "./plan.js";
import type { DeviceRequester } from "./requester.js";
import type { ModbusDeviceConfig } from "./rtu-config.js";

export interface CompiledPoint {
  readonly def: PointDef;
  readonly address: ModbusAddress;
  /** Read back after writing and compare (`verify: true`). */
  readonly verify: boolean;
}

export class OutputWriter {
  private readonly planOptions: WriteOptions;
  /** Some output has `verify: true` (otherwise a write reads nothing back). */
  private readonly anyVerify: boolean;

  constructor(
    private readonly name: string,
    private readonly cfg: ModbusDeviceConfig,
    private readonly byIndex: ReadonlyMap<number, CompiledPoint>,
    private readonly req: DeviceRequester,
  ) {
    this.anyVerify = [...byIndex.values()].some((p) => p.verify);
    const w = cfg.workarounds;
    this.planOptions = {
      maxRegistersPerWrite: w.max_registers_per_write,
      maxBitsPerWrite: w.max_bits_per_write,
      onePerPoint: w.one_request_per_point,
      preferSingle: w.single_writes,
      addressBase: cfg.address_base,
    };
  }

  /** Writes `changes`; throws the request error that stopped it (the caller applies the fault policy). */
  async write(changes: readonly OutputChange[]): Promise<WriteOutcome> {
    const all = changes.map((c) => c.index);
    const converted = this.toWireChanges(changes);
    const errors = [...converted.errors];
    let { wire, indices } = converted;
    let plan = planWrites(wire, this.planOptions);
    if (!plan.ok) {
      // Leave out the changes the planner refused (a value that does not fit its
      // register, ...) and write the others: one bad output must not hold back the
      // rest of the device, its safe values included.
      const bad = new Set(plan.errors.flatMap((e) => (e.index === null ? [] : [e.index])));
      errors.push(...plan.errors.map((e) => e.message));
      if (bad.size < plan.errors.length) {
        return { ok: false, status: "bad_config_error", error: `${this.name}: ${errors.join("; ")}`, failed: all };
      }
      wire = wire.filter((_, i) => !bad.has(i));
      indices = indices.filter((_, i) => !bad.has(i));
      plan = planWrites(wire, this.planOptions);
      if (!plan.ok) {
        const msgs = [...errors, ...plan.errors.map((e) => e.message)];
        return { ok: false, status: "bad_config_error", error: `${this.name}: ${msgs.join("; ")}`, failed: all };
      }
    }
    const refused = all.filter((i) => !indices.includes(i));
    for (const r of plan.requests) await this.req.write(r.fc, r.start, r.values);
    await this.writeRegisterBits(plan.rmw);
    const mismatched = this.anyVerify ? await this.verify(wire, indices) : [];
    if (mismatched.length > 0) {
      return { ok: false, status: "bad_device_failure", error: `${this.name}: ${mismatched.map((m) => m.error).join("; ")}`, failed: [...refused, ...mismatched.map((m) => m.index)] };
    }
    if (refused.length > 0) return { ok: false, status: "bad_config_error", error: `${this.name}: ${errors.join("; ")}`, failed: refused };
    return { ok: true };
  }

  /** Register bits: one read-modify-write per register, all its bits at once. */
  private async writeRegisterBits(rmw: readonly { address: ModbusAddress; value: boolean }[]): Promise<void> {
    const byRegister = new Map<number, { address: ModbusAddress; value: boolean }[]>();
    for (const r of rmw) {
      const list = byRegister.get(r.address.offset) ?? [];
      list.push({ address: r.address, value: r.value });
      byRegister.set(r.address.offset, list);
    }
    for (const [offset, bits] of byRegister) {
      const [word] = (await this.req.read(3, offset, 1)) as number[];
      let next = word ?? 0;
      for (const b of bits) next = applyBit(next, b.address.bit ?? 0, b.value);
      if (next !== word) await this.req.write(6, offset, [next]);
    }
  }

  /** Reads back every written `verify: true` point; the ones that differ, with the precise reason. */
  private async verify(wire: readonly WriteChange[], indices: readonly number[]): Promise<{ index: number; error: string }[]> {
    const out: { index: number; error: string }[] = [];
    for (let i = 0; i < wire.length; i++) {
      const p = this.byIndex.get(indices[i]!);
      if (!p?.verify) continue;
      const a = p.address;
      const value = wire[i]!.value;
      const where = `${p.def.id} (${p.def.address})`;
      let got: string | undefined;
      if (a.area === "coil") {
        const [bit] = (await this.req.read(1, a.offset, 1)) as boolean[];
        if (bit !== value) got = String(bit);
      } else if (a.bit !== undefined) {
        const [word] = (await this.req.read(3, a.offset, 1)) as number[];
        const bit = registerBit(word ?? 0, a.bit);
        if (bit !== value) got = String(bit);
      } else {
        const enc = encodeValue(a, value);
        if (!enc.ok || !("words" in enc)) continue; // the planner refused it already
        const words = (await this.req.read(3, a.offset, a.words)) as number[];
        if (words.some((w, k) => w !== enc.words[k])) got = `registers [${words.join(", ")}], expected [${enc.words.join(", ")}]`;
      }
      if (got !== undefined) {
        this.req.stats.verifyFailures++;
        out.push({ index: p.def.index, error: `CELLIO_ERR_MODBUS_VERIFY: ${where}: wrote ${String(value)}, read back ${got}` });
      }
    }
    return out;
  }

  private toWireChanges(changes: readonly OutputChange[]): { wire: WriteChange[]; indices: number[]; errors: string[] } {
    const wire: WriteChange[] = [];
    const indices: number[] = [];
    const errors: string[] = [];
    for (const c of changes) {
      const p = this.byIndex.get(c.index);
      if (!p) {
        errors.push(`point ${c.index} is not on ${this.name}`);
        continue;
      }
      let value: Value = c.value;
      if (p.def.scale && typeof value === "number") {
        const raw = toRaw(value, p.def.scale);
        if (!raw.ok) {
          errors.push(`${p.def.id}: ${raw.error}`);
          continue;
        }
        value = p.address.type === "float32" || p.address.type === "float64" ? raw.raw : Math.round(raw.raw);
      }
      wire.push({ address: p.address, value });
      indices.push(c.index);
    }
    return { wire, indices, errors };
  }
}
