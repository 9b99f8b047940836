/**
 * The line of an RTU bus (rtu-bus.ts): its waiting requests, the one
 * transaction on it, the bytes received for that transaction and the timer
 * that decides gaps, silences and timeouts. It knows nothing of the serial
 * port: the bus writes for it, and tells it when the port opens and closes.
 *
 * - Strictly one transaction on the line at a time. Waiting requests sit in a
 *   bounded queue, FIFO per unit id and round-robin between unit ids, so one
 *   unit's backlog never starves another.
 * - Before each request the line must have been quiet for the inter-frame
 *   gap since the end of the previous transaction (its last received byte,
 *   or its timeout); after any doubt (a bad frame, bytes nobody asked for)
 *   for the longer frame silence, so a frame's tail is never taken for the
 *   start of the next answer.
 * - A response is matched by unit id and function code and its CRC checked.
 *   It ends as soon as its own length (function code, byte count) is in and
 *   the CRC agrees; otherwise a silence on the line ends it (truncated,
 *   over-long, bad CRC, byte count that lies) and it fails with
 *   CELLIO_ERR_MODBUS_FRAME. The line is then in sync again. A whole valid
 *   frame from another unit or function (a late answer to a request that
 *   timed out) is skipped, and the request keeps waiting for its own answer.
 * - Each request has its own timeout, counted from the moment it is sent
 *   (queue time excluded, so a dead unit never makes the others time out),
 *   plus the time the request and its expected answer take on the wire at
 *   the baud rate. A frame that has started when the timeout strikes may
 *   finish (it ends at the next silence).
 */
import { roundMs } from "../../infra/clock.js";
import { exceptionName, hex, parseResponsePdu, type PduResult } from "./pdu-client.js";
import { FairQueue } from "./fair-queue.js";
import { MAX_RTU_ADU, examineResponse, expectedResponseLength, frameLength, silenceReason } from "./rtu-frame.js";
import { rtuError, type RtuBusOptions, type RtuBusStats, type RtuUnitStats, type Txn } from "./rtu-bus-types.js";
import { bitsPerChar, type RtuBusSettings } from "./rtu-config.js";
import { isLate } from "../../infra/late-timer.js";

/** What the line needs of its bus. */
export interface RtuLineHost {
  /** The port is open (nothing is sent otherwise). */
  isOpen(): boolean;
  /** Puts `frame` on the wire (a failed write loses the port). */
  write(frame: Buffer): void;
  /** Runs `fn`; an exception (a bug) closes the port instead of escaping an event handler. */
  guard(fn: () => unknown): void;
}

export class RtuLine {
  readonly queue: FairQueue<Txn>;
  private readonly perUnit = new Map<number, RtuUnitStats>();
  private readonly charMs: number;
  private gap: number;
  private current: Txn | undefined;
  private readonly rx = Buffer.alloc(MAX_RTU_ADU);
  private rxLen = 0;
  private lastRxAt = Number.NEGATIVE_INFINITY;
  /** End of the last thing on the line (request sent, byte received, timeout). */
  private lastActivityAt = Number.NEGATIVE_INFINITY;
  /** The line may still carry bytes of a frame nobody wants: wait for a full silence, not just the gap. */
  private doubt = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer is due, and whether it has had its grace already. */
  private timerDue = 0;
  private graced = false;
  /**
   * A timer that fires late (this thread was stalled: a busy core, a long
   * task) waits a little more before it judges: libuv runs due timers
   * before the port's I/O, and serialport reads through the thread pool, so
   * bytes that came in time are only delivered some turns later. Waiting on
   * a short timer lets the poll phase deliver them; a silence or a timeout
   * is judged only then (a stall has already cost more than the grace). On
   * time, it judges at once.
   */
  private readonly onTimerBound = (): void => {
    if (!this.graced && isLate(this.timerDue, performance.now())) {
      this.graced = true;
      this.timer = setTimeout(this.onTimerBound, GRACE_MS);
      return;
    }
    this.host.guard(() => this.onTimer());
  };

