/**
 * One Modbus TCP connection shared by every device that names the same
 * host, port and framing (several unit ids behind one gateway), and the
 * registry that hands it out. The mirror of the RTU bus (rtu-bus.ts,
 * transport-rtu.ts) for TCP:
 *
 * - One socket per host:port/framing. Requests of its units wait in the
 *   client's queue, FIFO per unit id and round-robin between unit ids; one
 *   request in flight unless a device asks for more (`max_in_flight`, the
 *   largest of its devices). A request's timeout counts from the moment it is
 *   sent, so a dead unit id costs the others at most its timeout per round
 *   and never makes them time out in the queue.
 * - The socket opens when the first unit attaches and closes when the last
 *   detaches. A unit that is set aside (its driver drops it after repeated
 *   timeouts) detaches alone; the socket and the other units are untouched.
 * - A connection-level fault (reset, framing doubt, server gone) fails what
 *   was pending and tells every attached unit. Opening is shared: the units
 *   that reconnect at once share one connect, and after a failed connect the
 *   connection itself backs off (exponential, from the smallest `reconnect`
 *   of its devices), answering attempts in between with the failure at once,
 *   so a dead gateway sees one connect per backoff step, not one per unit.
 */
import { CellioError, errorMessage } from "../../infra/errors.js";
import { silentLogger, type Logger } from "../../infra/logger.js";
import { ModbusTcpClient } from "./tcp-client.js";
import type { Framing, ModbusTcpClientOptions } from "./tcp-txn.js";

/** A user of the connection (one unit's transport): told when the connection is lost under it. */
export interface TcpConnectionMember {
  onConnectionLost(why: string): void;
}

export interface TcpConnectionOptions extends Omit<ModbusTcpClientOptions, "timeoutFrom"> {
  /** Backoff of connect attempts after a failed one (default 100..5000 ms). */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly log?: Logger;
}

export class TcpConnection {
  /** Socket connects started (each shared by every unit that asked meanwhile). */
  connectAttempts = 0;
  /** Attaches answered with the last connect failure during the connection's backoff, without a connect. */
  backedOff = 0;
  private clientOf: ModbusTcpClient | undefined;
  private readonly members = new Set<TcpConnectionMember>();
  private opening: Promise<void> | undefined;
  private failedError: Error = new Error("not connected");
  private retryAt = Number.NEGATIVE_INFINITY;
  private backoffMs: number;
  private readonly log: Logger;
  private opts: TcpConnectionOptions;

  constructor(opts: TcpConnectionOptions) {
    this.opts = { ...opts };
    this.backoffMs = opts.reconnectMinMs ?? 100;
    this.log = opts.log ?? silentLogger();
  }

  get key(): string {
    return connectionKey(this.opts.host, this.opts.port, this.opts.framing ?? "mbap");
  }

  /** The client, made on first use (a device registered later may still widen `maxInFlight` until then). */
  get client(): ModbusTcpClient {
    if (!this.clientOf) {
      const { reconnectMinMs: _min, reconnectMaxMs: _max, log: _log, ...client } = this.opts;
      const c = new ModbusTcpClient({ ...client, timeoutFrom: "send" });
      c.onClose(() => this.lost(`${c.device}: connection lost`));
      this.clientOf = c;
    }
    return this.clientOf;
  }

  get isOpen(): boolean {
    return this.clientOf?.isOpen ?? false;
  }

  get attached(): number {
    return this.members.size;
  }

  /** A device asks for more requests in flight (before the client exists); the connection takes the largest. */
  widen(o: { maxInFlight?: number; connectTimeoutMs?: number; reconnectMinMs?: number }): void {
    if (this.clientOf) return;
    const pick = (a: number | undefined, b: number | undefined, f: (x: number, y: number) => number): number | undefined =>
      a === undefined ? b : b === undefined ? a : f(a, b);
    this.opts = {
      ...this.opts,
      maxInFlight: pick(this.opts.maxInFlight, o.maxInFlight, Math.max),
      connectTimeoutMs: pick(this.opts.connectTimeoutMs, o.connectTimeoutMs, Math.max),
      reconnectMinMs: pick(this.opts.reconnectMinMs, o.reconnectMinMs, Math.min),
    };
    this.backoffMs = this.opts.reconnectMinMs ?? 100;
  }

  /** Opens the socket unless it is open (one connect for every unit that asks meanwhile). */
  async attach(member: TcpConnectionMember): Promise<void> {
    this.members.add(member);
    try {
      await this.open();
    } catch (e) {
      this.members.delete(member);
      throw e;
    }
    if (!this.members.has(member)) {
      throw new CellioError("CELLIO_ERR_MODBUS_CLOSED", `${this.client.device}: connection lost while attaching`, { device: this.client.device });
    }
  }

  /** The last unit to leave closes the socket. */
  async detach(member: TcpConnectionMember): Promise<void> {
    if (!this.members.delete(member)) return;
    if (this.members.size === 0 && this.clientOf) await this.clientOf.close();
  }

  private open(): Promise<void> {
    const client = this.client;
    if (client.isOpen) return Promise.resolve();
    if (this.opening) return this.opening;
    if (performance.now() < this.retryAt) {
      this.backedOff++;
      return Promise.reject(this.failedError);
    }
    this.connectAttempts++;
    this.opening = client
      .connect()
      .then(
        () => {
          this.backoffMs = this.opts.reconnectMinMs ?? 100;
          this.retryAt = Number.NEGATIVE_INFINITY;
          this.log.info({ device: client.device, units: this.members.size }, "modbus connection open");
        },
        (e: unknown) => {
          this.failedError = e instanceof Error ? e : new Error(String(e));
          const delay = this.backoffMs / 2 + Math.random() * (this.backoffMs / 2);
          this.retryAt = performance.now() + delay;
          this.backoffMs = Math.min(this.opts.reconnectMaxMs ?? 5000, this.backoffMs * 2);
          throw e;
        },
      )
      .finally(() => (this.opening = undefined));
    return this.opening;
  }

  private lost(why: string): void {
    const members = [...this.members];
    this.members.clear();
    if (members.length > 0) this.log.warn({ err: why, units: members.length }, "modbus connection lost");
    for (const m of members) {
      try {
        m.onConnectionLost(why);
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, "connection member failed on loss");
      }
    }
  }

  close(): Promise<void> {
    this.members.clear();
    return this.clientOf?.close() ?? Promise.resolve();
  }
}

export function connectionKey(host: string, port: number, framing: Framing): string {
  return `${host}:${port}/${framing}`;
}

/** One TcpConnection per host:port/framing, shared by every device that names it. */
export class TcpConnectionRegistry {
  private readonly connections = new Map<string, TcpConnection>();

  constructor(private readonly log: Logger = silentLogger()) {}

  connection(o: TcpConnectionOptions): TcpConnection {
    const key = connectionKey(o.host, o.port, o.framing ?? "mbap");
    const existing = this.connections.get(key);
    if (existing) {
      existing.widen(o);
      return existing;
    }
    const c = new TcpConnection({ ...o, log: this.log.child({ component: "modbus-connection", connection: key }) });
    this.connections.set(key, c);
    return c;
  }

  get all(): readonly TcpConnection[] {
    return [...this.connections.values()];
  }
}
