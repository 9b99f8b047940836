/**
 * What every simulator server shares: its counters, one request through the
 * faults and the bank, and the ordered (possibly delayed) sending of answers.
 */
import type { RegisterBank } from "./bank.js";
import type { Decision, FaultInjector } from "./faults.js";
import { exceptionPdu, handlePdu, isExceptionPdu } from "./pdu.js";

/** Counters every simulator server keeps (the `stats` of the servers). */
export interface ServerStats {
  /** Connections accepted (TCP) or port opens (serial). */
  connections: number;
  activeConnections: number;
  /** Connections closed at once by refuseConnections. */
  refused: number;
  /** Well-framed requests received (any unit id). */
  requests: number;
  /** Frames sent (including garbled and malformed ones). */
  responses: number;
  /** Requests left unanswered by a fault (noAnswer, dropEvery). */
  dropped: number;
  /** Exception responses sent. */
  exceptions: number;
  /** Frames thrown away: bad CRC, bad MBAP header, cut short by silence. */
  badFrames: number;
  /** Requests to a unit id the server does not hold. */
  unknownUnit: number;
}

export function newStats(): ServerStats {
  return { connections: 0, activeConnections: 0, refused: 0, requests: 0, responses: 0, dropped: 0, exceptions: 0, badFrames: 0, unknownUnit: 0 };
}

/**
 * One request to a known unit through the faults and the bank: the response
 * PDU and what to do to it, or null when the request goes unanswered. A
 * dropped request or an exception does not touch the bank; a garbled or
 * malformed answer does (the device did the work, the answer got mangled
 * on the way back).
 */
export function serveRequest(
  faults: FaultInjector,
  bank: RegisterBank,
  unit: number,
  req: Buffer,
  stats: ServerStats,
): { pdu: Buffer; decision: Decision } | null {
  const decision = faults.decide(unit);
  const a = decision.action;
  let pdu: Buffer;
  switch (a.type) {
    case "drop":
      stats.dropped += 1;
      return null;
    case "exception":
      pdu = exceptionPdu(req[0] ?? 0, a.code);
      break;
    case "answer":
    case "garbage":
    case "malform":
      pdu = handlePdu(bank, req);
      break;
  }
  if (isExceptionPdu(pdu)) stats.exceptions += 1;
  return { pdu, decision };
}

/**
 * Sends frames in order, each not before its delay: a frame with no delay
 * goes out synchronously unless earlier delayed frames are still queued.
 * One timer for the head of the queue; due times never decrease, so the
 * order of a connection's responses is preserved even with jitter.
 */
export class OrderedSender {
  private readonly queue: { due: number; frame: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastDue = 0;

  constructor(
    private readonly send: (frame: Buffer) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  push(frame: Buffer, delayMs: number): void {
    if (delayMs <= 0 && this.queue.length === 0) {
      this.send(frame);
      return;
    }
    const due = Math.max(this.now() + delayMs, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, frame });
    if (this.timer === undefined) this.arm();
  }

  /** Drop everything queued (the connection is gone). */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private arm(): void {
    const head = this.queue[0];
    if (!head) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.due - this.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const now = this.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now + 0.5) this.send(this.queue.shift()!.frame);
    this.arm();
  }
}
