/**
 * One poll of a device's read plan, one request after the other (max_in_flight
 * 1), driven by callbacks: the loop's hot path. At 100 Hz a device makes 100
 * polls a second; an async function, a Promise and a `then` per request were a
 * measurable share of the daemon's CPU. One SequentialPoll per driver is
 * reused from poll to poll (the loop never starts a read while one is in
 * flight; `busy` says so, and the driver takes its general path then).
 *
 * Success is synchronous (each answer decodes and sends the next request);
 * a failure goes through the driver's error policy (`failed`, asynchronous),
 * as the Promise path does.
 */
import type { ReadOutcome, SampleSink } from "../../loop/device-port.js";
import type { ReadRequest } from "./plan.js";
import type { DeviceRequester } from "./requester.js";

export interface PollHooks {
  /** Decode one answer into the sink; throws a CellioError for a bad answer. */
  decode(r: ReadRequest, data: number[] | boolean[], sink: SampleSink): void;
  /** Every request answered: the outcome. */
  succeeded(): ReadOutcome;
  /** A request failed: the fault policy, then the outcome. */
  failed(e: unknown): Promise<ReadOutcome>;
}

export class SequentialPoll {
  private i = 0;
  private sink: SampleSink | undefined;
  private done: ((o: ReadOutcome) => void) | undefined;
  private readonly onAnswer = (err: Error | undefined, data: number[] | boolean[] | undefined): void => this.answer(err, data);

  constructor(
    private readonly requests: readonly ReadRequest[],
    private readonly req: DeviceRequester,
    private readonly hooks: PollHooks,
  ) {}

  /** A poll is in progress. */
  get busy(): boolean {
    return this.done !== undefined;
  }

  start(sink: SampleSink, done: (o: ReadOutcome) => void): void {
    this.sink = sink;
    this.done = done;
    this.i = 0;
    if (this.requests.length === 0) this.finish(this.hooks.succeeded());
    else this.req.readWith(this.requests[0]!, this.onAnswer);
  }

  private answer(err: Error | undefined, data: number[] | boolean[] | undefined): void {
    if (err) {
      this.fail(err);
      return;
    }
    try {
      this.hooks.decode(this.requests[this.i]!, data!, this.sink!);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (++this.i < this.requests.length) this.req.readWith(this.requests[this.i]!, this.onAnswer);
    else this.finish(this.hooks.succeeded());
  }

  private fail(e: unknown): void {
    this.hooks.failed(e).then(
      (o) => this.finish(o),
      (x: unknown) => this.finish({ ok: false, status: "bad_device_failure", error: String(x) }),
    );
  }

  private finish(o: ReadOutcome): void {
    const done = this.done!;
    this.done = undefined;
    this.sink = undefined;
    done(o);
  }
}
