/**
 * Modbus device driver (TCP, and RTU units on a shared bus): the points and
 * read plan compiled at construction, and their execution (reads, writes,
 * counters). Its lifecycle (connect, arm the watchdog, reconnect with backoff
 * and jitter, stop) and fault policy are its base class (lifecycle.ts).
 *
 * The constructor only compiles; start() connects in the background (a dead
 * device never blocks start-up); read()/write() run the plan on the current
 * connection, one request at a time, each with its own timeout. Requests go
 * through the device's DeviceRequester (busy retries, counters); writes
 * through its OutputWriter (coalescing, register bits, read-back).
 */
import { Observable } from "rxjs";
import type { Logger } from "../../infra/logger.js";
import type { Clock } from "../../infra/clock.js";
import { CellioError, errorMessage } from "../../infra/errors.js";
import type { PointDef } from "../../core/points.js";
import type { Value } from "../../core/sample.js";
import { toEngineering } from "../../core/scaling.js";
import type { DeviceDriver, DirectReadPort, OutputChange, ReadOutcome, SampleSink, WriteOutcome } from "../../loop/device-port.js";
import type { ModbusDeviceConfig } from "./rtu-config.js";
import { parseAddress } from "./address.js";
import { decodeResponse, planReads, type ReadRequest } from "./plan.js";
import type { ModbusTransport } from "./transport.js";
import { ModbusTcpTransport } from "./transport-tcp.js";
import { DeviceRequester, snapshotStats, type ModbusDeviceStats } from "./requester.js";
import { OutputWriter, type CompiledPoint } from "./writer.js";
import { compileWatchdog, type CompiledWatchdog } from "./watchdog.js";
import { PipelinedPoll, SequentialPoll } from "./poll.js";
import { ModbusDeviceLifecycle, statusOf } from "./lifecycle.js";

export { statusOf } from "./lifecycle.js";

function noBusTransport(name: string): never {
  throw new CellioError("CELLIO_ERR_CONFIG", `${name}: a modbus-rtu device needs the transport of its serial bus`);
}

const STOPPED: Extract<ReadOutcome, { ok: false }> = Object.freeze({ ok: false, status: "bad_no_communication", error: "driver stopped" });

export class ModbusTcpDriver extends ModbusDeviceLifecycle implements DeviceDriver, DirectReadPort {
  private readonly byIndex = new Map<number, CompiledPoint>();
  private readonly requests: readonly ReadRequest[];
  protected override readonly transport: ModbusTransport;
  protected override readonly req: DeviceRequester;
  private readonly writer: OutputWriter;
  protected override readonly watchdog: CompiledWatchdog | undefined;
  private readonly putBound: (index: number, raw: Value) => void;
  /** Requests of one poll sent together (TCP, MBAP, max_in_flight > 1). */
  private readonly pipelined: boolean;
  private sink: SampleSink | undefined;
  private ts = 0;
  /** The read plan as a poll on callbacks (readDirect): sequential, or pipelined with max_in_flight > 1. */
  private readonly poll: SequentialPoll | PipelinedPoll;

