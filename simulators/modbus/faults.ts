/**
 * Fault injection for the Modbus simulators. A FaultInjector holds rules; a
 * rule is one fault, server-wide or for one unit id, active for the next N
 * requests (`count`) or until cleared. The servers ask `decide(unit)` once
 * per request and `shouldRefuse()` once per new connection.
 *
 * Precedence: rules for the request's unit come before server-wide rules,
 * and within each group the most recently set rule comes first. The first
 * latency rule gives the delay; the first deciding action rule gives the
 * action (a `dropEvery` rule only decides on the requests it drops).
 */
import { CellioError } from "../../src/infra/errors.js";

export const MALFORMATIONS = [
  "wrong_transaction_id",
  "wrong_protocol_id",
  "wrong_unit_id",
  "wrong_function_code",
  "length_too_long",
  "length_too_short",
  "truncated",
  "overlong",
  "byte_count_mismatch",
  "bad_crc",
] as const;
export type Malformation = (typeof MALFORMATIONS)[number];

export type Fault =
  | { kind: "latency"; ms: number; jitterMs?: number }
  | { kind: "noAnswer" }
  | { kind: "busy" }
  | { kind: "exception"; code: number }
  | { kind: "garbage" }
  | { kind: "malform"; malformation: Malformation }
  | { kind: "dropEvery"; n: number }
  | { kind: "refuseConnections" };
export type FaultKind = Fault["kind"];
// A record, so that the compiler checks every kind is listed.
const KINDS: Record<FaultKind, true> = {
  latency: true,
  noAnswer: true,
  busy: true,
  exception: true,
  garbage: true,
  malform: true,
  dropEvery: true,
  refuseConnections: true,
};
export const FAULT_KINDS = Object.keys(KINDS) as FaultKind[];

export interface FaultScope {
  /** Only requests to this unit id (default: every unit). */
  unit?: number;
  /** Only the next N requests (connections for refuseConnections); default: until cleared. */
  count?: number;
}

export type ResponseAction =
  | { type: "answer" }
  | { type: "drop" }
  | { type: "exception"; code: number }
  | { type: "garbage" }
  | { type: "malform"; malformation: Malformation };

export interface Decision {
  readonly action: ResponseAction;
  readonly delayMs: number;
}

export interface ActiveFault {
  readonly fault: Fault;
  readonly unit: number | undefined;
  readonly remaining: number | undefined;
}

interface Rule {
  readonly fault: Fault;
  readonly unit: number | undefined;
  remaining: number | undefined;
  seen: number;
}

const ANSWER: Decision = Object.freeze({ action: Object.freeze({ type: "answer" as const }), delayMs: 0 });

function invalid(msg: string): CellioError {
  return new CellioError("CELLIO_ERR_SIM", `invalid fault: ${msg}`);
}

function validate(fault: Fault, scope: FaultScope): void {
  const { unit, count } = scope;
  if (unit !== undefined && (!Number.isInteger(unit) || unit < 0 || unit > 255)) throw invalid(`unit ${unit}`);
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw invalid(`count ${count}`);
  switch (fault.kind) {
    case "latency":
      if (!(fault.ms >= 0 && Number.isFinite(fault.ms))) throw invalid(`latency ms ${fault.ms}`);
      if (fault.jitterMs !== undefined && !(fault.jitterMs >= 0 && Number.isFinite(fault.jitterMs))) {
        throw invalid(`jitterMs ${fault.jitterMs}`);
      }
      return;
    case "exception":
      if (!Number.isInteger(fault.code) || fault.code < 1 || fault.code > 0x0b) throw invalid(`exception code ${fault.code} (1..11)`);
      return;
    case "dropEvery":
      if (!Number.isInteger(fault.n) || fault.n < 1) throw invalid(`dropEvery n ${fault.n}`);
      return;
    case "malform":
      if (!MALFORMATIONS.includes(fault.malformation)) throw invalid(`malformation ${String(fault.malformation)}`);
      return;
    case "noAnswer":
    case "busy":
    case "garbage":
    case "refuseConnections":
      return;
  }
}

