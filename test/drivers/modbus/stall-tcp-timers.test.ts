/**
 * A stall of cellio's own thread must not turn what came in time into a
 * failure, for the Modbus TCP client's other timers that judge (the request
 * timeout: stall.test.ts): the silence that ends an RTU-over-TCP frame, and
 * the connect timeout. The device answers from another thread while this one
 * busy-waits past the timer; when the thread is free again, libuv runs the
 * due timer before it reads the socket, so the judgement has to wait for
 * that turn's I/O. Without that, the first case fails with "truncated
 * response" and the second with "no connection within 30 ms".
 */
import net from "node:net";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { ModbusTcpClient } from "../../../src/drivers/modbus/tcp-client.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A Modbus RTU-over-TCP device on another thread, answering FC3 (register i holds i + 1) in two
 * segments: the first 3 bytes at once, the rest when the test thread posts "rest" (unit 9: never).
 * Plain JS: an eval worker cannot load TypeScript.
 */
const DEVICE = `
const { parentPort } = require("node:worker_threads");
const crc = (b) => {
  let c = 0xffff;
  for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1; }
  return c;
};
let rest;
parentPort.on("message", () => { if (rest) rest(); rest = undefined; });
const srv = require("node:net").createServer((s) => s.on("data", (b) => {
  for (let o = 0; o + 8 <= b.length; o += 8) {
    const count = b.readUInt16BE(o + 4);
    const body = Buffer.alloc(3 + 2 * count);
    body[0] = b[o]; body[1] = 3; body[2] = 2 * count;
    for (let i = 0; i < count; i++) body.writeUInt16BE(i + 1, 3 + 2 * i);
    const c = crc(body);
    const frame = Buffer.concat([body, Buffer.from([c & 0xff, c >> 8])]);
    s.write(frame.subarray(0, 3));
    if (b[o] !== 9) rest = () => s.write(frame.subarray(3));
  }
}));
srv.listen(0, "127.0.0.1", () => parentPort.postMessage(srv.address().port));`;

/**
 * A listener on another thread that never accepts (its thread waits), with a backlog of 1: once
 * its accept queue is full, the kernel drops new SYNs and a connect to it never completes.
 */
const DEAF = `
const { parentPort } = require("node:worker_threads");
const srv = require("node:net").createServer(() => undefined);
srv.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
  parentPort.postMessage(srv.address().port);
  const idle = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(idle, 0, 0, 50); // in slices: terminate() ends it
});`;

async function device(code = DEVICE): Promise<{ port: number; worker: Worker }> {
  const worker = new Worker(code, { eval: true });
  cleanups.push(() => worker.terminate());
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  return { port, worker };
}

/** This thread does nothing else for `ms`: no timer, no socket is served meanwhile. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

/** Resolves once `cond` holds, checked once per event-loop turn (after that turn's I/O). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

async function rtuClient(port: number): Promise<ModbusTcpClient> {
  const c = new ModbusTcpClient({ host: "127.0.0.1", port, framing: "rtu", rtuSilenceMs: 20 });
  await c.connect();
  cleanups.push(() => c.close());
  return c;
}

describe("a stall of cellio's thread past a Modbus TCP timer that judges", () => {
  it("RTU over TCP: the rest of a frame that came during the stall completes it, not 'truncated response'", async () => {
    const { port, worker } = await device();
    const c = await rtuClient(port);
    for (let i = 0; i < 5; i++) {
      const before = c.stats.bytesIn;
      const answer = c.request(1, { fc: 3, start: 0, count: 2 }, 2000);
      await until(() => c.stats.bytesIn >= before + 3, "the first segment"); // read: the 20 ms silence runs
      worker.postMessage("rest"); // the device sends the rest within a millisecond or so
      stall(120); // the silence timer is long due when this ends
      expect(await answer).toEqual([1, 2]);
    }
    expect(c.stats.frameErrors).toBe(0);
    expect(c.stats.timeouts).toBe(0);
    // A frame that really stops still ends at the silence, with or without a stall.
    const before = c.stats.bytesIn;
    const cut = c.request(9, { fc: 3, start: 0, count: 2 }, 2000);
    await until(() => c.stats.bytesIn >= before + 3, "the first segment of unit 9's answer");
    stall(120);
    await expect(cut).rejects.toThrow(/CELLIO_ERR_MODBUS_FRAME.*truncated response: 3 of 9 bytes/);
    const after = c.stats.bytesIn;
    const again = c.request(1, { fc: 3, start: 0, count: 2 }, 2000);
    await until(() => c.stats.bytesIn >= after + 3, "the first segment");
    worker.postMessage("rest");
    expect(await again).toEqual([1, 2]);
  });

  it("connect: a connection made during the stall is taken, not 'no connection within'", async () => {
    const { port } = await device();
    for (let i = 0; i < 5; i++) {
      const c = new ModbusTcpClient({ host: "127.0.0.1", port, framing: "rtu", connectTimeoutMs: 30 });
      cleanups.push(() => c.close());
      const connected = c.connect();
      // After net.connect's own nextTick has issued the connect: the kernel completes it at once
      // (loopback); the 30 ms timer is long due when the stall ends.
      process.nextTick(stall, 120);
      await connected;
      expect(c.isOpen).toBe(true);
    }
  });

  it("connect: a connection that is not made still fails, stall or not", async () => {
    const { port } = await device(DEAF);
    // Fill the accept queue: connect until one connect does not complete.
    for (let filled = false, n = 0; !filled; n++) {
      if (n > 8) throw new Error("the deaf listener's accept queue does not fill");
      const s = net.connect({ host: "127.0.0.1", port });
      cleanups.push(() => void s.destroy());
      filled = !(await new Promise<boolean>((resolve) => {
        s.once("connect", () => resolve(true));
        s.once("error", () => resolve(true));
        setTimeout(() => resolve(false), 300);
      }));
    }
    const client = (): ModbusTcpClient => {
      const c = new ModbusTcpClient({ host: "127.0.0.1", port, connectTimeoutMs: 30 });
      cleanups.push(() => c.close());
      return c;
    };
    await expect(client().connect()).rejects.toThrow(/CELLIO_ERR_MODBUS_CONNECT.*no connection within 30 ms/);
    const stalled = client().connect();
    process.nextTick(stall, 120);
    await expect(stalled).rejects.toThrow(/CELLIO_ERR_MODBUS_CONNECT.*no connection within 30 ms/);
  });
});
