/**
 * Modbus TCP device driver: lifecycle (connect, reconnect with backoff and
 * jitter, stop) and execution of the request plan compiled at construction.
 *
 * The constructor only compiles; start() connects in the background (a dead
 * device never blocks start-up); read()/write() run the plan on the current
 * connection, one request at a time, each with its own timeout.
 */
import { defer, from, type Observable } from "rxjs";
import type { Logger } from "../../infra/logger.js";
import type { Clock } from "../../infra/clock.js";
import { CellioError, errorMessage, isCellioError } from "../../infra/errors.js";
import type { PointDef } from "../../core/points.js";
import type { Value } from "../../core/sample.js";
import { toEngineering, toRaw } from "../../core/scaling.js";
import type { DeviceDriver, FailureStatus, OutputChange, ReadOutcome, SampleSink, WriteOutcome } from "../../loop/device-port.js";
import type { ModbusDeviceConfig } from "./rtu-config.js";
import { parseAddress, type ModbusAddress } from "./address.js";
import { decodeResponse, planReads, planWrites, type ReadRequest, type WriteChange } from "./plan.js";
import { applyBit } from "./codec.js";
import type { ModbusTransport } from "./transport.js";
import { ModbusTcpTransport } from "./transport-tcp.js";

/** Consecutive timeouts after which the connection is dropped and re-made. */
const TIMEOUTS_BEFORE_RECONNECT = 3;

export function statusOf(e: unknown): FailureStatus {
  if (isCellioError(e, "CELLIO_ERR_MODBUS_TIMEOUT")) return "bad_timeout";
  if (isCellioError(e, "CELLIO_ERR_MODBUS_CLOSED") || isCellioError(e, "CELLIO_ERR_MODBUS_CONNECT")) return "bad_no_communication";
  return "bad_device_failure";
}

function noBusTransport(name: string): never {
  throw new CellioError("CELLIO_ERR_CONFIG", `${name}: a modbus-rtu device needs the transport of its serial bus`);
}

interface CompiledPoint {
  readonly def: PointDef;
  readonly address: ModbusAddress;
}

export class ModbusTcpDriver implements DeviceDriver {
  private readonly byIndex = new Map<number, CompiledPoint>();
  private readonly requests: readonly ReadRequest[];
  private readonly transport: ModbusTransport;
  private stopped = true;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private backoffMs: number;
  private consecutiveTimeouts = 0;
  private lastConnectError = "not connected yet";
  private connectedOnce = false;
  reconnects = 0;

  constructor(
    readonly name: string,
    private readonly cfg: ModbusDeviceConfig,
    points: readonly PointDef[],
    private readonly clock: Clock,
    private readonly log: Logger,
    transport?: ModbusTransport,
  ) {
    for (const def of points) {
      const parsed = parseAddress(def.address, cfg.address_base);
      if (!parsed.ok) throw new CellioError("CELLIO_ERR_CONFIG", `${def.id}: ${parsed.error}`);
      this.byIndex.set(def.index, { def, address: parsed.address });
    }
    const w = cfg.workarounds;
    const plan = planReads(
      points.filter((p) => p.direction === "input").map((p) => ({ index: p.index, address: this.byIndex.get(p.index)!.address })),
      {
        maxGapRegisters: cfg.max_gap.registers,
        maxGapBits: cfg.max_gap.bits,
        maxRegistersPerRead: w.max_registers_per_read,
        maxBitsPerRead: w.max_bits_per_read,
        onePerPoint: w.one_request_per_point,
        addressBase: cfg.address_base,
      },
    );
    if (!plan.ok) throw new CellioError("CELLIO_ERR_CONFIG", `${name}: ${plan.errors.map((e) => e.message).join("; ")}`);
    this.requests = plan.requests;
    this.backoffMs = cfg.reconnect.min_ms;
    // A modbus-rtu device runs on its bus (transport-rtu.ts): the caller passes that transport.
    this.transport = transport ?? (cfg.protocol === "modbus-tcp" ? new ModbusTcpTransport(cfg.host, cfg.port, Math.max(cfg.timeout_ms, 1000)) : noBusTransport(name));
    this.transport.onClose(() => this.onDisconnected("connection closed"));
  }

  /** The read plan, for diagnostics and `cellio validate --explain`. */
  get plan(): readonly ReadRequest[] {
    return this.requests;
  }

  start(): Promise<void> {
    this.stopped = false;
    void this.connect();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    await this.transport.close();
  }

