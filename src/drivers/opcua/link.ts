/**
 * The link to one OPC UA server (node-opcua; imported by driver.ts only when
 * an OPC UA device starts). It owns the whole recovery policy:
 *
 *   waiting --timer--> connecting --ok--> live --fault--> waiting (backoff + jitter)
 *
 * A connecting attempt (new client, session, node resolution, subscription)
 * has one deadline; a live link faults on a lost connection, a closed
 * session, a subscription the server ended, a publish silence longer than
 * `liveness_ms`, or 3 request timeouts in a row. A fault throws the whole
 * client away (bounded close, never awaited by the loop) and starts over.
 * Events of an older attempt are ignored (generation counter).
 */
import type { ClientSession, ClientSubscription, DataValue, OPCUACertificateManager, OPCUAClient, UserIdentityInfo } from "node-opcua";
import type { Clock } from "../../infra/clock.js";
import type { Logger } from "../../infra/logger.js";
import { errorMessage, isCellioError } from "../../infra/errors.js";
import { everyAfterIo } from "../../infra/late-timer.js";
import type { FailureStatus, ReadOutcome, SampleSink } from "../../loop/device-port.js";
import type { OpcuaDeviceConfig } from "./config.js";
import type { OpcuaPlan } from "./plan.js";
import { createClient, dispose, isUntrustedServer, newestRejected, openPki, userIdentity, withTimeout } from "./connect.js";
import { resolveNodes, type ResolvedNode } from "./resolve.js";
import { subscribe } from "./monitor.js";
import { applyValue, pointValue, type PointValue } from "./values.js";
import { LinkWriter } from "./write.js";

export type LinkState = "stopped" | "waiting" | "connecting" | "live";

export interface Live {
  readonly gen: number;
  readonly client: OPCUAClient;
  readonly session: ClientSession;
  readonly nodes: readonly ResolvedNode[];
  readonly subscription: ClientSubscription | undefined;
}

const TIMEOUTS_BEFORE_RECONNECT = 3;
const CLOSE_MS = 1000;

export class OpcuaLink {
  state: LinkState = "stopped";
  /** Counters for diagnostics and tests. */
  readonly stats = { attempts: 0, connects: 0, faults: 0, notifications: 0 };
  private gen = 0;
  private live: Live | undefined;
  private cm: OPCUACertificateManager | undefined;
  private identity: UserIdentityInfo | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private watchdog: { stop(): void } | undefined;
  private backoffMs: number;
  private lastContact = 0;
  private consecutiveTimeouts = 0;
  private failure: { status: FailureStatus; error: string } = { status: "bad_no_communication", error: "not connected yet" };
  private lastLogged = "";
  private readonly latest: (PointValue | undefined)[];
  private readonly writer: LinkWriter;
  private readonly closing = new Set<Promise<void>>();

  constructor(
    private readonly name: string,
    private readonly cfg: OpcuaDeviceConfig,
    private readonly plan: OpcuaPlan,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.backoffMs = cfg.reconnect.min_ms;
    this.latest = new Array<PointValue | undefined>(plan.points.length).fill(undefined);
    this.writer = new LinkWriter(name, cfg, plan, {
      current: () => this.live,
      failure: () => this.failure,
      timedOut: (gen) => this.onTimeout(gen),
      ok: () => this.onAnswer(),
      fault: (gen, why) => this.fault(gen, why),
    });
  }

  async start(): Promise<void> {
    if (this.state !== "stopped") return;
    this.state = "waiting";
    try {
      this.identity = userIdentity(this.name, this.cfg, this.env);
      this.cm = await openPki(this.cfg, this.plan);
    } catch (e) {
      this.failure = { status: "bad_config_error", error: errorMessage(e) };
      this.log.error({ err: errorMessage(e), pkiDir: this.plan.pkiDir }, "OPC UA device cannot start: its points stay bad");
      return;
    }
    if (this.state !== "waiting") return; // stopped meanwhile
    const period = Math.max(25, Math.min(1000, Math.floor(this.plan.livenessMs / 4)));
    // A check that runs late (this thread was stalled) judges after the turn's I/O: the publish
    // responses that came during the stall count first (infra/late-timer.ts).
    this.watchdog = everyAfterIo(period, (at) => this.checkLiveness(at), () => this.clock.now());
    void this.attempt();
  }

  async stop(): Promise<void> {
    this.state = "stopped";
    this.gen++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watchdog?.stop();
    this.retryTimer = undefined;
    this.watchdog = undefined;
    const l = this.live;
    this.live = undefined;
    if (l) this.close(l.client, l.session);
    await Promise.all([...this.closing]);
    await this.cm?.dispose().catch(() => undefined);
    this.cm = undefined;
  }

