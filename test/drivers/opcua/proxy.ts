/**
 * A TCP proxy on 127.0.0.1 in front of an OPC UA server, to stage network
 * faults: `blackhole()` keeps every connection open and accepts new ones but
 * passes nothing either way (a hung server, a half-dead link); `reset()`
 * aborts every connection with a TCP RST; `forward()` passes traffic again
 * (closing the black-holed connections).
 */
import net from "node:net";

export class FaultProxy {
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket | undefined }>();
  private server: net.Server | undefined;
  private boundPort = 0;
  private mode: "forward" | "blackhole" = "forward";
  connections = 0;

  constructor(private readonly target: () => number) {}

  async start(): Promise<this> {
    const server = net.createServer((c) => this.onConnection(c));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.boundPort = (server.address() as net.AddressInfo).port;
    return this;
  }

  get port(): number {
    return this.boundPort;
  }

  get endpoint(): string {
    return `opc.tcp://127.0.0.1:${this.boundPort}`;
  }

  /** Connections currently open on the client side. */
  get open(): number {
    return this.pairs.size;
  }

  private onConnection(client: net.Socket): void {
    this.connections++;
    const pair: { client: net.Socket; upstream: net.Socket | undefined } = { client, upstream: undefined };
    this.pairs.add(pair);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      pair.upstream?.destroy();
    };
    client.on("error", end);
    client.on("close", end);
    if (this.mode === "blackhole") {
      client.on("data", () => undefined); // swallow
      return;
    }
    const upstream = net.connect(this.target(), "127.0.0.1");
    pair.upstream = upstream;
    upstream.on("error", end);
    upstream.on("close", end);
    client.on("data", (d) => {
      if (this.mode === "forward") upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (this.mode === "forward") client.write(d);
    });
  }

  blackhole(): void {
    this.mode = "blackhole";
  }

  forward(): void {
    this.mode = "forward";
    for (const p of [...this.pairs]) if (!p.upstream) p.client.destroy();
  }

  reset(): void {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream?.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.reset();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
