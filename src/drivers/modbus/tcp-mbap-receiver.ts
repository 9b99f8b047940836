/**
 * The MBAP half of the Modbus TCP client (tcp-client.ts): response frames cut
 * out of the byte stream, in place where they are whole, matched to the
 * request in flight by transaction id. Anything that leaves the stream in
 * doubt (bad protocol id, a length field out of range or disagreeing with the
 * PDU, bytes after a frame that cannot start a header, a frame still
 * incomplete when its request times out) drops the connection.
 */
import { roundMs } from "../../infra/clock.js";
import { hex, parseResponsePdu, responsePduLength } from "./pdu-client.js";
import type { ModbusTcpClient } from "./tcp-client.js";
import { MAX_ADU, type Txn } from "./tcp-txn.js";

export const MBAP_HEADER = 7;

export class MbapReceiver {
  /** One frame split across reads is completed here. */
  private readonly rx = Buffer.allocUnsafe(MAX_ADU);
  private rxLen = 0;

  constructor(private readonly host: ModbusTcpClient) {}

  reset(): void {
    this.rxLen = 0;
  }

  /** Bytes `chunk[0, end)` from the socket of generation `gen`. */
  onData(chunk: Buffer, end: number, gen: number): void {
    const host = this.host;
    let off = 0;
    // Finish a frame split across chunks: copy just the bytes it still needs.
    while (this.rxLen > 0) {
      const need = this.rxLen < MBAP_HEADER ? MBAP_HEADER : this.frameLength(this.rx, 0);
      if (need < 0) return;
      if (this.rxLen === need) {
        this.rxLen = 0;
        if (!this.headerFollows(this.rx, 0, chunk, off, end)) return;
        this.onFrame(this.rx, 0, need);
        if (host.generation !== gen) return;
        break;
      }
      if (off === end) return;
      const take = Math.min(need - this.rxLen, end - off);
      chunk.copy(this.rx, this.rxLen, off, off + take);
      this.rxLen += take;
      off += take;
    }
    // Whole frames in place, without copying.
    while (end - off >= MBAP_HEADER) {
      const need = this.frameLength(chunk, off);
      if (need < 0) return;
      if (end - off < need) break;
      if (!this.headerFollows(chunk, off, chunk, off + need, end)) return;
      this.onFrame(chunk, off, need);
      if (host.generation !== gen) return;
      off += need;
    }
    if (off < end) this.rxLen = chunk.copy(this.rx, 0, off, end);
  }

  /**
   * `t` timed out: a partial frame that is stuck (truncated, or its length
   * field lies) drops the connection; true when it did.
   */
  stuck(t: Txn): boolean {
    if (this.rxLen === 0) return false;
    const tid = this.rxLen >= 2 ? this.rx.readUInt16BE(0) : -1;
    const owner = this.host.txnOfTid(tid);
    if (owner !== undefined && owner !== t) return false;
    const announced = this.rxLen >= 6 ? String(6 + this.rx.readUInt16BE(4)) : "?";
    this.host.streamError(`incomplete response: ${this.rxLen} of ${announced} bytes received within ${roundMs(t.timeoutMs)} ms (truncated frame or length field too long)`, owner);
    return true;
  }

  /** ADU length announced by the MBAP header at `off`; -1 after dropping the connection for a bad header. */
  private frameLength(buf: Buffer, off: number): number {
    const pid = buf.readUInt16BE(off + 2);
    const len = buf.readUInt16BE(off + 4);
    if (pid === 0 && len >= 2 && len <= MAX_ADU - 6) return 6 + len;
    const tid = buf.readUInt16BE(off);
    const why =
      pid !== 0
        ? `protocol id ${pid}, expected 0 (tid ${hex(tid, 4)}, length ${len})`
        : `MBAP length field ${len} is outside 2..${MAX_ADU - 6} (tid ${hex(tid, 4)})`;
    this.host.streamError(why, this.host.txnOfTid(tid));
    return -1;
  }

  /**
   * Whether the bytes at `next` (if any) can start an MBAP header. A frame cut
   * short borrows the first bytes of the frame after it and still looks whole;
   * the misaligned rest gives it away, so check before delivering the frame at
   * `buf[off]`. False after dropping the connection.
   */
  private headerFollows(buf: Buffer, off: number, chunk: Buffer, next: number, end: number): boolean {
    const avail = end - next;
    if (avail < 3) return true;
    const pid = avail >= 4 ? chunk.readUInt16BE(next + 2) : chunk[next + 2]! << 8;
    const len = avail >= 6 ? chunk.readUInt16BE(next + 4) : 2;
    if (pid === 0 && len >= 2 && len <= MAX_ADU - 6) return true;
    const why = `the bytes after this frame do not start an MBAP header (protocol id ${pid}, length ${len}): frame cut short or its length field too short`;
    this.host.streamError(why, this.host.txnOfTid(buf.readUInt16BE(off)));
    return false;
  }

  private onFrame(buf: Buffer, off: number, total: number): void {
    const t = this.host.txnOfTid(buf.readUInt16BE(off));
    if (!t) {
      this.host.stats.stale += 1;
      return;
    }
    const unit = buf[off + 6]!;
    if (unit !== t.unit) {
      const pdu = total - MBAP_HEADER;
      const inSync = responsePduLength(buf, off + MBAP_HEADER, pdu) === pdu;
      this.host.complete(t, { ok: false, kind: "frame", reason: `unit id ${unit}, expected ${t.unit}`, inSync });
      return;
    }
    const r = parseResponsePdu(t.req, buf, off + MBAP_HEADER, total - MBAP_HEADER);
    this.host.complete(t, !r.ok && r.kind === "frame" && !r.inSync ? { ...r, reason: `${r.reason}; MBAP length field ${total - 6}` } : r);
  }
}
