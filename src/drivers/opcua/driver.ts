/**
 * OPC UA client device driver: the thin part the cell always loads. The
 * constructor compiles the plan (pure); start() imports the node-opcua side
 * (link.ts) on demand, so a cell without OPC UA devices never loads it, and
 * returns without waiting for the server (a dead server never blocks
 * start-up). read()/write() delegate to the link.
 */
import { defer, from, type Observable } from "rxjs";
import type { Clock } from "../../infra/clock.js";
import type { Logger } from "../../infra/logger.js";
import { errorMessage } from "../../infra/errors.js";
import type { PointDef } from "../../core/points.js";
import type { DeviceDriver, OutputChange, ReadOutcome, SampleSink, WriteOutcome } from "../../loop/device-port.js";
import type { OpcuaDeviceConfig } from "./config.js";
import { planDevice, type OpcuaPlan } from "./plan.js";
import type { OpcuaLink } from "./link.js";

export interface OpcuaDriverOptions {
  /** Folder of the config file: relative paths (pki_dir) start here. */
  readonly baseDir: string;
  readonly env?: NodeJS.ProcessEnv;
  /** The cell's state folder (the state file's): the default PKI is its `pki/`. */
  readonly stateDir?: string;
}

export class OpcuaDriver implements DeviceDriver {
  readonly plan: OpcuaPlan;
  private link: OpcuaLink | undefined;
  private starting: Promise<void> | undefined;
  private stopped = true;
  private startError = "";

  constructor(
    readonly name: string,
    private readonly cfg: OpcuaDeviceConfig,
    points: readonly PointDef[],
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: OpcuaDriverOptions,
  ) {
    this.plan = planDevice(name, cfg, points, opts.baseDir, opts.env, opts.stateDir);
  }

  /** The link, once started (diagnostics and tests). */
  get current(): OpcuaLink | undefined {
    return this.link;
  }

  start(): Promise<void> {
    this.stopped = false;
    this.starting ??= (async () => {
      try {
        const { OpcuaLink } = await import("./link.js");
        if (this.stopped) return;
        this.link = new OpcuaLink(this.name, this.cfg, this.plan, this.clock, this.log, this.opts.env);
        await this.link.start();
      } catch (e) {
        this.startError = errorMessage(e);
        this.log.error({ err: this.startError }, "OPC UA driver could not start: its points stay bad");
      }
    })();
    return this.starting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.starting;
    this.starting = undefined;
    await this.link?.stop();
    this.link = undefined;
  }

  read(sink: SampleSink): Observable<ReadOutcome> {
    return defer(() => from(this.link ? this.link.read(sink) : Promise.resolve(this.notRunning())));
  }

  write(changes: readonly OutputChange[]): Observable<WriteOutcome> {
    return defer(() => from(this.link ? this.link.write(changes) : Promise.resolve({ ...this.notRunning(), failed: changes.map((c) => c.index) })));
  }

  private notRunning(): { ok: false; status: "bad_no_communication"; error: string } {
    return { ok: false, status: "bad_no_communication", error: this.startError || `${this.name}: driver not started` };
  }
}
