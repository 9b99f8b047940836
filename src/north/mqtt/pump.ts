/**
 * The publishing engine of MqttService: compares the latest cycle image with
 * what was last queued (StatePublisher → Outbox) and hands the Outbox to the
 * connection with at most `max_inflight` QoS 1 messages awaiting PUBACK
 * (never more than the broker's Receive Maximum, MQTT 5 3.3.4-7).
 *
 * All of it runs in slices of at most SLICE_MS, one setImmediate apart, so
 * the loop's timers always get their turn: publishing 10,000 messages a
 * second in one synchronous burst would hold the thread for tens of
 * milliseconds. Nothing is handed to mqtt.js while disconnected.
 */
import type { IPublishPacket } from "mqtt";
import type { Clock } from "../../infra/clock.js";
import type { MqttConnection } from "./client.js";
import type { CellView, CycleView } from "./ports.js";
import type { OutMessage, Outbox, StatePublisher } from "./publisher.js";

/** Longest stretch of MQTT work (collecting, publishing) before yielding to the event loop. */
const SLICE_MS = 1;

export interface MqttCounters {
  published: number;
  publishErrors: number;
}

export interface PumpDeps {
  readonly view: CellView;
  readonly outbox: Outbox;
  readonly publisher: StatePublisher;
  readonly clock: Clock;
  readonly counters: MqttCounters;
  readonly maxInflight: number;
  /** The connection now (undefined before start and after stop). */
  conn(): MqttConnection | undefined;
  /** False once the service stops: no more slices. */
  running(): boolean;
}

export class PublishPump {
  private inflight = 0;
  /** Points being compared, resumable across slices. */
  private job: { c: CycleView; next: number; all: boolean } | undefined;
  private queued = false;
  /** Bumped on every disconnect: PUBACKs of an older connection are not counted against the new one. */
  private generation = 0;

  constructor(private readonly d: PumpDeps) {}

  /**
   * Compare `c` with what was last queued. `all` (after a connect): queue
   * every topic again, replacing a comparison in progress. Otherwise a
   * comparison still running (a slow machine) finishes first; the next
   * pacing step takes the latest image.
   */
  compare(c: CycleView, all: boolean): void {
    if (all) this.job = { c, next: 0, all: true };
    else this.job ??= { c, next: 0, all: false };
    this.schedule();
  }

  /** The connection was lost: what was in flight is mqtt.js's business now. */
  disconnected(): void {
    this.generation++;
    this.inflight = 0;
  }

  schedule(): void {
    if (this.queued || !this.d.running()) return;
    this.queued = true;
    setImmediate(() => this.slice());
  }

  /** Publish now, outside the Outbox (birth, replies). False when not connected. */
  send(m: OutMessage, properties?: IPublishPacket["properties"]): boolean {
    const conn = this.d.conn();
    if (!conn) return false;
    const gen = this.generation;
    const counted = m.qos > 0;
    if (counted) this.inflight++;
    const ok = conn.publish(
      m,
      (err) => {
        if (err) this.d.counters.publishErrors++;
        else this.d.counters.published++;
        if (counted && gen === this.generation) {
          this.inflight--;
          if (this.d.outbox.size > 0) this.schedule();
        }
      },
      properties,
    );
    if (!ok && counted) this.inflight--;
    return ok;
  }

  /** QoS 1 publishes allowed in flight: ours, and never more than the broker's Receive Maximum. */
  private get window(): number {
    return Math.min(this.d.maxInflight, this.d.conn()?.receiveMaximum ?? 65_535);
  }

  /** Work for at most SLICE_MS: finish comparing, then publish; come back later for the rest. */
  private slice(): void {
    this.queued = false;
    if (!this.d.running()) return;
    const { clock, outbox, publisher, view } = this.d;
    const until = clock.now() + SLICE_MS;
    const more = (): boolean => clock.now() < until;
    const job = this.job;
    if (job) {
      job.next = publisher.collectPoints(job.c, outbox, job.all, job.next, more);
      if (job.next >= view.points.length) {
        const c = job.c;
        publisher.collectOthers(view.interlocks?.() ?? c.interlocks ?? [], view.sequences?.() ?? c.sequences ?? [], c.wallMs, outbox, job.all, c.controlState);
        this.job = undefined;
      }
    }
    const conn = this.d.conn();
    if (conn?.connected) {
      const window = this.window;
      while (this.inflight < window && outbox.size > 0 && more()) {
        const batch = outbox.take(Math.min(16, window - this.inflight));
        for (let i = 0; i < batch.length; i++) {
          if (!this.send(batch[i]!)) {
            // Lost the connection mid-batch: put the rest back (newer values queued since win).
            for (let j = i; j < batch.length; j++) this.requeue(batch[j]!);
            return;
          }
        }
      }
    }
    if (this.job !== undefined || (conn?.connected && outbox.size > 0 && this.inflight < this.window)) this.schedule();
  }

  private requeue(m: OutMessage): void {
    if (m.retain) {
      if (!this.d.outbox.has(m.topic)) this.d.outbox.putState(m);
    } else this.d.outbox.putEvent(m);
  }
}