  private connect(): Promise<void> {
    if (this.stopped || this.transport.isOpen) return Promise.resolve();
    this.connecting ??= (async () => {
      try {
        await this.transport.connect();
        if (this.cfg.workarounds.pause_after_connect_ms > 0) {
          await new Promise((r) => setTimeout(r, this.cfg.workarounds.pause_after_connect_ms));
        }
        // The backoff is reset only when the device answers (connectionProven), not here: a
        // server that accepts and at once closes (a gateway out of connection slots) would
        // otherwise be hammered at the minimum delay.
        this.consecutiveTimeouts = 0;
        if (this.connectedOnce) this.reconnects++;
        this.connectedOnce = true;
        const where = this.cfg.protocol === "modbus-tcp" ? { host: this.cfg.host, port: this.cfg.port } : { bus: this.cfg.serial.path, unit: this.cfg.unit_id };
        this.log.info(where, "modbus connected");
      } catch (e) {
        const msg = errorMessage(e);
        if (msg !== this.lastConnectError) this.log.warn({ err: msg }, "modbus connect failed; retrying with backoff");
        this.lastConnectError = msg;
        this.scheduleReconnect();
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    // Exponential backoff with full jitter in [backoff/2, backoff].
    const delay = this.backoffMs / 2 + Math.random() * (this.backoffMs / 2);
    this.backoffMs = Math.min(this.cfg.reconnect.max_ms, this.backoffMs * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  /**
   * Not connected: make sure a reconnect is pending. A transport may lose a
   * close notification (modbus-serial does not emit "close" when the socket
   * errored first, e.g. ECONNRESET), and nothing else would ever reconnect.
   */
  private ensureReconnecting(): void {
    if (!this.stopped && !this.connecting && !this.reconnectTimer) this.scheduleReconnect();
  }

  /** The device answered on this connection: the next loss starts the backoff afresh. */
  private connectionProven(): void {
    this.backoffMs = this.cfg.reconnect.min_ms;
  }

  private onDisconnected(why: string): void {
    if (this.stopped) return;
    this.lastConnectError = why;
    this.scheduleReconnect();
  }

  private async dropConnection(why: string): Promise<void> {
    this.lastConnectError = why;
    await this.transport.close();
    this.scheduleReconnect();
  }

  private async handleError(e: unknown): Promise<void> {
    if (isCellioError(e, "CELLIO_ERR_MODBUS_TIMEOUT")) {
      this.consecutiveTimeouts++;
      if (this.consecutiveTimeouts >= TIMEOUTS_BEFORE_RECONNECT) await this.dropConnection(errorMessage(e));
      return;
    }
    if (isCellioError(e, "CELLIO_ERR_MODBUS_EXCEPTION")) return; // the device answered: the connection is fine
    await this.dropConnection(errorMessage(e));
  }

  read(sink: SampleSink): Observable<ReadOutcome> {
    return defer(() => from(this.readAll(sink)));
  }

  private async readAll(sink: SampleSink): Promise<ReadOutcome> {
    if (this.stopped) return { ok: false, status: "bad_no_communication", error: "driver stopped" };
    if (!this.transport.isOpen) {
      this.ensureReconnecting();
      return { ok: false, status: "bad_no_communication", error: this.lastConnectError };
    }
    try {
      for (const req of this.requests) {
        const data = await this.transport.read(this.cfg.unit_id, req.fc, req.start, req.count, this.cfg.timeout_ms);
        const ts = this.clock.wall();
        const res = decodeResponse(req, data, (index, raw) => sink.put(index, this.toEngineering(index, raw), ts));
        if (!res.ok) throw new CellioError(res.code, `${this.name}: ${res.error}`);
      }
      this.consecutiveTimeouts = 0;
      this.connectionProven();
      return { ok: true };
    } catch (e) {
      await this.handleError(e);
      return { ok: false, status: statusOf(e), error: errorMessage(e) };
    }
  }

  private toEngineering(index: number, raw: Value): Value {
    const s = this.byIndex.get(index)?.def.scale;
    return s && typeof raw === "number" ? toEngineering(raw, s) : raw;
  }

  write(changes: readonly OutputChange[]): Observable<WriteOutcome> {
    return defer(() => from(this.writeAll(changes)));
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
      let value = c.value;
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

  private async writeAll(changes: readonly OutputChange[]): Promise<WriteOutcome> {
    const all = changes.map((c) => c.index);
    if (this.stopped || !this.transport.isOpen) {
      this.ensureReconnecting();
      return { ok: false, status: "bad_no_communication", error: this.stopped ? "driver stopped" : this.lastConnectError, failed: all };
    }
    const converted = this.toWireChanges(changes);
    const errors = [...converted.errors];
    let { wire, indices } = converted;
    const planOptions = {
      maxRegistersPerWrite: this.cfg.workarounds.max_registers_per_write,
      maxBitsPerWrite: this.cfg.workarounds.max_bits_per_write,
      onePerPoint: this.cfg.workarounds.one_request_per_point,
      preferSingle: this.cfg.workarounds.single_writes,
      addressBase: this.cfg.address_base,
    };
    let plan = planWrites(wire, planOptions);
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
      plan = planWrites(wire, planOptions);
      if (!plan.ok) {
        const msgs = [...errors, ...plan.errors.map((e) => e.message)];
        return { ok: false, status: "bad_config_error", error: `${this.name}: ${msgs.join("; ")}`, failed: all };
      }
    }
    const refused = all.filter((i) => !indices.includes(i));
    const unit = this.cfg.unit_id;
    const timeout = this.cfg.timeout_ms;
    try {
      for (const req of plan.requests) await this.transport.write(unit, req.fc, req.start, req.values, timeout);
      // Register bits: one read-modify-write per register, all its bits at once.
      const byRegister = new Map<number, { address: ModbusAddress; value: boolean }[]>();
      for (const r of plan.rmw) {
        const list = byRegister.get(r.address.offset) ?? [];
        list.push({ address: r.address, value: r.value });
        byRegister.set(r.address.offset, list);
      }
      for (const [offset, bits] of byRegister) {
        const [word] = (await this.transport.read(unit, 3, offset, 1, timeout)) as number[];
        let next = word ?? 0;
        for (const b of bits) next = applyBit(next, b.address.bit ?? 0, b.value);
        if (next !== word) await this.transport.write(unit, 6, offset, [next], timeout);
      }
      this.connectionProven();
      if (refused.length > 0) return { ok: false, status: "bad_config_error", error: `${this.name}: ${errors.join("; ")}`, failed: refused };
      return { ok: true };
    } catch (e) {
      await this.handleError(e);
      return { ok: false, status: statusOf(e), error: errorMessage(e), failed: all };
    }
  }
}
