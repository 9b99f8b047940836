/**
 * MotomanSim: the YRC1000 model (`RobotModel`) behind a Modbus register
 * window, on the real clock (or without a Modbus server, `modbus: false`,
 * for a robot that is reached over its OPC UA face only).
 *
 * The window is the default M-register map of `src/profiles/motoman-yrc1000-map.ts`
 * at `base`: the command block is the one place the cell's commands live. A
 * client write that touches it is decoded at once into the model's input
 * levels; `setCommands()` (the OPC UA face, tests) writes the same registers,
 * so both faces see the same commands. A timer ticks the model every `tickMs`
 * (it scans the inputs as a controller's I/O scan does) and encodes the status
 * block after every tick and after every operator or fault action.
 */
import type { MotomanCommands } from "../../src/profiles/motoman-yrc1000.js";
import { decodeCommandRegisters, encodeCommandRegisters, encodeStatusRegisters } from "../../src/profiles/motoman-yrc1000-codec.js";
import { MOTOMAN_COMMAND_BLOCK, MOTOMAN_WINDOW_LENGTH, motomanPoints } from "../../src/profiles/motoman-yrc1000-map.js";
import { CellioError } from "../../src/infra/errors.js";
import { RegisterBank } from "../modbus/bank.js";
import type { FaultInjector } from "../modbus/faults.js";
import { ModbusTcpSimServer } from "../modbus/tcp-server.js";
import { defaultJobs, type JobDef } from "./jobs.js";
import { RobotModel, type EstopSource, type RobotMode, type RobotModelOptions, type RobotStatus } from "./model.js";

/**
 * How the Modbus link fails: `silent` = requests are dropped unanswered and
 * connections stay open (cable pulled); `refuse` = every connection is closed
 * and new ones are refused (the controller's Modbus server went away).
 */
export type CommDrop = "silent" | "refuse";

export interface MotomanSimOptions {
  /** First holding register (= M register) of the window; default 0. */
  readonly base?: number;
  /** The bank to serve from; default a new full-size bank. */
  readonly bank?: RegisterBank;
  /**
   * A server that already serves `bank` and that someone else starts and
   * stops (the runner, several units on one endpoint). Without it MotomanSim
   * owns a server of its own on 127.0.0.1:`port`.
   */
  readonly server?: ModbusTcpSimServer;
  /** Port of the own server (0 = ephemeral, the default); with `server`, the port it listens on. */
  readonly port?: number;
  /**
   * false: no Modbus server at all (the window still lives in `bank`: the
   * OPC UA face's commands go through it); comm faults then throw. Default true.
   */
  readonly modbus?: boolean;
  /** Unit id the faults are scoped to on a shared server (default: the whole server). */
  readonly unitId?: number;
  /** Jobs of the robot (default `defaultJobs()`). */
  readonly jobs?: readonly JobDef[];
  /** The rest of the model's options (axes, initial state, echo delay, pulse length). */
  readonly model?: Omit<RobotModelOptions, "jobs">;
  /** Tick period, ms (default 5). */
  readonly tickMs?: number;
  /** Monotonic clock in ms (default `performance.now`). */
  readonly now?: () => number;
}

/** Called after every tick and every operator or fault action, with the new status. */
export type StatusListener = (status: RobotStatus, commands: MotomanCommands) => void;

export class MotomanSim {
  readonly model: RobotModel;
  readonly bank: RegisterBank;
  readonly base: number;
  readonly tickMs: number;
  private readonly jobNames: ReadonlyMap<number, string>;
  private readonly server: ModbusTcpSimServer | undefined;
  private readonly ownsServer: boolean;
  private readonly unitId: number | undefined;
  private readonly now: () => number;
  private readonly listeners = new Set<StatusListener>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribeWrites: (() => void) | undefined;
  private boundPort: number;
  private drop: CommDrop | undefined;

