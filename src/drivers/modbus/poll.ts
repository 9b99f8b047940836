/**
 * One poll of a device's read plan, driven by callbacks: the loop's hot path.
 * At 100 Hz a device makes 100 polls a second; an async function, a Promise
 * and a `then` per request were a measurable share of the daemon's CPU, and
 * their garbage its scavenges. One poll object per driver is reused from poll
 * to poll (the loop never starts a read while one is in flight; `busy` says
 * so, and the driver takes its general, Promise path then).
 *
 * - SequentialPoll (max_in_flight 1): one request after the other; each
 *   answer decodes and sends the next.
 * - PipelinedPoll (max_in_flight > 1): every request at once (they leave in
 *   one segment); the answers are kept and decoded in plan order when the
 *   last is in, as `Promise.all` on the general path does. The first failure
 *   ends the poll; the answers still due come back to a poll that ignores
 *   them and stays `busy` until the last has.
 *
 * Success is synchronous; a failure goes through the driver's error policy
 * (`failed`, asynchronous), as the Promise path does.
 */
import type { ReadOutcome, SampleSink } from "../../loop/device-port.js";
import type { ReadRequest } from "./plan.js";
import { PlannedRead, type DeviceRequester } from "./requester.js";

export interface PollHooks {
  /** Decode one answer into the sink; throws a CellioError for a bad answer. */
  decode(r: ReadRequest, data: number[] | boolean[], sink: SampleSink): void;
  /** Every request answered: the outcome. */
  succeeded(): ReadOutcome;
  /** A request failed: the fault policy, then the outcome. */
  failed(e: unknown): Promise<ReadOutcome>;
}

/** What both polls share: the plan, the sink and the caller of the poll in progress, and how a poll ends. */
abstract class Poll {
  protected sink: SampleSink | undefined;
  protected done: ((o: ReadOutcome) => void) | undefined;

  constructor(
    protected readonly requests: readonly ReadRequest[],
    protected readonly req: DeviceRequester,
    protected readonly hooks: PollHooks,
  ) {}

  /** A poll is in progress (or, pipelined, answers of a failed one are still due). */
  abstract get busy(): boolean;

  /** Start a poll: `done` gets its outcome. An empty plan succeeds at once. */
  start(sink: SampleSink, done: (o: ReadOutcome) => void): void {
    this.sink = sink;
    this.done = done;
    if (this.requests.length === 0) this.finish(this.hooks.succeeded());
    else this.send();
  }

  /** Send the first request (sequential) or all of them (pipelined). */
  protected abstract send(): void;

  protected fail(e: unknown): void {
    this.hooks.failed(e).then(
      (o) => this.finish(o),
      (x: unknown) => this.finish({ ok: false, status: "bad_device_failure", error: String(x) }),
    );
  }

  protected finish(o: ReadOutcome): void {
    const done = this.done!;
    this.done = undefined;
    this.sink = undefined;
    done(o);
  }
}

export class SequentialPoll extends Poll {
  private i = 0;
  private readonly onAnswer = (err: Error | undefined, data: number[] | boolean[] | undefined): void => this.answer(err, data);
  private readonly calls: readonly PlannedRead[];

  constructor(requests: readonly ReadRequest[], req: DeviceRequester, hooks: PollHooks) {
    super(requests, req, hooks);
    this.calls = requests.map((r) => new PlannedRead(r, this.onAnswer, req));
  }

  get busy(): boolean {
    return this.done !== undefined;
  }

  protected send(): void {
    this.i = 0;
    this.req.readPlanned(this.calls[0]!);
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
    if (++this.i < this.requests.length) this.req.readPlanned(this.calls[this.i]!);
    else this.finish(this.hooks.succeeded());
  }
}

export class PipelinedPoll extends Poll {
  /** Requests of the current (or the last failed) poll not yet answered. */
  private outstanding = 0;
  /** The current poll failed: its remaining answers are ignored. */
  private failedPoll = false;
  private readonly answers: (number[] | boolean[] | undefined)[];
  /** One call per request of the plan, each with its own callback, made once. */
  private readonly calls: readonly PlannedRead[];

  constructor(requests: readonly ReadRequest[], req: DeviceRequester, hooks: PollHooks) {
    super(requests, req, hooks);
    this.answers = requests.map(() => undefined);
    this.calls = requests.map((r, i) => new PlannedRead(r, (err, data) => this.answer(i, err, data), req));
  }

  get busy(): boolean {
    return this.done !== undefined || this.outstanding > 0;
  }

  protected send(): void {
    this.failedPoll = false;
    const n = this.requests.length;
    this.outstanding = n;
    for (let i = 0; i < n; i++) this.req.readPlanned(this.calls[i]!);
  }

  private answer(i: number, err: Error | undefined, data: number[] | boolean[] | undefined): void {
    this.outstanding--;
    if (this.failedPoll) return;
    if (err) {
      this.fail(err);
      return;
    }
    this.answers[i] = data;
    if (this.outstanding > 0) return;
    try {
      for (let k = 0; k < this.requests.length; k++) this.hooks.decode(this.requests[k]!, this.answers[k]!, this.sink!);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.answers.fill(undefined);
    this.finish(this.hooks.succeeded());
  }

  protected override fail(e: unknown): void {
    this.failedPoll = true;
    this.answers.fill(undefined);
    super.fail(e);
  }
}