  constructor(
    private readonly settings: RtuBusSettings,
    private readonly opts: RtuBusOptions,
    private readonly stats: RtuBusStats,
    private readonly host: RtuLineHost,
  ) {
    this.queue = new FairQueue(opts.maxQueue ?? 64);
    this.charMs = (bitsPerChar(settings) * 1000) / settings.baudRate;
    this.gap = settings.interFrameGapMs;
  }

  get gapMs(): number {
    return this.gap;
  }

  /** Line silence that ends a frame of doubtful length. */
  get frameSilenceMs(): number {
    return this.opts.frameSilenceMs ?? Math.max(this.gap, 20);
  }

  /** A unit that needs a longer gap than the bus has so far gets it (the bus keeps the largest). */
  widenGap(ms: number): void {
    if (ms > this.gap) this.gap = ms;
  }

  unitStats(unit: number): RtuUnitStats {
    let s = this.perUnit.get(unit);
    if (!s) {
      s = { requests: 0, timeouts: 0, frameErrors: 0, exceptions: 0 };
      this.perUnit.set(unit, s);
    }
    return s;
  }

  /** The port has just opened: the line counts as quiet from now, with no doubt. */
  opened(now: number): void {
    this.lastActivityAt = now;
    this.doubt = false;
  }

  /** Queues `t` (the caller has checked the queue's room) and sends it when the line allows. */
  enqueue(t: Txn): void {
    this.queue.push(t.unit, t);
    this.pump();
  }

  /** The caller gave up: drop it from the queue, or release it while its request finishes on the line. */
  cancel(t: Txn): void {
    if (t.settled) return;
    const queued = this.queue.remove(t.unit, t);
    t.settle(rtuError(this.settings.path, "CELLIO_ERR_MODBUS_CLOSED", t, queued ? "cancelled; not sent" : "cancelled while on the line"));
  }

  /** The port closed or failed: everything on the line and in the queue fails with CELLIO_ERR_MODBUS_CLOSED. */
  failAll(why: string): void {
    this.clearTimer();
    const t = this.current;
    this.current = undefined;
    this.rxLen = 0;
    if (t) t.settle(rtuError(this.settings.path, "CELLIO_ERR_MODBUS_CLOSED", t, why));
    for (const q of this.queue.drain()) q.settle(rtuError(this.settings.path, "CELLIO_ERR_MODBUS_CLOSED", q, `${why}; not sent`));
  }

  /** Sends the next request once the line has been quiet long enough. */
  private pump(): void {
    if (!this.host.isOpen() || this.current || this.queue.size === 0) return;
    const readyAt = this.lastActivityAt + (this.doubt ? this.frameSilenceMs : this.gap);
    const now = performance.now();
    if (now < readyAt) {
      this.arm(readyAt);
      return;
    }
    this.send(this.queue.shift()!, now);
  }

  private send(t: Txn, now: number): void {
    this.current = t;
    this.rxLen = 0;
    this.doubt = false;
    t.sentAt = now;
    t.wireMs = (t.frame.length + expectedResponseLength(t.req)) * this.charMs;
    t.deadline = now + t.wireMs + t.timeoutMs;
    this.lastActivityAt = now + t.frame.length * this.charMs;
    this.stats.requests++;
    this.unitStats(t.unit).requests++;
    this.stats.bytesOut += t.frame.length;
    this.arm(t.deadline);
    this.host.write(t.frame);
  }

  /** Bytes from the port. */
  onData(chunk: Buffer): void {
    const now = performance.now();
    this.stats.bytesIn += chunk.length;
    this.lastRxAt = now;
    this.lastActivityAt = Math.max(this.lastActivityAt, now);
    const t = this.current;
    if (!t) {
      // Nobody waits for these bytes: a late answer, noise, the tail of a bad frame.
      if (!this.doubt) this.stats.stale++;
      this.doubt = true;
      this.pump();
      return;
    }
    const room = this.rx.length - this.rxLen;
    this.rxLen += chunk.copy(this.rx, this.rxLen);
    if (chunk.length > room) {
      this.doubt = true;
      this.finish(t, frameError(`more than ${MAX_RTU_ADU} bytes without a complete frame`));
      return;
    }
    this.examine(t, now);
  }

