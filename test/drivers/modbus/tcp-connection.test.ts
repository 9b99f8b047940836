/**
 * One TCP connection shared by several unit ids: one socket, one connect for
 * all the units that ask at once, its own backoff after a failed connect,
 * units that detach alone, a loss that reaches every unit. Real sockets.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ModbusTcpSimServer, RegisterBank } from "../../../simulators/modbus/index.js";
import { isCellioError } from "../../../src/infra/errors.js";
import { TcpConnectionRegistry } from "../../../src/drivers/modbus/tcp-connection.js";
import { ModbusTcpTransport } from "../../../src/drivers/modbus/transport-tcp.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("TcpConnection", () => {
  it("devices on one host:port share one socket; one detaching leaves the others connected; the last one closes it", async () => {
    const banks = new Map([1, 2, 3].map((u) => [u, new RegisterBank({ holdingRegisters: 4 })] as const));
    for (const [u, b] of banks) b.setRegister("hr", 0, u * 10);
    const sim = new ModbusTcpSimServer({ port: 0, units: banks });
    const { port } = await sim.start();
    cleanups.push(() => sim.stop());
    const reg = new TcpConnectionRegistry();
    const conn = reg.connection({ host: "127.0.0.1", port });
    expect(reg.connection({ host: "127.0.0.1", port, maxInFlight: 3 })).toBe(conn);
    expect(reg.connection({ host: "127.0.0.1", port, framing: "rtu" })).not.toBe(conn);
    const ts = [1, 2, 3].map(() => new ModbusTcpTransport(conn));
    await Promise.all(ts.map((t) => t.connect()));
    cleanups.push(() => Promise.all(ts.map((t) => t.close())));
    expect(conn.connectAttempts).toBe(1);
    expect(conn.client.stats.connects).toBe(1);
    expect(await Promise.all(ts.map((t, i) => t.read(i + 1, 3, 0, 1, 200)))).toEqual([[10], [20], [30]]);
    await ts[0]!.close();
    expect(ts[0]!.isOpen).toBe(false);
    await expect(ts[0]!.read(1, 3, 0, 1, 200)).rejects.toThrow(/CELLIO_ERR_MODBUS_CLOSED: 127\.0\.0\.1:\d+ unit 1 FC3 0: not connected/);
    expect(await ts[1]!.read(2, 3, 0, 1, 200)).toEqual([20]);
    expect(sim.stats.activeConnections).toBe(1);
    await ts[1]!.close();
    await ts[2]!.close();
    expect(conn.isOpen).toBe(false);
  });

  it("a connection loss reaches every unit once", async () => {
    const sim = new ModbusTcpSimServer({ port: 0, units: new RegisterBank({ holdingRegisters: 4 }) });
    const { port } = await sim.start();
    cleanups.push(() => sim.stop());
    const conn = new TcpConnectionRegistry().connection({ host: "127.0.0.1", port });
    const ts = [1, 2].map(() => new ModbusTcpTransport(conn));
    const lost = [0, 0];
    ts.forEach((t, i) => t.onClose(() => lost[i]!++));
    await Promise.all(ts.map((t) => t.connect()));
    cleanups.push(() => Promise.all(ts.map((t) => t.close())));
    sim.faults.disconnect();
    const until = performance.now() + 2000;
    while (lost.some((n) => n === 0) && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(lost).toEqual([1, 1]);
    expect(ts.every((t) => !t.isOpen)).toBe(true);
    await Promise.all(ts.map((t) => t.connect()));
    expect(conn.connectAttempts).toBe(2);
  });

  it("a gateway that is down: units asking at once share one connect, and the connection backs off before the next", async () => {
    const port = await freePort();
    const conn = new TcpConnectionRegistry().connection({ host: "127.0.0.1", port, connectTimeoutMs: 1000, reconnectMinMs: 400, reconnectMaxMs: 800 });
    const ts = [1, 2, 3].map(() => new ModbusTcpTransport(conn));
    cleanups.push(() => conn.close());
    const results = await Promise.allSettled(ts.map((t) => t.connect()));
    expect(results.every((r) => r.status === "rejected" && isCellioError(r.reason, "CELLIO_ERR_MODBUS_CONNECT"))).toBe(true);
    expect(conn.connectAttempts).toBe(1);
    // Within the backoff: the failure at once, no connect.
    await expect(ts[0]!.connect()).rejects.toThrow(/CELLIO_ERR_MODBUS_CONNECT/);
    expect(conn.connectAttempts).toBe(1);
    expect(conn.backedOff).toBeGreaterThanOrEqual(1);
    // After it (at most the 400 ms first step): the next attempt.
    await new Promise((r) => setTimeout(r, 450));
    await expect(ts[1]!.connect()).rejects.toThrow(/CELLIO_ERR_MODBUS_CONNECT/);
    expect(conn.connectAttempts).toBe(2);
  });
});