  /** Outcome and status of the link now, for read()/write() while it is not live. */
  get lastFailure(): { status: FailureStatus; error: string } {
    return this.failure;
  }

  private close(client: OPCUAClient, session: ClientSession | undefined): void {
    const p = dispose(client, session, CLOSE_MS).finally(() => this.closing.delete(p));
    this.closing.add(p);
  }

  private async attempt(): Promise<void> {
    if (this.state === "stopped" || !this.cm || !this.identity) return;
    const gen = ++this.gen;
    this.state = "connecting";
    this.stats.attempts++;
    const client = createClient(this.name, this.cfg, this.plan, this.cm);
    let session: ClientSession | undefined;
    client.on("connection_lost", () => this.fault(gen, "connection lost"));
    client.on("close", (err?: Error | null) => this.fault(gen, err ? `connection closed: ${err.message}` : "connection closed"));
    const abandoned = () => gen !== this.gen || this.state === "stopped";
    const establish = async (): Promise<Live> => {
      await client.connect(this.cfg.endpoint);
      if (abandoned()) throw new Error("abandoned");
      session = await client.createSession(this.identity);
      session.on("session_closed", () => this.fault(gen, "the server closed the session"));
      session.on("keepalive_failure", () => this.fault(gen, "session keep-alive failed"));
      const res = await resolveNodes(session, this.plan.points);
      if (!res.ok) throw Object.assign(new Error(res.errors.join("; ")), { config: true });
      let subscription: ClientSubscription | undefined;
      if (this.cfg.mode === "subscription" && this.plan.inputs.length > 0) {
        this.latest.fill(undefined);
        const s = await subscribe(session, this.cfg, this.plan, res.nodes, {
          value: (pos, dv) => this.onValue(gen, pos, dv),
          contact: () => this.onContact(gen),
          dead: (why) => this.fault(gen, why),
        });
        subscription = s.subscription;
        if (s.errors.length > 0) throw Object.assign(new Error(s.errors.join("; ")), { config: true });
      }
      return { gen, client, session, nodes: res.nodes, subscription };
    };
    try {
      const live = await withTimeout(establish(), this.cfg.connect_timeout_ms, `connecting to ${this.cfg.endpoint}`);
      if (abandoned()) {
        this.close(client, session);
        return;
      }
      this.live = live;
      this.state = "live";
      this.lastContact = this.clock.now();
      this.consecutiveTimeouts = 0;
      this.stats.connects++;
      this.transition("info", { endpoint: this.cfg.endpoint, security: this.cfg.security.mode, policy: this.plan.policy }, "OPC UA connected");
    } catch (e) {
      this.close(client, session);
      if (abandoned()) return;
      await this.onConnectError(e);
      this.state = "waiting";
      this.scheduleRetry();
    }
  }

  private async onConnectError(e: unknown): Promise<void> {
    const msg = errorMessage(e);
    if ((e as { config?: boolean }).config === true) {
      this.failure = { status: "bad_config_error", error: `${this.name}: ${msg}` };
      this.backoffMs = this.cfg.reconnect.max_ms;
      this.transition("error", { err: msg }, "OPC UA points do not match the server: the device is bad (Bad_ConfigurationError) until fixed");
      return;
    }
    if (isUntrustedServer(msg)) {
      const file = await newestRejected(this.plan.pkiDir);
      const trusted = `${this.plan.pkiDir}/trusted/certs/`;
      this.failure = { status: "bad_no_communication", error: `${this.name}: the server certificate is not trusted` };
      this.backoffMs = this.cfg.reconnect.max_ms;
      this.transition(
        "error",
        { endpoint: this.cfg.endpoint, rejected: file, trustedDir: trusted, code: "CELLIO_ERR_OPCUA_UNTRUSTED" },
        `OPC UA server certificate of ${this.cfg.endpoint} is not trusted; to trust it, move ${file ?? `the newest file in ${this.plan.pkiDir}/rejected/`} to ${trusted} (or set security.trust_unknown_server: true)`,
      );
      return;
    }
    const status: FailureStatus = isCellioError(e, "CELLIO_ERR_OPCUA_TIMEOUT") ? "bad_timeout" : "bad_no_communication";
    this.failure = { status, error: msg };
    this.transition("warn", { endpoint: this.cfg.endpoint, err: msg }, "OPC UA connect failed; retrying with backoff");
  }

