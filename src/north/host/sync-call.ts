/**
 * Commands from the north worker, answered synchronously.
 *
 * MQTT's and OPC UA's command handlers call CommandPort.submit() and use
 * the answer at once (a reply, a write's StatusCode). The command router
 * lives on the loop's thread, so the worker posts the request and then
 * BLOCKS (Atomics.wait, allowed in workers, never on the main thread) until
 * the main thread has run CommandRouter.submit() and written the result into
 * a SharedArrayBuffer. Only the worker waits; the main thread never does.
 *
 * A request the main thread does not take within `timeoutMs` is abandoned
 * with a compare-and-swap on the state word, so it is either answered or
 * never submitted: the client is never told "refused" for a command that
 * the router accepted afterwards.
 *
 * Layout: int32 [0] state, [1] reply length, [2] last applied delta,
 * [3] request id; bytes from 16: the reply as JSON.
 */
import type { Caller, Command, CommandResult } from "../../core/commands.js";
import type { CommandRequest } from "./protocol.js";

const IDLE = 0;
const PENDING = 1;
const CLAIMED = 2;
const DONE = 3;
const ABANDONED = 4;
const S_STATE = 0;
const S_LEN = 1;
const S_APPLIED = 2;
const S_ID = 3;
const HEADER = 16;
const REPLY_BYTES = 4096;

export function createShared(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER + REPLY_BYTES);
}

/** The last delta the worker applied (main: flow control). */
export function appliedSeq(shared: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(shared, 0, 4), S_APPLIED);
}

export function setAppliedSeq(shared: SharedArrayBuffer, seq: number): void {
  Atomics.store(new Int32Array(shared, 0, 4), S_APPLIED, seq);
}

/** Worker side: a CommandPort whose submit() blocks until the loop's thread answers. */
export class SyncCommandClient {
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;
  private nextId = 1;

  constructor(
    shared: SharedArrayBuffer,
    private readonly post: (m: CommandRequest) => void,
    private readonly timeoutMs: number,
  ) {
    this.words = new Int32Array(shared, 0, 4);
    this.bytes = new Uint8Array(shared, HEADER, REPLY_BYTES);
  }

  submit(command: Command, caller: Caller): CommandResult {
    const w = this.words;
    const id = this.nextId++ & 0x7fffffff;
    Atomics.store(w, S_ID, id);
    Atomics.store(w, S_STATE, PENDING);
    this.post({ t: "cmd", id, command, caller });
    const until = performance.now() + this.timeoutMs;
    for (;;) {
      const state = Atomics.load(w, S_STATE);
      if (state === DONE) break;
      const left = until - performance.now();
      if (left <= 0) {
        // Not taken in time: abandon it, unless the main thread has claimed it meanwhile (then it answers at once).
        if (Atomics.compareExchange(w, S_STATE, PENDING, ABANDONED) === PENDING) {
          return { accepted: false, code: "busy", reason: `the control loop did not take the command within ${this.timeoutMs} ms` };
        }
        Atomics.wait(w, S_STATE, CLAIMED, 1000);
        if (Atomics.load(w, S_STATE) !== DONE) {
          Atomics.store(w, S_STATE, IDLE);
          return { accepted: false, code: "busy", reason: "the control loop did not answer" };
        }
        break;
      }
      Atomics.wait(w, S_STATE, state, left);
    }
    const len = Atomics.load(w, S_LEN);
    const text = new TextDecoder().decode(this.bytes.slice(0, len));
    Atomics.store(w, S_STATE, IDLE);
    return JSON.parse(text) as CommandResult;
  }
}

/**
 * Main side: answer one request with `submit` (CommandRouter.submit). Does
 * nothing for a request the worker has abandoned (or a stale one).
 */
export function answerCommand(shared: SharedArrayBuffer, req: CommandRequest, submit: (c: Command, from: Caller) => CommandResult): void {
  const w = new Int32Array(shared, 0, 4);
  if (Atomics.load(w, S_ID) !== req.id) return;
  if (Atomics.compareExchange(w, S_STATE, PENDING, CLAIMED) !== PENDING) return;
  let result: CommandResult;
  try {
    result = submit(req.command, req.caller);
  } catch (e) {
    result = { accepted: false, code: "not_ready", reason: `command failed: ${e instanceof Error ? e.message : String(e)}` };
  }
  let encoded = new TextEncoder().encode(JSON.stringify(result));
  if (encoded.length > REPLY_BYTES && !result.accepted) {
    encoded = new TextEncoder().encode(JSON.stringify({ ...result, reason: result.reason.slice(0, 1000) }));
  }
  new Uint8Array(shared, HEADER, REPLY_BYTES).set(encoded.subarray(0, REPLY_BYTES));
  Atomics.store(w, S_LEN, Math.min(encoded.length, REPLY_BYTES));
  Atomics.store(w, S_STATE, DONE);
  Atomics.notify(w, S_STATE);
}
