/**
 * A pipelined client (maxInFlight > 1) writes the frames of one tick as one
 * buffer on the next tick: what a raw loopback server receives, and that
 * nothing staged for a socket reaches the wire once that socket is gone.
 */
import { afterEach, describe, expect, it } from "vitest";
import net from "node:net";
import { RegisterBank, encodeMbap, handlePdu } from "../../../simulators/modbus/index.js";
import { ModbusTcpClient } from "../../../src/drivers/modbus/tcp-client.js";
import { isCellioError } from "../../../src/infra/errors.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A Modbus TCP server that records each chunk it reads (its size, in order) and answers every whole frame from `bank`. */
async function rawServer(bank: RegisterBank): Promise<{ port: number; chunks: number[]; frames: number[] }> {
  const chunks: number[] = [];
  const frames: number[] = [];
  const srv = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      chunks.push(d.length);
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 6 && buf.length >= 6 + buf.readUInt16BE(4)) {
        const len = 6 + buf.readUInt16BE(4);
        frames.push(buf.readUInt16BE(0));
        s.write(encodeMbap(buf.readUInt16BE(0), buf[6]!, handlePdu(bank, Buffer.from(buf.subarray(7, len)))));
        buf = buf.subarray(len);
      }
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
  return { port: (srv.address() as net.AddressInfo).port, chunks, frames };
}

function bank(): RegisterBank {
  const b = new RegisterBank({ coils: 64, discreteInputs: 64, holdingRegisters: 256, inputRegisters: 256 });
  for (let i = 0; i < 256; i++) b.setRegister("hr", i, i * 3);
  return b;
}

async function client(port: number, maxInFlight: number): Promise<ModbusTcpClient> {
  const c = new ModbusTcpClient({ host: "127.0.0.1", port, maxInFlight });
  await c.connect();
  cleanups.push(() => c.close());
  return c;
}

describe("pipelined requests leave together", () => {
  it("two requests of one tick arrive in one read; one in flight, they arrive one by one", async () => {
    for (const maxInFlight of [2, 1]) {
      const { port, chunks } = await rawServer(bank());
      const c = await client(port, maxInFlight);
      const [a, b] = await Promise.all([c.request(1, { fc: 3, start: 4, count: 2 }, 1000), c.request(1, { fc: 3, start: 10, count: 1 }, 1000)]);
      expect(a).toEqual([12, 15]);
      expect(b).toEqual([30]);
      expect(chunks).toEqual(maxInFlight === 2 ? [24] : [12, 12]);
      expect(c.stats.bytesOut).toBe(24);
    }
  });

  it("a tick's frames past the staging buffer, a write larger than it among them: all sent in order, every answer right", async () => {
    const { port, frames } = await rawServer(bank());
    const c = await client(port, 32);
    const values = Array.from({ length: 123 }, (_, i) => 1000 + i); // FC16 of 123 registers: a 259-byte frame
    const reads = Array.from({ length: 30 }, (_, i) => c.request(1, { fc: 3, start: i, count: 1 }, 1000));
    const write = c.request(1, { fc: 16, start: 100, values }, 1000);
    const after = c.request(1, { fc: 3, start: 100, count: 123 }, 1000);
    expect(await Promise.all(reads)).toEqual(Array.from({ length: 30 }, (_, i) => [i * 3]));
    await write;
    expect(await after).toEqual(values);
    expect(frames).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(c.stats.bytesOut).toBe(30 * 12 + (7 + 6 + 246) + 12);
  });

  it("frames staged for a socket that closes in the same tick never reach the wire", async () => {
    const { port, chunks } = await rawServer(bank());
    const c = await client(port, 2);
    const ps = [c.request(1, { fc: 3, start: 0, count: 1 }, 1000), c.request(1, { fc: 3, start: 1, count: 1 }, 1000)].map((p) =>
      p.then(
        () => "answered",
        (e: unknown) => (isCellioError(e, "CELLIO_ERR_MODBUS_CLOSED") ? "closed" : String(e)),
      ),
    );
    await c.close();
    expect(await Promise.all(ps)).toEqual(["closed", "closed"]);
    await new Promise((r) => setTimeout(r, 50));
    expect(chunks).toEqual([]);
    // and a new connection starts clean: its first request is the only thing on its wire
    await c.connect();
    expect(await c.request(1, { fc: 3, start: 2, count: 1 }, 1000)).toEqual([6]);
    expect(chunks).toEqual([12]);
  });
});
