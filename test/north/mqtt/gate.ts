/**
 * A TCP proxy between cellio and the broker that can be taken down (a cable
 * pulled, a firewall dropping the connection) while the broker stays up.
 */
import net from "node:net";

/** Between cellio and the broker: down() cuts every connection and refuses new ones until up(). */
export class Gate {
  private readonly sockets = new Set<net.Socket>();
  private open = true;
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<Gate> {
    const box: { gate?: Gate } = {};
    const server = net.createServer((client) => box.gate!.onConnection(client, target));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    box.gate = new Gate(server, (server.address() as net.AddressInfo).port);
    return box.gate;
  }

  private onConnection(client: net.Socket, target: number): void {
    if (!this.open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, "127.0.0.1");
    this.sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
  }

  down(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  up(): void {
    this.open = true;
  }

  async stop(): Promise<void> {
    this.down();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