export class FaultInjector {
  private rules: Rule[] = [];
  private readonly disconnectListeners = new Set<() => void>();
  private readonly random: () => number;

  constructor(opts: { random?: () => number } = {}) {
    this.random = opts.random ?? Math.random;
  }

  /** Activate `fault`; replaces an active fault of the same kind in the same scope. */
  set(fault: Fault, scope: FaultScope = {}): void {
    validate(fault, scope);
    this.rules = this.rules.filter((r) => !(r.fault.kind === fault.kind && r.unit === scope.unit));
    this.rules.push({ fault: { ...fault }, unit: scope.unit, remaining: scope.count, seen: 0 });
  }

  /** Remove rules: all of them, or only those matching `unit` and/or `kind`. */
  clear(filter: { unit?: number; kind?: FaultKind } = {}): void {
    this.rules = this.rules.filter(
      (r) => !((filter.unit === undefined || r.unit === filter.unit) && (filter.kind === undefined || r.fault.kind === filter.kind)),
    );
  }

  active(): ActiveFault[] {
    return this.rules.map((r) => ({ fault: { ...r.fault }, unit: r.unit, remaining: r.remaining }));
  }

  /** Close every client connection now (servers without connections ignore it). */
  disconnect(): void {
    for (const l of this.disconnectListeners) l();
  }

  onDisconnect(listener: () => void): () => void {
    this.disconnectListeners.add(listener);
    return () => this.disconnectListeners.delete(listener);
  }

  /** Whether to close a new connection at once; consumes one count of the rule. */
  shouldRefuse(): boolean {
    const rule = this.rules.findLast((r) => r.fault.kind === "refuseConnections");
    if (!rule) return false;
    this.consume(rule);
    return true;
  }

  /** What to do with one request to `unit`; consumes the counts of the rules that applied. */
  decide(unit: number): Decision {
    if (this.rules.length === 0) return ANSWER;
    const applicable = [
      ...this.rules.filter((r) => r.unit === unit).reverse(),
      ...this.rules.filter((r) => r.unit === undefined).reverse(),
    ];
    let delayMs = 0;
    const latency = applicable.find((r) => r.fault.kind === "latency");
    if (latency && latency.fault.kind === "latency") {
      delayMs = latency.fault.ms + (latency.fault.jitterMs ? this.random() * latency.fault.jitterMs : 0);
      this.consume(latency);
    }
    let action: ResponseAction = { type: "answer" };
    for (const r of applicable) {
      const a = this.actionOf(r);
      if (a === undefined) continue;
      this.consume(r);
      if (a !== "pass") {
        action = a;
        break;
      }
    }
    return { action, delayMs };
  }

  /** `len` random bytes (the `garbage` fault). */
  randomBytes(len: number): Buffer {
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = Math.floor(this.random() * 256) & 0xff;
    return b;
  }

  /** The rule's action; "pass" when it saw the request but let it through; undefined when not an action rule. */
  private actionOf(r: Rule): ResponseAction | "pass" | undefined {
    const f = r.fault;
    switch (f.kind) {
      case "latency":
      case "refuseConnections":
        return undefined;
      case "noAnswer":
        return { type: "drop" };
      case "busy":
        return { type: "exception", code: 0x06 };
      case "exception":
        return { type: "exception", code: f.code };
      case "garbage":
        return { type: "garbage" };
      case "malform":
        return { type: "malform", malformation: f.malformation };
      case "dropEvery":
        r.seen += 1;
        return r.seen % f.n === 0 ? { type: "drop" } : "pass";
    }
  }

  private consume(r: Rule): void {
    if (r.remaining === undefined) return;
    r.remaining -= 1;
    if (r.remaining <= 0) this.rules = this.rules.filter((x) => x !== r);
  }
}

export { newStats, OrderedSender, serveRequest, type ServerStats } from "./serve.js";
