/**
 * The RTU-over-TCP half of the Modbus TCP client (tcp-client.ts): response
 * frames of the one request in flight, assembled, checked and resynchronised
 * by line silence.
 */
import { roundMs } from "../../infra/clock.js";
import { judgeAfterIo } from "../../infra/late-timer.js";
import { NEED_MORE, crc16, hex, parseResponsePdu, responsePduLength } from "./pdu-client.js";
import type { ModbusTcpClient } from "./tcp-client.js";
import type { Txn } from "./tcp-txn.js";

/**
 * RTU frames over TCP: the response to the one request in flight, assembled
 * from chunks into the client's receive buffer. Its length follows from the
 * unit id, function code and byte count; a wrong unit id or function code
 * fails at once, a bad CRC waits for the silence to tell an over-long frame
 * from a corrupted one, a partial frame fails at the silence. Until the line
 * is silent after a doubt (`busy`), nothing is sent.
 *
 * A silence timer that fires late (this thread was stalled: infra/late-timer.ts)
 * judges in an immediate, after that turn's socket reads: the rest of a frame
 * that came during the stall re-arms the silence or completes the frame, and
 * the pending judgement is dropped.
 */
export class RtuReceiver {
  private len = 0;
  private resyncing = false;
  /** Expected frame length while collecting the rest of a frame whose CRC failed; 0 otherwise. */
  private crcHold = 0;
  /** The next bytes during this resync are a late answer (after a timeout), to be counted as stale. */
  private countLate = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the silence timer is due (refresh() re-arms it without saying). */
  private silenceDue = 0;
  /** A late silence timer's judgement, waiting for this turn's socket reads. */
  private pending: NodeJS.Immediate | undefined;
  private readonly onSilenceBound = (): void => {
    this.timer = undefined;
    this.pending = judgeAfterIo(this.silenceDue, this.judgeBound);
  };
  private readonly judgeBound = (): void => {
    this.pending = undefined;
    this.host.guard(() => this.onSilence());
  };

  constructor(
    private readonly host: ModbusTcpClient,
    private readonly silenceMs: number,
  ) {}

  get busy(): boolean {
    return this.resyncing || this.crcHold > 0;
  }

  onData(chunk: Buffer): void {
    const rx = this.host.rxBuffer;
    const t = this.host.current();
    if (this.crcHold > 0) {
      this.len += chunk.copy(rx, this.len);
    } else if (this.resyncing || !t) {
      // Bytes nobody waits for (a late answer, noise) count once per resync; the rest of a bad frame does not.
      if (!this.resyncing || this.countLate) this.host.stats.stale += 1;
      this.countLate = false;
      this.resyncing = true;
    } else {
      const room = rx.length - this.len;
      this.len += chunk.copy(rx, this.len);
      this.check(t, chunk.length > room);
      return;
    }
    this.armSilence();
  }

  private check(t: Txn, overflow: boolean): void {
    const rx = this.host.rxBuffer;
    const fc = t.req.fc;
    if (rx[0] !== t.unit) return this.fail(t, `unit id ${rx[0]!}, expected ${t.unit}`);
    if (this.len >= 2 && rx[1] !== fc && rx[1] !== (fc | 0x80)) return this.fail(t, `function code ${hex(rx[1]!)}, expected ${hex(fc)} or ${hex(fc | 0x80)}`);
    const pdu = this.len >= 2 ? responsePduLength(rx, 1, this.len - 1) : NEED_MORE;
    if (pdu === NEED_MORE || this.len < pdu + 3) {
      if (overflow) return this.fail(t, `more than ${rx.length} bytes without a complete frame`);
      return this.armSilence();
    }
    const need = pdu + 3;
    if (crc16(rx, 0, need - 2) !== rx.readUInt16LE(need - 2)) {
      this.crcHold = need;
      return this.armSilence();
    }
    const extra = this.len > need || overflow;
    this.len = 0;
    if (extra) {
      this.host.stats.stale += 1;
      this.resync();
    } else this.cancelSilence();
    this.host.complete(t, parseResponsePdu(t.req, rx, 1, pdu));
  }

  private fail(t: Txn, reason: string): void {
    this.resync();
    this.host.failFrame(t, reason);
  }

  /** Discard everything until the line is silent. */
  resync(): void {
    this.len = 0;
    this.crcHold = 0;
    this.resyncing = true;
    this.countLate = false;
    this.armSilence();
  }

  timeout(t: Txn): void {
    if (this.len > 0 || this.crcHold > 0) return this.fail(t, `incomplete response: ${this.len} bytes received within ${roundMs(t.timeoutMs)} ms`);
    this.host.timeoutNoAnswer(t);
    this.resync(); // a late answer must not be taken for the next request's
    this.countLate = true;
  }

  reset(): void {
    this.cancelSilence();
    this.len = 0;
    this.crcHold = 0;
    this.resyncing = false;
  }

  private armSilence(): void {
    if (this.pending !== undefined) clearImmediate(this.pending);
    this.pending = undefined;
    this.silenceDue = performance.now() + this.silenceMs;
    if (this.timer !== undefined) this.timer.refresh();
    else this.timer = setTimeout(this.onSilenceBound, this.silenceMs);
  }

  private cancelSilence(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.pending !== undefined) clearImmediate(this.pending);
    this.timer = undefined;
    this.pending = undefined;
  }

  private onSilence(): void {
    const rx = this.host.rxBuffer;
    const t = this.host.current();
    const len = this.len;
    const need = this.crcHold > 0 ? this.crcHold : len >= 2 ? responsePduLength(rx, 1, len - 1) + 3 : 0;
    const wasHolding = this.crcHold > 0;
    this.reset();
    if (t && len > 0) {
      const crcOk = len >= 4 && crc16(rx, 0, len - 2) === rx.readUInt16LE(len - 2);
      let reason: string;
      if (wasHolding && crcOk && len > need) reason = `over-long response: ${len} bytes with a valid CRC, ${need} expected`;
      else if (wasHolding) reason = `CRC mismatch: received ${hex(rx.readUInt16LE(need - 2), 4)}, computed ${hex(crc16(rx, 0, need - 2), 4)}`;
      else if (crcOk) reason = `frame of ${len} bytes has a valid CRC but its header announces ${need} (byte count wrong)`;
      else reason = `truncated response: ${len} of ${need > 2 ? need : "?"} bytes, then ${this.silenceMs} ms of silence`;
      this.host.complete(t, { ok: false, kind: "frame", reason, inSync: true }); // the silence has resynchronised the line
      return;
    }
    this.host.pump();
  }
}
