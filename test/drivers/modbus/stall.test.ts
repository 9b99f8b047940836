/**
 * A stall of cellio's own thread (a busy core, a long task) must not turn an
 * answer that came in time into a timeout. The devices here answer from
 * another thread while this one busy-waits past the request's timeout; when
 * the thread is free again, libuv runs the due timer before it reads the
 * answer, so the timer's decision has to wait for that turn's I/O.
 */
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { ModbusTcpClient } from "../../../src/drivers/modbus/tcp-client.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A Modbus TCP device on another thread, answering FC3 (register i holds i + 1) except to unit 9. Plain JS: an eval worker cannot load TypeScript. */
const DEVICE = `
const { parentPort } = require("node:worker_threads");
const srv = require("node:net").createServer((s) => s.on("data", (b) => {
  for (let o = 0; o + 12 <= b.length; o += 12) {
    if (b[o + 6] === 9) continue; // unit 9 never answers
    const count = b.readUInt16BE(o + 10);
    const frame = Buffer.alloc(9 + 2 * count);
    frame.writeUInt16BE(b.readUInt16BE(o), 0); // transaction id
    frame.writeUInt16BE(3 + 2 * count, 4);
    frame[6] = b[o + 6]; frame[7] = 3; frame[8] = 2 * count;
    for (let i = 0; i < count; i++) frame.writeUInt16BE(i + 1, 9 + 2 * i);
    s.write(frame);
  }
}));
srv.listen(0, "127.0.0.1", () => parentPort.postMessage(srv.address().port));`;

async function device(): Promise<number> {
  const worker = new Worker(DEVICE, { eval: true });
  cleanups.push(() => worker.terminate());
  return new Promise<number>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
}

/** This thread does nothing else for `ms`: no timer, no socket is served meanwhile. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

describe("a stall of cellio's thread past a request's timeout", () => {
  it("Modbus TCP: the answer that came meanwhile is taken, not a timeout", async () => {
    const port = await device();
    const c = new ModbusTcpClient({ host: "127.0.0.1", port });
    await c.connect();
    cleanups.push(() => c.close());
    expect(await c.request(1, { fc: 3, start: 0, count: 2 }, 500)).toEqual([1, 2]); // warm: connected, answering
    for (let i = 0; i < 5; i++) {
      const answer = c.request(1, { fc: 3, start: 0, count: 2 }, 30);
      stall(120); // the device answers within a millisecond or so; the 30 ms timer is long due when this ends
      expect(await answer).toEqual([1, 2]);
    }
    expect(c.stats.timeouts).toBe(0);
    // a unit that does not answer still times out, with or without a stall
    await expect(c.request(9, { fc: 3, start: 0, count: 2 }, 30)).rejects.toThrow(/CELLIO_ERR_MODBUS_TIMEOUT/);
    const dead = c.request(9, { fc: 3, start: 0, count: 2 }, 30);
    stall(120);
    await expect(dead).rejects.toThrow(/CELLIO_ERR_MODBUS_TIMEOUT/);
    expect(await c.request(1, { fc: 3, start: 0, count: 2 }, 500)).toEqual([1, 2]);
  });
});
