/**
 * Keeps a cell's retained state (src/persist/state.ts) in its state file.
 *
 * - load(): before the first cycle. Restores the engines from the file; a
 *   missing, torn, altered or foreign file starts the cell from its defaults
 *   (nothing tripped, sequences at their initial steps) and says why in the
 *   log; an unreadable file is kept aside as `<file>.bad-<ms>`. Never throws.
 * - request(): something retained may have changed (called from the cycle).
 *   It only sets a flag and arms a timer: the state is captured and written
 *   later, off the cycle. At most one write is in flight; requests during it
 *   coalesce into one more write of the latest state. A change after a quiet
 *   spell is written at once, then at most one write per `minWriteIntervalMs`.
 *   Nothing is written when the retained content has not changed.
 * - flush(): at stop, after the last cycle: waits for a write in flight and
 *   writes the final state, bounded in time.
 *
 * A write that fails (disk full, read-only) is logged once, retried every
 * interval, and its recovery logged once. The loop never waits for a write.
 */
import { mkdir } from "node:fs/promises";
import type { Clock } from "../infra/clock.js";
import type { Logger } from "../infra/logger.js";
import { errorMessage } from "../infra/errors.js";
import { stateFile } from "./config.js";
import { encodeState, moveAside, readStateFile, removeTempFiles, writeFileAtomic } from "./store.js";
import { STATE_VERSION, captureState, contentKey, parseStateBody, restoreState, stateBody, type RetainingEngines } from "./state.js";

export interface StatePersisterOptions {
  readonly dir: string;
  readonly cell: string;
  readonly engines: RetainingEngines;
  readonly log: Logger;
  readonly clock: Clock;
  readonly minWriteIntervalMs: number;
}

/** restored: the file was read and applied; missing: first start; unreadable: started from defaults, see the log. */
export type LoadResult = "restored" | "missing" | "unreadable";

export class StatePersister {
  readonly file: string;
  /** Writes that completed, and writes that failed. */
  writes = 0;
  failures = 0;
  private readonly log: Logger;
  /** Content key of what the file holds (undefined: unknown or none). */
  private savedKey: string | undefined;
  private pending = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: Promise<boolean> | undefined;
  private lastStartMs = Number.NEGATIVE_INFINITY;
  private closed = false;
  private failing = false;

  constructor(private readonly opts: StatePersisterOptions) {
    this.file = stateFile(opts.dir, opts.cell);
    this.log = opts.log.child({ component: "state" });
  }

  async load(): Promise<LoadResult> {
    this.closed = false;
    const { file, log } = this;
    try {
      await mkdir(this.opts.dir, { recursive: true });
    } catch (e) {
      log.error({ dir: this.opts.dir, err: errorMessage(e) }, "state directory cannot be created: latched interlock trips will not survive a restart");
    }
    const stale = await removeTempFiles(file).catch((e: unknown) => {
      log.warn({ file, err: errorMessage(e) }, "could not remove the temp files of unfinished state writes");
      return [];
    });
    if (stale.length > 0) {
      log.warn({ files: stale }, "removed the temp file of a state write that never finished (crash or power cut): the state file is the last complete one");
    }
    const r = await readStateFile(file, [STATE_VERSION]);
    let reason: string;
    switch (r.kind) {
      case "missing":
        log.info({ file }, "no state file yet: starting from defaults (no interlock tripped, sequences at their initial steps)");
        this.request();
        return "missing";
      case "corrupt":
      case "unsupported":
        reason = r.reason;
        break;
      case "ok": {
        const p = parseStateBody(r.body, this.opts.cell);
        if (!p.ok) {
          reason = p.reason;
          break;
        }
        const { state } = p;
        for (const n of restoreState(this.opts.engines, state)) {
          if (n.kind === "restored") log.warn({ id: n.id }, n.message);
          else log.info({ id: n.id }, n.message);
        }
        const tripped = state.interlocks.filter((i) => i.tripped && i.latched).length;
        log.info({ file, savedAt: new Date(state.savedAtWallMs).toISOString(), latchedTrips: tripped }, "state restored from the state file");
        this.savedKey = contentKey({ cell: state.cell, interlocks: state.interlocks, sequences: state.sequences });
        this.request(); // rewritten only if the config dropped or changed something
        return "restored";
      }
    }
    let keptAs: string | undefined;
    try {
      keptAs = await moveAside(file, this.opts.clock.wall());
    } catch (e) {
      log.warn({ file, err: errorMessage(e) }, "could not move the unreadable state file aside: it will be overwritten");
    }
    log.error(
      { file, reason, keptAs },
      `state file unreadable (${reason}): starting from defaults (no interlock tripped, sequences at their initial steps)`,
    );
    this.savedKey = undefined;
    this.request();
    return "unreadable";
  }

  /** Something retained may have changed: save it soon (see the header). Cheap; never does I/O itself. */
  request(): void {
    if (this.closed) return;
    this.pending = true;
    this.arm();
  }

  /** True while a write is waiting or running. */
  get busy(): boolean {
    return this.pending || this.inFlight !== undefined;
  }

  /**
   * Last write, at stop: no more requests are taken; the write in flight is
   * awaited and the final state written if it changed, within `timeoutMs`.
   * True when the file holds the final state.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.closed = true;
    this.pending = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const work = (async () => {
      if (this.inFlight) await this.inFlight;
      return this.writeNow();
    })();
    let bound: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      bound = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      const ok = await Promise.race([work, timedOut]);
      if (!ok) this.log.error({ file: this.file, timeoutMs }, "the final state could not be written");
      return ok;
    } finally {
      clearTimeout(bound);
    }
  }

  private arm(): void {
    if (this.closed || !this.pending || this.inFlight !== undefined || this.timer !== undefined) return;
    const wait = Math.max(0, this.lastStartMs + this.opts.minWriteIntervalMs - this.opts.clock.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startWrite();
    }, wait);
    this.timer.unref();
  }

  private startWrite(): void {
    if (this.closed || !this.pending || this.inFlight !== undefined) return;
    this.pending = false;
    this.lastStartMs = this.opts.clock.now();
    const w = this.writeNow();
    this.inFlight = w;
    void w.finally(() => {
      this.inFlight = undefined;
      this.arm();
    });
  }

  /** Capture now and write if the content changed. Never rejects; false when the write failed. */
  private async writeNow(): Promise<boolean> {
    const content = captureState(this.opts.cell, this.opts.engines);
    const key = contentKey(content);
    if (key === this.savedKey) return true;
    try {
      await writeFileAtomic(this.file, encodeState(STATE_VERSION, stateBody(content, this.opts.clock.wall())));
    } catch (e) {
      this.failures++;
      if (!this.failing) {
        this.failing = true;
        this.log.error({ file: this.file, err: errorMessage(e) }, "state file write failed: retrying; a restart now would lose the latest retained state");
      }
      this.pending = true; // retried after the interval (not once closed)
      return false;
    }
    this.savedKey = key;
    this.writes++;
    if (this.failing) {
      this.failing = false;
      this.log.info({ file: this.file }, "state file written again");
    }
    return true;
  }
}