  /** Settles `t` when its answer is complete; skips whole valid frames that are not its answer. */
  private examine(t: Txn, now: number): void {
    for (;;) {
      const e = examineResponse(t.unit, t.req.fc, this.rx, this.rxLen);
      switch (e.kind) {
        case "partial":
        case "bad_crc":
          // The rest may be on its way: the next silence decides.
          this.arm(now + this.frameSilenceMs);
          return;
        case "frame":
          if (this.rxLen > e.need) {
            this.stats.stale++;
            this.doubt = true;
          }
          this.finish(t, parseResponsePdu(t.req, this.rx, 1, e.need - 3));
          return;
        case "foreign": {
          const n = frameLength(this.rx, this.rxLen);
          if (n === 0) {
            this.arm(now + this.frameSilenceMs); // a frame from someone else, not all in yet
            return;
          }
          if (n < 0) {
            this.doubt = true; // garbage: its tail may still be coming
            this.finish(t, frameError(e.reason));
            return;
          }
          // A whole, valid frame that does not answer this request: a late answer to an
          // earlier one (or a unit answering with the wrong id). Not ours: skip it, keep waiting.
          this.stats.stale++;
          t.skipped++;
          t.skippedFrom = `unit ${this.rx[0]!} FC${this.rx[1]! & 0x7f}`;
          this.rx.copyWithin(0, n, this.rxLen);
          this.rxLen -= n;
          if (this.rxLen === 0) {
            this.arm(t.deadline);
            return;
          }
        }
      }
    }
  }

  private onTimer(): void {
    this.timer = undefined;
    const t = this.current;
    if (!t) {
      this.pump();
      return;
    }
    const now = performance.now();
    if (this.rxLen > 0) {
      // A frame has started: only a silence ends it, timeout or not.
      if (now - this.lastRxAt < this.frameSilenceMs) this.arm(this.lastRxAt + this.frameSilenceMs);
      else this.finish(t, frameError(silenceReason(t.unit, t.req.fc, this.rx, this.rxLen, this.frameSilenceMs)));
      return;
    }
    if (now < t.deadline) {
      this.arm(t.deadline); // the timer fired early
      return;
    }
    this.current = undefined;
    this.lastActivityAt = Math.max(this.lastActivityAt, now);
    this.stats.timeouts++;
    this.unitStats(t.unit).timeouts++;
    const wire = t.wireMs >= 0.5 ? ` (+${roundMs(t.wireMs)} ms on the wire at ${this.settings.baudRate} baud)` : "";
    const skipped =
      t.skipped > 0 ? `; discarded meanwhile ${t.skipped} valid frame(s), the last from ${t.skippedFrom} (a late answer, or a unit answering with the wrong id)` : "";
    t.settle(rtuError(this.settings.path, "CELLIO_ERR_MODBUS_TIMEOUT", t, `no answer within ${roundMs(t.timeoutMs)} ms${wire}${skipped}`));
    this.pump();
  }

  private finish(t: Txn, r: PduResult<unknown>): void {
    this.clearTimer();
    this.current = undefined;
    this.rxLen = 0;
    this.stats.responses++;
    if (r.ok) {
      t.settle(undefined, r.value);
    } else if (r.kind === "exception") {
      this.stats.exceptions++;
      this.unitStats(t.unit).exceptions++;
      const name = exceptionName(r.code);
      t.settle(rtuError(this.settings.path, "CELLIO_ERR_MODBUS_EXCEPTION", t, `exception ${hex(r.code)} (${name})`, { exception: r.code, exceptionName: name }));
    } else {
      this.stats.frameErrors++;
      this.unitStats(t.unit).frameErrors++;
      t.settle(rtuError(this.settings.path, "CELLIO_ERR_MODBUS_FRAME", t, r.reason));
    }
    this.pump();
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDue = at;
    this.graced = false;
    this.timer = setTimeout(this.onTimerBound, Math.max(0, Math.ceil(at - performance.now())));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * How long a late timer (isLate) waits for the port's pending bytes. Measured after 120 ms
 * stalls (test/drivers/modbus/stall.test.ts): bytes that were in the pty all along were delivered
 * 2–18 ms after the thread was free again.
 */
const GRACE_MS = 50;

function frameError(reason: string): PduResult<never> {
  return { ok: false, kind: "frame", reason, inSync: true };
}
