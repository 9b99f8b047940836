/**
 * The operations endpoint: GET /metrics (Prometheus text), /healthz and
 * /readyz (JSON, 200 or 503). Plain node:http, bounded: few connections,
 * short timeouts, no request body read. It only reads the cell's state, so it
 * cannot slow the loop beyond the scrape's own few hundred microseconds.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "../../infra/clock.js";
import type { GcPauseSource } from "../../infra/gc-monitor.js";
import type { Logger } from "../../infra/logger.js";
import { errorMessage } from "../../infra/errors.js";
import type { HttpConfig } from "./config.js";
import { CellMetrics, type MetricsCell } from "./metrics.js";
import { healthz, readyz, type ProbeInput, type ProbeResult } from "./health.js";

export interface HttpServiceOptions {
  readonly config: HttpConfig;
  readonly cell: MetricsCell;
  readonly clock: Clock;
  readonly log: Logger;
  /** This thread's GC pauses (default: perf_hooks; CellApp shares one source with its summary line). */
  readonly gcPauses?: GcPauseSource;
}

const MAX_CONNECTIONS = 16;

export class HttpService {
  readonly metrics: CellMetrics;
  private readonly log: Logger;
  private server: http.Server | undefined;
  private bound: AddressInfo | undefined;

  constructor(private readonly o: HttpServiceOptions) {
    this.log = o.log.child({ component: "http" });
    this.metrics = new CellMetrics(o.cell, o.clock, o.gcPauses);
  }

  /** Where it listens, once started. */
  get address(): AddressInfo | undefined {
    return this.bound;
  }

  /**
   * Observe the cycles and listen. A port that cannot be bound is logged and
   * leaves the cell running without the endpoint (returns false).
   */
  async start(): Promise<boolean> {
    this.metrics.attach();
    const server = http.createServer((req, res) => this.handle(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.requestTimeout = 5000;
    server.headersTimeout = 5000;
    server.keepAliveTimeout = 5000;
    const { host, port } = this.o.config;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (e) {
      this.log.error({ host, port, err: errorMessage(e) }, "metrics and health endpoint could not listen: the cell runs without it");
      return false;
    }
    server.on("error", (e) => this.log.warn({ err: errorMessage(e) }, "http server error"));
    this.server = server;
    this.bound = server.address() as AddressInfo;
    this.log.info({ host: this.bound.address, port: this.bound.port }, "serving /metrics, /healthz, /readyz");
    return true;
  }

  async stop(): Promise<void> {
    this.metrics.detach();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** The probes' view of the cell now. */
  probeInput(): ProbeInput {
    const { cell } = this.o;
    return {
      lastCycleAgeMs: this.metrics.lastCycleAgeMs(),
      cycles: cell.loop.stats.cycles,
      periodMs: cell.model.cycle.periodMs,
      mode: cell.loop.mode,
      devices: cell.runners.map((r) => ({
        name: r.name,
        state: r.state,
        required: cell.model.devices.find((d) => d.name === r.name)?.config.required ?? true,
        lastError: r.lastError,
      })),
    };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    switch (path) {
      case "/metrics":
        this.metrics.scrape().then(
          ({ contentType, body }) => res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : body),
          (e: unknown) => {
            this.log.warn({ err: errorMessage(e) }, "metrics scrape failed");
            res.writeHead(500, { "content-type": "text/plain" }).end("scrape failed\n");
          },
        );
        return;
      case "/healthz":
        this.probe(req, res, healthz(this.probeInput()));
        return;
      case "/readyz":
        this.probe(req, res, readyz(this.probeInput()));
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz, /readyz\n");
    }
  }

  private probe(req: http.IncomingMessage, res: http.ServerResponse, r: ProbeResult): void {
    const body = `${JSON.stringify(r.body)}\n`;
    res.writeHead(r.ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : body);
  }
}
