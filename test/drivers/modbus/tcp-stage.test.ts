/**
 * FrameStage (src/drivers/modbus/tcp-stage.ts) against a socket that records
 * its writes: what goes out, when, and to which socket.
 */
import { describe, expect, it } from "vitest";
import type net from "node:net";
import { FrameStage } from "../../../src/drivers/modbus/tcp-stage.js";

function fakeSocket(): { sock: net.Socket; writes: number[][] } {
  const writes: number[][] = [];
  const sock = { write: (b: Buffer) => void writes.push([...b]) } as unknown as net.Socket;
  return { sock, writes };
}

/** Reserves `bytes.length` bytes on `stage` for `sock` and fills them with `bytes`. */
function put(stage: FrameStage, sock: net.Socket, bytes: number[]): void {
  const buf = stage.reserve(sock, bytes.length);
  buf.set(bytes, stage.end - bytes.length);
}

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r));

describe("FrameStage", () => {
  it("writes a tick's frames once, on the next tick, in order and nothing more", async () => {
    const { sock, writes } = fakeSocket();
    const stage = new FrameStage(() => true);
    put(stage, sock, [1, 2, 3]);
    put(stage, sock, [4, 5]);
    expect(writes).toEqual([]);
    await tick();
    expect(writes).toEqual([[1, 2, 3, 4, 5]]);
    put(stage, sock, [6]);
    await tick();
    expect(writes).toEqual([[1, 2, 3, 4, 5], [6]]);
  });

  it("writes a full stage before the frame that does not fit; a frame larger than a stage gets one of its own", async () => {
    const { sock, writes } = fakeSocket();
    const stage = new FrameStage(() => true);
    const frame = (n: number, v: number): number[] => new Array<number>(n).fill(v);
    put(stage, sock, frame(200, 1));
    put(stage, sock, frame(100, 2)); // 300 > 256: the first goes now
    expect(writes.map((w) => w.length)).toEqual([200]);
    put(stage, sock, frame(300, 3)); // 400 > 256, and larger than a stage
    expect(writes.map((w) => w.length)).toEqual([200, 100]);
    await tick();
    expect(writes.map((w) => w.length)).toEqual([200, 100, 300]);
    expect(writes.map((w) => new Set(w).size)).toEqual([1, 1, 1]);
  });

  it("writes nothing of a frame given back, and nothing at all when that was the only one", async () => {
    const { sock, writes } = fakeSocket();
    const stage = new FrameStage(() => true);
    put(stage, sock, [1, 2]);
    put(stage, sock, [9, 9, 9]);
    stage.unreserve(3);
    put(stage, sock, [3]);
    await tick();
    expect(writes).toEqual([[1, 2, 3]]);
    put(stage, sock, [7]);
    stage.unreserve(1);
    await tick();
    expect(writes).toEqual([[1, 2, 3]]);
  });

  it("sends each socket its own frames, and none to a socket that is gone", async () => {
    const a = fakeSocket();
    const b = fakeSocket();
    const gone = new Set<net.Socket>();
    const stage = new FrameStage((s) => !gone.has(s));
    put(stage, a.sock, [1]);
    put(stage, b.sock, [2]); // another socket: a's frames go first
    expect(a.writes).toEqual([[1]]);
    gone.add(b.sock);
    await tick();
    expect(b.writes).toEqual([]);
    put(stage, a.sock, [3]);
    await tick();
    expect(a.writes).toEqual([[1], [3]]);
  });
});