  constructor(opts: MotomanSimOptions = {}) {
    this.base = opts.base ?? 0;
    motomanPoints(this.base); // throws RangeError when the window leaves M000–M559 / M000–M999
    this.tickMs = opts.tickMs ?? 5;
    if (!(this.tickMs >= 1)) throw new RangeError("tickMs must be at least 1");
    const jobs = opts.jobs ?? defaultJobs(opts.model?.axes);
    this.model = new RobotModel({ ...opts.model, jobs });
    this.jobNames = new Map(jobs.map((j) => [j.number, j.name]));
    this.bank = opts.bank ?? new RegisterBank();
    const end = this.base + MOTOMAN_WINDOW_LENGTH;
    if (this.bank.holdingRegisters.length < end) {
      throw new CellioError("CELLIO_ERR_SIM", `register bank has ${this.bank.holdingRegisters.length} holding registers; the robot window needs ${end}`);
    }
    if (opts.modbus === false && (opts.server !== undefined || opts.port !== undefined)) {
      throw new CellioError("CELLIO_ERR_SIM", "a Motoman simulator without Modbus (modbus: false) takes no server or port");
    }
    this.ownsServer = opts.server === undefined && opts.modbus !== false;
    this.server = opts.modbus === false ? undefined : (opts.server ?? new ModbusTcpSimServer({ port: opts.port ?? 0, units: this.bank }));
    this.boundPort = opts.port ?? 0;
    this.unitId = opts.unitId;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Start ticking (and the own server); resolves with the port the window is served on. */
  async start(): Promise<{ port: number }> {
    if (this.timer) throw new CellioError("CELLIO_ERR_SIM", "Motoman simulator already started");
    this.scanCommands();
    this.tickNow();
    this.unsubscribeWrites = this.bank.onWrite((area, addr, count) => {
      const first = this.base + MOTOMAN_COMMAND_BLOCK.offset;
      if (area === "hr" && addr < first + MOTOMAN_COMMAND_BLOCK.length && addr + count > first) this.scanCommands();
    });
    this.timer = setInterval(() => this.tickNow(), this.tickMs);
    this.timer.unref(); // the server (or the caller) keeps the process alive, not the robot's clock
    if (this.ownsServer && this.server) {
      try {
        this.boundPort = (await this.server.start()).port;
      } catch (e) {
        this.halt();
        throw e;
      }
    }
    return { port: this.boundPort };
  }

  async stop(): Promise<void> {
    this.halt();
    if (this.ownsServer) await this.server?.stop();
  }

  /** The Modbus port (0 without Modbus). */
  get port(): number {
    return this.boundPort;
  }

  /** Whether the window is served over Modbus TCP (false: `modbus: false`). */
  get servesModbus(): boolean {
    return this.server !== undefined;
  }

  /** The Modbus server's fault injector (shared with other units on a shared server); throws without Modbus. */
  get faults(): FaultInjector {
    return this.modbusServer().faults;
  }

  get status(): RobotStatus {
    return this.model.status;
  }

  /** The command block as it stands (what the model will scan at the next tick). */
  get commands(): MotomanCommands {
    return decodeCommandRegisters(this.window(0, MOTOMAN_COMMAND_BLOCK.length));
  }

  /** Name of job `n` ("" when there is none). */
  jobName(n: number): string {
    return this.jobNames.get(n) ?? "";
  }

  /** Subscribe to status updates; returns the unsubscribe function. */
  onStatus(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Set some commands, as if a client had written them: the command registers
   * change (a Modbus client reads them back) and the model latches the levels;
   * they take effect at the next tick, like any input.
   */
  setCommands(next: Partial<MotomanCommands>): void {
    const merged = { ...this.commands, ...next };
    this.model.setInputs(merged); // validates (job number, watchdog range) before the registers change
    for (const [offset, word] of encodeCommandRegisters(merged)) this.bank.holdingRegisters[this.base + offset] = word;
  }

  /** Advance the model to now, encode the status block, tell the listeners. */
  tickNow(): void {
    this.model.tick(this.now());
    this.publish();
  }

  // --- operator and fault actions (act at once, as on the controller) ------

  pressEstop(which: EstopSource = "external"): void {
    this.act(() => this.model.pressEstop(which));
  }

  releaseEstop(which: EstopSource = "external"): void {
    this.act(() => this.model.releaseEstop(which));
  }

  raiseAlarm(code: number, opts: { major?: boolean; resettable?: boolean } = {}): void {
    this.act(() => this.model.raiseAlarm(code, { major: opts.major ?? false, resettable: opts.resettable ?? true }));
  }

  clearAlarm(code: number): void {
    this.act(() => this.model.clearAlarm(code));
  }

  setMode(mode: RobotMode): void {
    this.act(() => this.model.setMode(mode));
  }

  setRemote(on: boolean): void {
    this.act(() => this.model.setRemote(on));
  }

  setSpeedOverride(pct: number): void {
    this.act(() => this.model.setSpeedOverride(pct));
  }

  setContinuousCycle(on: boolean): void {
    this.act(() => this.model.setContinuousCycle(on));
  }

  setEnergySaving(on: boolean): void {
    this.act(() => this.model.setEnergySaving(on));
  }

  // --- communication faults ---------------------------------------------------

  /** Break the Modbus link (see `CommDrop`); the robot itself keeps running. */
  dropComms(kind: CommDrop = "silent"): void {
    const faults = this.faults;
    this.restoreComms();
    this.drop = kind;
    if (kind === "silent") {
      faults.set({ kind: "noAnswer" }, { unit: this.unitId });
    } else {
      // Connections are per server, not per unit: on a shared server this hits every unit.
      faults.set({ kind: "refuseConnections" });
      faults.disconnect();
    }
  }

  restoreComms(): void {
    if (this.drop === "silent") this.faults.clear({ unit: this.unitId, kind: "noAnswer" });
    if (this.drop === "refuse") this.faults.clear({ kind: "refuseConnections" });
    this.drop = undefined;
  }

  get commsDropped(): CommDrop | undefined {
    return this.drop;
  }

  /** Answer every request `ms` (+ up to `jitterMs`) late; 0 removes the latency. */
  setLatency(ms: number, jitterMs = 0): void {
    const faults = this.faults;
    if (ms === 0 && jitterMs === 0) {
      faults.clear({ unit: this.unitId, kind: "latency" });
      return;
    }
    faults.set({ kind: "latency", ms, jitterMs }, { unit: this.unitId });
  }

  // --- internals ---------------------------------------------------------------

  private modbusServer(): ModbusTcpSimServer {
    if (this.server === undefined) throw new CellioError("CELLIO_ERR_SIM", "this Motoman simulator has no Modbus server (modbus: false): Modbus comm faults do not apply");
    return this.server;
  }

  private act(fn: () => void): void {
    fn();
    this.publish();
  }

  private publish(): void {
    const status = this.model.status;
    for (const [offset, word] of encodeStatusRegisters(status)) this.bank.holdingRegisters[this.base + offset] = word;
    if (this.listeners.size === 0) return;
    const commands = this.commands;
    for (const l of this.listeners) l(status, commands);
  }

  private scanCommands(): void {
    this.model.setInputs(this.commands);
  }

  private window(offset: number, length: number): Uint16Array {
    const from = this.base + offset;
    return this.bank.holdingRegisters.subarray(from, from + length);
  }

  private halt(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribeWrites?.();
    this.unsubscribeWrites = undefined;
  }
}
