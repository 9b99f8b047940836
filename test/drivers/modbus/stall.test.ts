/**
 * A stall of cellio's own thread (a busy core, a long task) must not turn an
 * answer that came in time into a timeout. The devices here answer from
 * another thread while this one busy-waits past the request's timeout; when
 * the thread is free again, libuv runs the due timer before it reads the
 * answer, so the timer's decision has to wait for that turn's I/O.
 */
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { RtuBus } from "../../../src/drivers/modbus/rtu-bus.js";
import { ModbusTcpClient } from "../../../src/drivers/modbus/tcp-client.js";
import { hasSocat, openPtyPair } from "../../helpers/pty.js";

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

/**
 * A Modbus RTU device on another thread, on its end of a pty pair: it says when a request is in,
 * then answers FC3 5 ms later (register i holds i + 1).
 */
const SERIAL_DEVICE = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const crc = (b) => {
  let c = 0xffff;
  for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1; }
  return c;
};
const fd = fs.openSync(workerData.path, "r+");
parentPort.postMessage("open");
const req = Buffer.alloc(8); // a read request is 8 bytes
for (;;) {
  for (let got = 0; got < 8; ) {
    let n = 0;
    try { n = fs.readSync(fd, req, got, 8 - got, null); } catch { process.exit(0); } // the pty is gone
    if (n === 0) process.exit(0);
    got += n;
  }
  parentPort.postMessage("request");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  const count = req.readUInt16BE(4);
  const body = Buffer.alloc(3 + 2 * count);
  body[0] = req[0]; body[1] = 3; body[2] = 2 * count;
  for (let i = 0; i < count; i++) body.writeUInt16BE(i + 1, 3 + 2 * i);
  const c = crc(body);
  fs.writeSync(fd, Buffer.concat([body, Buffer.from([c & 0xff, c >> 8])]));
}`;

const message = (w: Worker): Promise<unknown> => new Promise((resolve) => w.once("message", resolve));

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

  it.skipIf(!hasSocat())("Modbus RTU on a serial line: the answer that came meanwhile is taken, not a timeout or a frame cut short", async () => {
    const pty = await openPtyPair();
    cleanups.push(() => pty.close());
    const worker = new Worker(SERIAL_DEVICE, { eval: true, workerData: { path: pty.b } });
    cleanups.push(() => worker.terminate());
    await message(worker);
    cleanups.push(() => pty.close()); // before the worker's terminate: its blocking read ends with the pty
    const bus = new RtuBus({ path: pty.a, baudRate: 115200, parity: "none", dataBits: 8, stopBits: 1, interFrameGapMs: 1 });
    const member = { onBusLost: (): void => undefined };
    await bus.attach(member);
    cleanups.push(() => bus.detach(member));
    const warm = message(worker);
    expect(await bus.request(1, { fc: 3, start: 0, count: 2 }, 500)).toEqual([1, 2]);
    await warm;
    for (let i = 0; i < 5; i++) {
      const received = message(worker);
      const answer = bus.request(1, { fc: 3, start: 0, count: 2 }, 30);
      await received; // the request is on the line (serialport writes asynchronously): its timeout runs
      stall(120); // the answer comes 5 ms into it
      expect(await answer).toEqual([1, 2]);
    }
    expect(bus.stats.timeouts).toBe(0);
    expect(bus.stats.frameErrors).toBe(0);
  });
});