  constructor(
    name: string,
    cfg: ModbusDeviceConfig,
    points: readonly PointDef[],
    private readonly clock: Clock,
    log: Logger,
    transport?: ModbusTransport,
  ) {
    super(name, cfg, log);
    for (const def of points) {
      const parsed = parseAddress(def.address, cfg.address_base);
      if (!parsed.ok) throw new CellioError("CELLIO_ERR_CONFIG", `${def.id}: ${parsed.error}`);
      this.byIndex.set(def.index, { def, address: parsed.address, verify: cfg.points[def.name]?.verify === true });
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
    if (cfg.watchdog) {
      const wd = compileWatchdog(cfg.watchdog, cfg.address_base);
      if (typeof wd === "string") throw new CellioError("CELLIO_ERR_CONFIG", `${name}.watchdog: ${wd}`);
      this.watchdog = wd;
    }
    // A modbus-rtu device runs on its bus (transport-rtu.ts), a shared TCP connection on its
    // connection (tcp-connection.ts): the caller passes that transport.
    this.transport =
      transport ??
      (cfg.protocol === "modbus-tcp"
        ? new ModbusTcpTransport({ host: cfg.host, port: cfg.port, framing: cfg.framing, maxInFlight: cfg.max_in_flight, connectTimeoutMs: Math.max(cfg.timeout_ms, 1000) })
        : noBusTransport(name));
    this.transport.onClose(() => this.onDisconnected("connection closed"));
    this.req = new DeviceRequester(this.transport, {
      unit: cfg.unit_id,
      timeoutMs: cfg.timeout_ms,
      busyRetries: cfg.busy_retry.retries,
      busyPauseMs: cfg.busy_retry.pause_ms,
    });
    this.writer = new OutputWriter(name, cfg, this.byIndex, this.req);
    this.pipelined = cfg.protocol === "modbus-tcp" && cfg.framing === "mbap" && cfg.max_in_flight > 1 && this.requests.length > 1;
    this.putBound = (index, raw) => this.sink!.put(index, this.toEngineering(index, raw), this.ts);
    const hooks = {
      decode: (r: ReadRequest, data: number[] | boolean[], sink: SampleSink) => this.decode(r, data, sink),
      succeeded: () => this.readSucceeded(),
      failed: (e: unknown) => this.readFailed(e),
    };
    this.poll = this.pipelined ? new PipelinedPoll(this.requests, this.req, hooks) : new SequentialPoll(this.requests, this.req, hooks);
  }

  /** The read plan, for diagnostics and `cellio validate --explain`. */
  get plan(): readonly ReadRequest[] {
    return this.requests;
  }

  /** The device's connection (its attachment to the shared socket or bus) is open. */
  get connected(): boolean {
    return this.transport.isOpen;
  }

  /** Reconnects after the first connection. */
  get reconnects(): number {
    return this.req.stats.reconnects;
  }

  /**
   * The device's counters (README "Counters"): requests, errors by kind,
   * exception codes, busy retries, reconnects, watchdog arms, read-back
   * failures, and the request latency histogram. A snapshot of plain
   * numbers, except `latency`, which is the live histogram (read it only).
   */
  stats(): ModbusDeviceStats {
    return snapshotStats(this.req.stats);
  }

  /** The transport (its `stats` are the connection's or the bus's, shared by every device on it). */
  get link(): ModbusTransport {
    return this.transport;
  }

  /** The device answered on this connection: the next loss starts the backoff afresh. */
  private connectionProven(): void {
    this.backoffMs = this.cfg.reconnect.min_ms;
    this.answered = true;
  }

  /**
   * Why the plan cannot run now (stopped, or not connected: a reconnect is
   * made sure of); undefined when it can.
   */
  private unavailable(): Extract<ReadOutcome, { ok: false }> | undefined {
    if (this.stopped) return STOPPED;
    if (!this.transport.isOpen) {
      this.ensureReconnecting();
      return { ok: false, status: this.lastConnectStatus, error: this.lastConnectError };
    }
    return undefined;
  }

  /**
   * The loop's read without an Observable (DirectReadPort): the same outcome
   * as `read`, on callbacks (poll.ts).
   */
  readDirect(sink: SampleSink, done: (o: ReadOutcome) => void): void {
    const no = this.unavailable();
    if (no) return done(no);
    if (this.poll.busy) {
      this.readAll(sink).then(done, (e: unknown) => done({ ok: false, status: "bad_device_failure", error: String(e) }));
      return;
    }
    this.poll.start(sink, done);
  }

  read(sink: SampleSink): Observable<ReadOutcome> {
    return new Observable<ReadOutcome>((sub) => {
      this.readAll(sink).then(
        (o) => {
          sub.next(o);
          sub.complete();
        },
        (e: unknown) => sub.error(e),
      );
    });
  }

  private async readAll(sink: SampleSink): Promise<ReadOutcome> {
    const no = this.unavailable();
    if (no) return no;
    try {
      if (this.pipelined) {
        // max_in_flight > 1: the whole plan goes out at once (one TCP segment), answers decoded in order.
        const all = await Promise.all(this.requests.map((r) => this.req.read(r.fc, r.start, r.count)));
        for (let i = 0; i < all.length; i++) this.decode(this.requests[i]!, all[i]!, sink);
      } else {
        for (const r of this.requests) this.decode(r, await this.req.read(r.fc, r.start, r.count), sink);
      }
      return this.readSucceeded();
    } catch (e) {
      return await this.readFailed(e);
    }
  }

  private readSucceeded(): ReadOutcome {
    this.consecutiveTimeouts = 0;
    this.connectionProven();
    return OK;
  }

  private async readFailed(e: unknown): Promise<ReadOutcome> {
    await this.handleError(e);
    return { ok: false, status: statusOf(e), error: errorMessage(e) };
  }

  /** Decodes one answer into `sink` (held only while putBound runs). */
  private decode(r: ReadRequest, data: number[] | boolean[], sink: SampleSink): void {
    this.sink = sink;
    this.ts = this.clock.wall();
    let res: ReturnType<typeof decodeResponse>;
    try {
      res = decodeResponse(r, data, this.putBound);
    } finally {
      this.sink = undefined;
    }
    if (!res.ok) throw new CellioError(res.code, `${this.name}: ${res.error}`);
  }

  private toEngineering(index: number, raw: Value): Value {
    const s = this.byIndex.get(index)?.def.scale;
    return s && typeof raw === "number" ? toEngineering(raw, s) : raw;
  }

  write(changes: readonly OutputChange[]): Observable<WriteOutcome> {
    return new Observable<WriteOutcome>((sub) => {
      this.writeAll(changes).then(
        (o) => {
          sub.next(o);
          sub.complete();
        },
        (e: unknown) => sub.error(e),
      );
    });
  }

  private async writeAll(changes: readonly OutputChange[]): Promise<WriteOutcome> {
    const no = this.unavailable();
    if (no) return { ...no, failed: changes.map((c) => c.index) };
    try {
      const o = await this.writer.write(changes);
      this.connectionProven();
      return o;
    } catch (e) {
      await this.handleError(e);
      return { ok: false, status: statusOf(e), error: errorMessage(e), failed: changes.map((c) => c.index) };
    }
  }
}

const OK: ReadOutcome = Object.freeze({ ok: true });