  /** Log a transition once: the same message again is a repetition. */
  private transition(level: "info" | "warn" | "error", fields: Record<string, unknown>, msg: string): void {
    const key = `${msg}|${typeof fields.err === "string" ? fields.err : ""}`;
    if (key === this.lastLogged) return;
    this.lastLogged = key;
    this.log[level](fields, msg);
  }

  private scheduleRetry(): void {
    if (this.state === "stopped" || this.retryTimer) return;
    const delay = this.backoffMs / 2 + Math.random() * (this.backoffMs / 2);
    this.backoffMs = Math.min(this.cfg.reconnect.max_ms, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attempt();
    }, delay);
  }

  /** The live link of generation `gen` is broken: drop it, mark its data unknown, start over. */
  private fault(gen: number, why: string, status: FailureStatus = "bad_no_communication"): void {
    const l = this.live;
    if (gen !== this.gen || this.state !== "live" || !l) return;
    this.live = undefined;
    this.state = "waiting";
    this.latest.fill(undefined);
    this.failure = { status, error: `${this.name}: ${why}` };
    this.stats.faults++;
    this.transition("warn", { endpoint: this.cfg.endpoint, err: why }, "OPC UA link lost: its points are bad until fresh data; reconnecting");
    this.close(l.client, l.session);
    this.scheduleRetry();
  }

  /** `at`: when the check's timer fired (a contact after it, read in a late check's turn, counts). */
  private checkLiveness(at: number): void {
    const l = this.live;
    if (!l || this.state !== "live" || !l.subscription) return;
    const silent = at - this.lastContact;
    if (silent > this.plan.livenessMs) this.fault(l.gen, `no publish response (data or keep-alive) for ${Math.round(silent)} ms`);
  }

  private onContact(gen: number): void {
    if (gen === this.gen) this.lastContact = this.clock.now();
  }

  /** The server answered: the next loss starts the backoff afresh. */
  private onAnswer(): void {
    this.consecutiveTimeouts = 0;
    this.backoffMs = this.cfg.reconnect.min_ms;
  }

  private onTimeout(gen: number): void {
    if (++this.consecutiveTimeouts >= TIMEOUTS_BEFORE_RECONNECT) this.fault(gen, `${this.consecutiveTimeouts} requests in a row timed out`, "bad_timeout");
  }

  private onValue(gen: number, pos: number, dv: DataValue): void {
    if (gen !== this.gen) return;
    this.lastContact = this.clock.now();
    this.stats.notifications++;
    if (this.backoffMs !== this.cfg.reconnect.min_ms) this.onAnswer();
    this.latest[pos] = pointValue(rawOf(dv), this.plan.points[pos]!.scale, this.clock.wall());
  }

  /** Subscription mode: the newest value of every input; polled mode: one Read of all inputs. */
  async read(sink: SampleSink): Promise<ReadOutcome> {
    const l = this.live;
    if (!l || this.state !== "live") return { ok: false, ...this.failure };
    if (l.subscription) {
      for (const pos of this.plan.inputs) applyValue(sink, this.plan.points[pos]!.index, this.latest[pos]);
      return { ok: true };
    }
    if (this.plan.inputs.length === 0) return { ok: true };
    let dvs: DataValue[];
    try {
      const nodesToRead = this.plan.inputs.map((pos) => ({ nodeId: l.nodes[pos]!.nodeId, attributeId: 13 }));
      dvs = await withTimeout(l.session.read(nodesToRead, 0), this.cfg.timeout_ms, `${this.name}: Read`);
    } catch (e) {
      if (isCellioError(e, "CELLIO_ERR_OPCUA_TIMEOUT")) {
        this.onTimeout(l.gen);
        return { ok: false, status: "bad_timeout", error: errorMessage(e) };
      }
      this.fault(l.gen, `Read failed: ${errorMessage(e)}`);
      return { ok: false, status: "bad_no_communication", error: errorMessage(e) };
    }
    this.onAnswer();
    const now = this.clock.wall();
    this.plan.inputs.forEach((pos, k) => {
      const p = this.plan.points[pos]!;
      const dv = dvs[k];
      applyValue(sink, p.index, dv ? pointValue(rawOf(dv), p.scale, now) : undefined);
    });
    return { ok: true };
  }

  write(changes: Parameters<LinkWriter["write"]>[0]): ReturnType<LinkWriter["write"]> {
    return this.writer.write(changes);
  }
}

function rawOf(dv: DataValue): { code: number; variantType: number; value: unknown; sourceTs: Date | null; serverTs: Date | null } {
  return { code: dv.statusCode.value, variantType: dv.value.dataType, value: dv.value.value, sourceTs: dv.sourceTimestamp, serverTs: dv.serverTimestamp };
}
