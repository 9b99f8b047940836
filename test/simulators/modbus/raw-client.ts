/** A raw TCP client for framing tests: send exact bytes, assert on exact bytes. */
import net from "node:net";

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.waiter?.();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.off("error", reject);
        resolve(new RawClient(s));
      });
      s.once("error", reject);
    });
  }

  send(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** Exactly `n` bytes (the rest stays buffered); rejects on timeout or close. */
  async read(n: number, timeoutMs = 1000): Promise<Buffer> {
    await this.until(() => this.buf.length >= n, timeoutMs, `${n} bytes`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }

  /** Everything that arrives within `ms`. */
  async collect(ms: number): Promise<Buffer> {
    await new Promise((r) => setTimeout(r, ms));
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }

  /** Resolves when the server closes the connection. */
  async waitClosed(timeoutMs = 1000): Promise<void> {
    await this.until(() => this.closed, timeoutMs, "close");
  }

  close(): void {
    this.socket.destroy();
  }

  private until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`timed out waiting for ${what} (have ${this.buf.length} bytes: ${this.buf.toString("hex")})`));
      }, timeoutMs);
      this.waiter = () => {
        if (cond()) {
          clearTimeout(t);
          this.waiter = undefined;
          resolve();
        } else if (this.closed) {
          clearTimeout(t);
          this.waiter = undefined;
          reject(new Error(`connection closed while waiting for ${what}`));
        }
      };
    });
  }
}

/** An MBAP request frame. */
export function mbap(tid: number, unit: number, pdu: number[]): Buffer {
  const b = Buffer.alloc(7 + pdu.length);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(pdu.length + 1, 4);
  b[6] = unit;
  Buffer.from(pdu).copy(b, 7);
  return b;
}
