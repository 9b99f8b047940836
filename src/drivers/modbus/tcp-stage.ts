/**
 * The frames a pipelined Modbus TCP client (maxInFlight > 1) sends in one
 * tick, framed into one buffer and written together on the next tick: one
 * write, one segment, where corking the socket would buffer each write and
 * hand them to a writev. A buffer is filled once and never reused (a write
 * the kernel cannot take at once keeps a reference to it).
 */
import type net from "node:net";

/** A stage's buffer: 21 read requests, from Node's pool (it serves allocations under 4 KiB). */
const STAGE_BYTES = 256;

export class FrameStage {
  private out: Buffer | undefined;
  private len = 0;
  private sock: net.Socket | undefined;
  private readonly flushBound = (): void => this.flush();

  /** `live(sock)`: the socket is still the client's and open (else its staged frames are dropped). */
  constructor(private readonly live: (sock: net.Socket) => boolean) {}

  /**
   * Room for a frame of `size` bytes for `sock`, at `end - size` in the
   * buffer returned. A stage that is full, or for another socket, is written
   * first.
   */
  reserve(sock: net.Socket, size: number): Buffer {
    if (this.out !== undefined && (this.sock !== sock || this.len + size > this.out.length)) this.flush();
    if (this.out === undefined) {
      this.out = Buffer.allocUnsafe(Math.max(STAGE_BYTES, size));
      this.len = 0;
      this.sock = sock;
      process.nextTick(this.flushBound);
    }
    this.len += size;
    return this.out;
  }

  /** The end of the frames reserved so far. */
  get end(): number {
    return this.len;
  }

  /** Gives back the last `size` bytes reserved (a frame that could not be framed). */
  unreserve(size: number): void {
    this.len = Math.max(0, this.len - size);
  }

  /** Writes the staged frames, unless their socket is gone (their requests were failed with it). */
  flush(): void {
    const out = this.out;
    const sock = this.sock;
    this.out = undefined;
    this.sock = undefined;
    if (out !== undefined && sock !== undefined && this.len > 0 && this.live(sock)) sock.write(out.subarray(0, this.len));
  }
}
